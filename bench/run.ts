// `npm run bench`: how fast is the provider, against the hardware limit (argon2id) and the bare library.
//
//   1. the provider (src/main.ts started like `npm start`, a child process, NODE_ENV=production) on
//      PostgreSQL (DATABASE_URL, or a throwaway local server) and on embedded PGlite: complete sign-ins,
//      first with the email code, then repeat sign-ins on the trusted device;
//   2. the hardware limit of those: argon2id verifications per second with the provider's parameters, in
//      a process of its own, measured in turns with each sign-in phase;
//   3. refresh_token and client_credentials grants and introspection, in turns with a bare oidc-provider
//      (in-memory adapter, same configuration where the token endpoint is concerned), and password
//      sign-ins on that bare oidc-provider (argon2id and the library, nothing else: the floor);
//   4. peak RSS (VmHWM) of each server process, and where the CPU went (/proc).
// Taking turns in short slices matters on a machine shared with other work: whatever else runs then
// slows both sides of a ratio alike. All traffic is on 127.0.0.1. Environment knobs (defaults in
// brackets): BENCH_CONCURRENCY [8], BENCH_SECONDS per sign-in phase [10], BENCH_TOKEN_SECONDS per token
// operation and server [6], BENCH_SKIP=postgres,pglite,bare,bare-signin,tokens,pglite-tokens,
// BENCH_JSON=file (results as JSON), BENCH_SERVER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PasswordHasher } from '../src/accounts/passwords.js';
import { createCustomer } from '../src/accounts/customers.js';
import { loadConfig } from '../src/config.js';
import { createDb, migrateLatest } from '../src/db/index.js';
import { createClient } from '../src/oidc/clients.js';
import { createResourceServer } from '../src/oidc/resources.js';
import { Secrets } from '../src/security/crypto.js';
import { clientCredentials, type ClientCreds, introspect, refresh, signIn } from './flows.js';
import { Browser, request } from './http.js';
import { drive, measureSlice, type PhaseOptions, type PhaseResult, peakRssMiB, processTree, runInterleaved, type Slice, summarize } from './load.js';
import { BenchMailbox } from './mailbox.js';
import { findPostgresBin, freePort, INSTALL_HINT, type LocalPostgres, startLocalPostgres } from './postgres.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const TOKEN_SECONDS = Number(process.env.BENCH_TOKEN_SECONDS ?? 6);
const SKIP = new Set((process.env.BENCH_SKIP ?? '').split(',').map((s) => s.trim()).filter(Boolean));
const SERVER_NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
const API = 'https://api.bench.invalid';
const PASSWORD = 'bench password: correct horse battery staple';
const USERS = 1500;
const started = Date.now();
/** The node arguments of `npm start` (package.json), so the benchmark runs the server the way it is deployed. */
const START_ARGS = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start
  .split(' ')
  .slice(1);

const log = (message: string) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(3)}s] ${message}\n`);

// The provider's own defaults (or the ARGON2_* variables, passed on to the server too).
const argon2Params = loadConfig({ ...process.env, COOKIE_KEYS: 'x'.repeat(32), DATA_ENCRYPTION_KEY: '0'.repeat(64), NODE_ENV: 'production', ISSUER: 'http://127.0.0.1' }).argon2;
const cookieKeys = randomBytes(32).toString('base64url');
const encryptionKey = randomBytes(32).toString('hex');
const secrets = new Secrets(Buffer.from(encryptionKey, 'hex'));

interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  kernel: string;
}

function machine(): Machine {
  const cpu = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? '?';
  return { cpu, cores: os.availableParallelism(), memoryGiB: os.totalmem() / 2 ** 30, node: process.version, kernel: os.release() };
}

// ---------------------------------------------------------------------------------------------------
// argon2 limit

interface Argon2Measure {
  verifications: number;
  seconds: number;
  cpuMs: number;
  singleMs: number;
  threads: number;
  inFlight: number;
}

/** A process that measures argon2id verifications/s on request (bench/argon2-limit.ts). */
class Argon2Worker {
  private constructor(private readonly child: ChildProcess, readonly info: { singleMs: number; threads: number; inFlight: number }) {}

  static async start(): Promise<Argon2Worker> {
    const child = fork(path.join(ROOT, 'bench/argon2-limit.ts'), [], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, UV_THREADPOOL_SIZE: String(os.availableParallelism()), BENCH_ARGON2_PARAMS: JSON.stringify(argon2Params) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const info = await new Promise<Argon2Measure>((resolve, reject) => {
      child.once('message', (m) => resolve(m as Argon2Measure));
      child.once('exit', (code) => reject(new Error(`argon2 worker exited with ${code}`)));
    });
    return new Argon2Worker(child, info);
  }

  measure(ms: number): Promise<Argon2Measure> {
    return new Promise((resolve) => {
      this.child.once('message', (m) => resolve(m as Argon2Measure));
      this.child.send({ ms });
    });
  }

  stop(): Promise<void> {
    return stopChild(this.child);
  }
}

/** argon2id measured in turns with a phase: verifications/s and CPU ms per verification. */
interface Argon2Limit {
  perSecond: number;
  cpuMs: number;
}

function addUp(measures: Argon2Measure[]): Argon2Limit {
  const verifications = measures.reduce((a, m) => a + m.verifications, 0);
  const seconds = measures.reduce((a, m) => a + m.seconds, 0);
  const cpu = measures.reduce((a, m) => a + m.cpuMs * m.verifications, 0);
  return { perSecond: verifications / seconds, cpuMs: cpu / Math.max(verifications, 1) };
}

const SIGN_IN_ROUNDS = 4;
const ARGON2_SLICE_MS = 1500;

/**
 * A sign-in phase in SIGN_IN_ROUNDS slices, each followed by a slice of argon2id verifications alone: the
 * limit the sign-ins are compared with is measured under the same conditions (on a machine shared with
 * other work, load comes and goes).
 */
async function signInPhase(
  name: string,
  options: PhaseOptions,
  op: (worker: number) => Promise<void>,
  argon2: Argon2Worker,
): Promise<{ result: PhaseResult; limit: Argon2Limit }> {
  if (options.warmupSeconds) await drive(options, op, false);
  const slices: Slice[] = [];
  const measures: Argon2Measure[] = [];
  for (let round = 0; round < SIGN_IN_ROUNDS; round += 1) {
    slices.push(await measureSlice({ ...options, seconds: options.seconds / SIGN_IN_ROUNDS }, op));
    measures.push(await argon2.measure(ARGON2_SLICE_MS));
  }
  return { result: summarize(name, slices), limit: addUp(measures) };
}

// ---------------------------------------------------------------------------------------------------
// Seeding: customer, users (one shared argon2id hash with the production parameters: every verification
// costs the same as for a real user), a first-party web client, a machine client and an API.

interface Seed {
  web: ClientCreds;
  machine: ClientCreds;
  users: { email: string; password: string }[];
  /** The resource indicator of the API the machine client asks for. */
  api: string;
}

async function seed(db: ReturnType<typeof createDb>): Promise<Seed> {
  await migrateLatest(db);
  const run = randomBytes(4).toString('hex');
  const customer = await createCustomer(db, { name: `Bench ${run}` });
  const hash = await new PasswordHasher(argon2Params).hash(PASSWORD);
  const users = Array.from({ length: USERS }, (_v, i) => ({ email: `u${i}.${run}@bench.example.com`, password: PASSWORD }));
  for (let i = 0; i < users.length; i += 500) {
    await db('users').insert(
      users.slice(i, i + 500).map((u, j) => ({ customer_id: customer.id, email: u.email, name: `Bench User ${i + j}`, role: 'user', status: 'active', password_hash: hash })),
    );
  }
  const web = await createClient(
    db,
    secrets,
    { name: `Bench app ${run}`, redirectUris: ['https://app.bench.invalid/cb'], grants: ['refresh_token'], firstParty: true },
    { production: true },
  );
  const api = `${API}/${run}`;
  await createResourceServer(db, { identifier: api, scopes: ['api:read', 'api:write'], name: 'Bench API' }, { production: true });
  const machineClient = await createClient(db, secrets, { name: `Bench machine ${run}`, machine: true, scope: 'api:read' }, { production: true });
  return { web: web as ClientCreds, machine: machineClient as ClientCreds, users, api };
}

// ---------------------------------------------------------------------------------------------------
// Server processes

interface Server {
  child: ChildProcess;
  url: string;
  logFile: string;
  stop(): Promise<void>;
}

async function waitReady(url: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${tail(logFile)}`);
    try {
      const res = await request(new URL('/readyz', url));
      if (res.status === 200) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`server not ready after 90 s:\n${tail(logFile)}`);
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '(no log)';
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function startProvider(workDir: string, db: { databaseUrl?: string; dataDir: string }, smtpUrl: string): Promise<Server> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFile = path.join(workDir, `server-${port}.log`);
  const fd = openSync(logFile, 'a');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: url,
    DATA_DIR: db.dataDir,
    SMTP_URL: smtpUrl,
    MAIL_FROM: 'Sign-in <no-reply@bench.example.com>',
    COOKIE_KEYS: cookieKeys,
    DATA_ENCRYPTION_KEY: encryptionKey,
    LOG_LEVEL: 'warn',
  };
  delete env.DATABASE_URL;
  if (db.databaseUrl) env.DATABASE_URL = db.databaseUrl;
  // As `npm start` runs it (package.json).
  const child = spawn(process.execPath, [...SERVER_NODE_ARGS, ...START_ARGS], { cwd: ROOT, env, stdio: ['ignore', fd, fd] });
  await waitReady(url, child, logFile);
  return { child, url, logFile, stop: () => stopChild(child) };
}

interface BareInfo {
  url: string;
  web: ClientCreds;
  machine: ClientCreds;
  api: string;
  refreshTokens: string[];
  accessTokens: string[];
}

async function startBare(): Promise<{ child: ChildProcess; info: BareInfo; stop(): Promise<void> }> {
  const port = await freePort();
  const child = fork(path.join(ROOT, 'bench/bare-provider.ts'), [], {
    cwd: ROOT,
    execArgv: [...SERVER_NODE_ARGS, '--import', 'tsx'],
    // The same thread pool as the provider gets from src/threadpool.mjs (RSA signatures run there).
    env: {
      ...process.env,
      PORT: String(port),
      NODE_ENV: 'production',
      BENCH_CHAINS: String(CONCURRENCY),
      BENCH_ARGON2_PARAMS: JSON.stringify(argon2Params),
      BENCH_PASSWORD: PASSWORD,
      UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? String(os.availableParallelism()),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const info = await new Promise<BareInfo>((resolve, reject) => {
    child.once('message', (m) => resolve(m as BareInfo));
    child.once('exit', (code) => reject(new Error(`bare provider exited with ${code}`)));
  });
  return { child, info, stop: () => stopChild(child) };
}

// ---------------------------------------------------------------------------------------------------
// Measurements

interface TokenResults {
  refresh: PhaseResult;
  clientCredentials: PhaseResult;
  introspection: PhaseResult;
}

/** A server whose token endpoint is measured, with the tokens its load workers hold. */
interface TokenTarget {
  pid: number;
  dbPids: (() => number[]) | undefined;
  base: string;
  creds: { web: ClientCreds; machine: ClientCreds; api: string };
  /** One refresh token chain per worker (rotated on every use) and the access token its last refresh gave. */
  chains: string[];
  current: string[];
}

const TOKEN_ROUNDS = 4;

/** Each operation against the targets in turn (interleaved slices, see runInterleaved). */
async function tokenPhases(targets: TokenTarget[]): Promise<TokenResults[]> {
  const contenders = (make: (t: TokenTarget) => (w: number) => Promise<void>, all = false) =>
    targets.map((t) => ({
      options: { concurrency: all ? CONCURRENCY : Math.min(CONCURRENCY, t.chains.length), seconds: TOKEN_SECONDS, warmupSeconds: 1, pid: t.pid, dbPids: t.dbPids },
      op: make(t),
    }));
  const refreshes = await runInterleaved(
    'refresh_token',
    contenders((t) => async (w) => {
      const next = await refresh(t.base, t.creds.web, t.chains[w]!);
      t.chains[w] = next.refreshToken;
      t.current[w] = next.accessToken;
    }),
    TOKEN_ROUNDS,
  );
  const cc = await runInterleaved(
    'client_credentials',
    contenders((t) => () => clientCredentials(t.base, t.creds.machine, t.creds.api), true),
    TOKEN_ROUNDS,
  );
  // Each worker introspects the access token its last refresh returned.
  const intro = await runInterleaved(
    'introspection',
    contenders((t) => (w) => introspect(t.base, t.creds.web, t.current[w]!)),
    TOKEN_ROUNDS,
  );
  return targets.map((_t, i) => ({ refresh: refreshes[i]!, clientCredentials: cc[i]!, introspection: intro[i]! }));
}

interface ProviderResults {
  database: string;
  firstSignIn: PhaseResult;
  repeatSignIn: PhaseResult;
  /** argon2id measured in turns with each sign-in phase. */
  firstSignInLimit: Argon2Limit;
  repeatSignInLimit: Argon2Limit;
  tokens: TokenResults | undefined;
  /** The bare oidc-provider, measured in the same interleaved slices as `tokens`. */
  bareTokens: TokenResults | undefined;
  peakRssMiB: number | undefined;
}

async function benchProvider(
  database: 'postgresql' | 'pglite',
  workDir: string,
  mailbox: BenchMailbox,
  pg: { url: string; pid?: number | undefined } | undefined,
  withTokens: boolean,
  bare: TokenTarget | undefined,
  argon2: Argon2Worker,
): Promise<ProviderResults> {
  const dbPids = pg?.pid ? () => processTree(pg.pid!) : undefined;
  const dataDir = mkdtempSync(path.join(workDir, `${database}-`));
  log(`${database}: seeding ${USERS} users and the clients`);
  const db = createDb(pg ? { databaseUrl: pg.url } : { pgliteDir: path.join(dataDir, 'pgdata') });
  let seeded: Seed;
  try {
    seeded = await seed(db);
  } finally {
    await db.destroy();
  }
  const server = await startProvider(workDir, { ...(pg ? { databaseUrl: pg.url } : {}), dataDir }, mailbox.url);
  const pid = server.child.pid!;
  try {
    log(`${database}: provider up at ${server.url} (pid ${pid})`);
    const { web } = seeded;
    let next = 0;
    const trusted: { email: string; password: string; cookies: string[] }[] = [];
    const refreshTokens: string[] = [];
    const accessTokens: string[] = [];

    log(`${database}: first sign-ins with the email code (${CONCURRENCY} users at a time, ${SECONDS} s)`);
    const first = await signInPhase('first sign-in (email code)', { concurrency: CONCURRENCY, seconds: SECONDS, pid, dbPids }, async () => {
      const user = seeded.users[next++];
      if (!user) throw new Error('out of users');
      // An app that keeps the user signed in (offline_access; oidc-provider issues a refresh token only with prompt=consent).
      const result = await signIn(server.url, web, user, { mailbox, scope: 'openid email profile offline_access', prompt: 'consent', trust: 'yes' });
      if (!result.emailCode) throw new Error('first sign-in did not ask for the email code');
      if (!result.trustCookies.length) throw new Error('no trust cookie after "Yes"');
      trusted.push({ ...user, cookies: result.trustCookies });
      if (result.refreshToken) refreshTokens.push(result.refreshToken);
      accessTokens.push(result.accessToken);
    }, argon2);

    log(`${database}: repeat sign-ins on trusted devices (${CONCURRENCY} users at a time, ${SECONDS} s)`);
    let turn = 0;
    const repeat = await signInPhase('repeat sign-in (trusted device)', { concurrency: CONCURRENCY, seconds: SECONDS, warmupSeconds: 1, pid, dbPids }, async () => {
      if (!trusted.length) throw new Error('no trusted users');
      const user = trusted[turn++ % trusted.length]!;
      // The user signed out and closed the browser: only the long-lived trust cookie is left.
      const browser = new Browser();
      for (const c of user.cookies) browser.jar.set(c);
      const result = await signIn(server.url, web, user, { browser, mailbox, scope: 'openid email profile' });
      if (result.emailCode) throw new Error('trusted device was asked for the email code');
    }, argon2);

    let tokens: TokenResults | undefined;
    let bareTokens: TokenResults | undefined;
    if (withTokens) {
      log(`${database}: token endpoint (${TOKEN_SECONDS} s each: refresh_token, client_credentials, introspection${bare ? ', taking turns with the bare oidc-provider' : ''})`);
      const n = Math.min(refreshTokens.length, accessTokens.length, CONCURRENCY);
      const ours: TokenTarget = {
        pid,
        dbPids,
        base: server.url,
        creds: { web, machine: seeded.machine, api: seeded.api },
        chains: refreshTokens.slice(0, n),
        current: accessTokens.slice(0, n),
      };
      [tokens, bareTokens] = await tokenPhases(bare ? [ours, bare] : [ours]);
    }
    const rss = peakRssMiB(pid);
    return {
      database,
      firstSignIn: first.result,
      repeatSignIn: repeat.result,
      firstSignInLimit: first.limit,
      repeatSignInLimit: repeat.limit,
      tokens,
      bareTokens,
      peakRssMiB: rss,
    };
  } catch (error) {
    process.stderr.write(`server log tail:\n${tail(server.logFile)}\n`);
    throw error;
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------------
// Report

const f0 = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '–' : n.toFixed(0));
const f1 = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '–' : n.toFixed(1));
const pct = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '–' : `${(n * 100).toFixed(0)} %`);
const lat = (r: PhaseResult | undefined) => (r ? `${f0(r.p50)} / ${f0(r.p95)} / ${f0(r.p99)}` : '–');
const rate = (r: PhaseResult | undefined) => (r ? `${f1(r.perSecond)}${r.errors ? ` (${r.errors} errors)` : ''}` : '–');
/** Server-side CPU per operation (the provider plus PostgreSQL), in ms. */
const cpuPerOp = (r: PhaseResult) => (r.serverCpu === undefined || !r.ops ? undefined : ((r.serverCpu + (r.dbCpu ?? 0)) * r.seconds * 1000) / r.ops);
const cpu = (r: PhaseResult | undefined) =>
  r
    ? [r.serverCpu, r.dbCpu, r.clientCpu, r.otherCpu].map((c) => (c === undefined ? '–' : c.toFixed(2))).join(' / ') +
      (r.serverSystemCpu !== undefined ? ` (server kernel ${r.serverSystemCpu.toFixed(2)})` : '')
    : '–';

const TOKEN_OPS = [
  ['refresh', 'refresh_token grant'],
  ['clientCredentials', 'client_credentials grant (JWT for an API)'],
  ['introspection', 'introspection (opaque access token)'],
] as const;

function report(
  m: Machine,
  argon2: { info: Argon2Worker['info']; start: Argon2Measure; overall: Argon2Limit } | undefined,
  providers: ProviderResults[],
  bareSignIn: { result: PhaseResult; limit: Argon2Limit } | undefined,
  bareRssMiB: number | undefined,
  notes: string[],
): string {
  const lines: string[] = [];
  lines.push(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB.toFixed(0)} GiB; Node ${m.node}; Linux ${m.kernel}`);
  if (argon2) {
    const { info, start, overall } = argon2;
    lines.push(
      `argon2id m=${argon2Params.memoryCost} KiB t=${argon2Params.timeCost} p=${argon2Params.parallelism}, ${info.threads} threads, ${info.inFlight} in flight: ` +
        `${f1(start.verifications / start.seconds)} verifications/s at the start, ${f1(overall.perSecond)}/s over all the turns taken with the sign-ins; ` +
        `one alone ${f1(info.singleMs)} ms, ${f1(overall.cpuMs)} ms CPU each`,
    );
  }
  lines.push(
    `Load: ${CONCURRENCY} concurrent users from 127.0.0.1; sign-ins ${SECONDS} s per phase in ${SIGN_IN_ROUNDS} turns with ${ARGON2_SLICE_MS / 1000} s of argon2id alone; ` +
      `token endpoint ${TOKEN_SECONDS} s per operation and server, in ${TOKEN_ROUNDS} turns with the bare oidc-provider`,
  );
  lines.push('');
  lines.push('| Complete sign-ins | database | sign-ins/s | argon2 limit /s (same turns) | ÷ argon2 limit | p50 / p95 / p99 ms | server CPU ms per sign-in | argon2 share of it |');
  lines.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  const signInRow = (r: PhaseResult, database: string, limit: Argon2Limit) => {
    const perOp = cpuPerOp(r);
    lines.push(
      `| ${r.name} | ${database} | ${rate(r)} | ${f1(limit.perSecond)} | ${pct(r.perSecond / limit.perSecond)} | ${lat(r)} | ${f1(perOp)} | ${pct(perOp ? limit.cpuMs / perOp : undefined)} |`,
    );
  };
  for (const p of providers) {
    signInRow(p.repeatSignIn, p.database, p.repeatSignInLimit);
    signInRow(p.firstSignIn, p.database, p.firstSignInLimit);
  }
  if (bareSignIn) signInRow(bareSignIn.result, 'memory', bareSignIn.limit);
  const withTokens = providers.filter((p) => p.tokens);
  if (withTokens.length) {
    lines.push('');
    lines.push('| Token endpoint | database | ours /s | bare oidc-provider /s | ours ÷ bare | p50 / p95 / p99 ms ours | bare | CPU ms per operation ours / bare |');
    lines.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const [key, label] of TOKEN_OPS) {
      for (const p of withTokens) {
        const r = p.tokens![key];
        const ref = p.bareTokens?.[key];
        lines.push(
          `| ${label} | ${p.database} | ${rate(r)} | ${rate(ref)} | ${pct(ref ? r.perSecond / ref.perSecond : undefined)} | ${lat(r)} | ${lat(ref)} | ${f1(cpuPerOp(r))} / ${ref ? f1(cpuPerOp(ref)) : '–'} |`,
        );
      }
    }
  }
  lines.push('');
  lines.push('| Where the CPU went (cores) | server / PostgreSQL / load generator / other processes (server in kernel) |');
  lines.push('| --- | --- |');
  for (const p of providers) {
    for (const r of [p.repeatSignIn, p.firstSignIn, ...(p.tokens ? Object.values(p.tokens) : [])]) lines.push(`| ${r.name}, ${p.database} | ${cpu(r)} |`);
    for (const r of p.bareTokens ? Object.values(p.bareTokens) : []) lines.push(`| ${r.name}, bare (with ${p.database}) | ${cpu(r)} |`);
  }
  if (bareSignIn) lines.push(`| ${bareSignIn.result.name} | ${cpu(bareSignIn.result)} |`);
  lines.push('');
  lines.push('| Peak RSS (VmHWM) | MiB |');
  lines.push('| --- | ---: |');
  for (const p of providers) lines.push(`| provider on ${p.database} | ${f0(p.peakRssMiB)} |`);
  if (bareRssMiB !== undefined) lines.push(`| bare oidc-provider (memory adapter) | ${f0(bareRssMiB)} |`);
  if (notes.length) {
    lines.push('');
    for (const n of notes) lines.push(`Note: ${n}`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const m = machine();
  const notes: string[] = [];
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'idp-bench-'));
  const mailbox = new BenchMailbox();
  await mailbox.start();
  let pg: LocalPostgres | undefined;
  let bare: Awaited<ReturnType<typeof startBare>> | undefined;
  const cleanup = () => {
    bare?.child.kill('SIGTERM');
    pg?.stop();
    rmSync(workDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  const providers: ProviderResults[] = [];
  let bareRssMiB: number | undefined;
  let bareSignIn: { result: PhaseResult; limit: Argon2Limit } | undefined;
  let argon2: Argon2Worker | undefined;
  let argon2Report: Parameters<typeof report>[1];
  try {
    log(`argon2id limit (${os.availableParallelism()} threads)`);
    argon2 = await Argon2Worker.start();
    const start = await argon2.measure(5000);

    // The bare oidc-provider runs throughout; its token endpoint takes turns with ours.
    let bareTarget: TokenTarget | undefined;
    if (!SKIP.has('bare') && !(SKIP.has('tokens') && SKIP.has('bare-signin'))) {
      bare = await startBare();
      const { info } = bare;
      if (!SKIP.has('tokens')) bareTarget = { pid: bare.child.pid!, dbPids: undefined, base: info.url, creds: info, chains: [...info.refreshTokens], current: [...info.accessTokens] };
      log(`bare oidc-provider (in-memory adapter) up at ${info.url} (pid ${bare.child.pid})`);
    }

    if (!SKIP.has('postgres')) {
      let url = process.env.DATABASE_URL;
      if (!url) {
        const bin = findPostgresBin();
        if (!bin) {
          log(INSTALL_HINT);
          notes.push(`PostgreSQL skipped: ${INSTALL_HINT}`);
        } else {
          pg = await startLocalPostgres(bin);
          url = pg.url;
          notes.push(`PostgreSQL ${pg.version}: a throwaway local server started by the benchmark (fsync=off, 127.0.0.1).`);
        }
      } else {
        notes.push('PostgreSQL: DATABASE_URL from the environment.');
      }
      if (url) providers.push(await benchProvider('postgresql', workDir, mailbox, { url, pid: pg?.pid }, !SKIP.has('tokens'), bareTarget, argon2));
      pg?.stop();
      pg = undefined;
    }
    if (!SKIP.has('pglite')) {
      providers.push(await benchProvider('pglite', workDir, mailbox, undefined, !SKIP.has('tokens') && !SKIP.has('pglite-tokens'), bareTarget, argon2));
    }
    // The least a password sign-in can cost here: the bare library plus argon2id (bench/bare-provider.ts).
    // Last: its sign-ins fill the in-memory adapter (an LRU of 1,000 entries), which would evict the
    // grants and refresh tokens the token-endpoint phases use.
    if (bare && !SKIP.has('bare-signin')) {
      const { info } = bare;
      let n = 0;
      log(`bare oidc-provider: password sign-ins (${CONCURRENCY} users at a time, ${SECONDS} s)`);
      bareSignIn = await signInPhase(
        'password sign-in, bare oidc-provider',
        { concurrency: CONCURRENCY, seconds: SECONDS, warmupSeconds: 1, pid: bare.child.pid!, dbPids: undefined },
        async () => {
          await signIn(info.url, info.web, { email: `u${n++}@bench.example.com`, password: PASSWORD }, { mailbox, scope: 'openid email profile' });
        },
        argon2,
      );
    }

    if (bare) {
      bareRssMiB = peakRssMiB(bare.child.pid!);
      await bare.stop();
      bare = undefined;
    }
    const limits = providers.flatMap((p) => [p.firstSignInLimit, p.repeatSignInLimit]);
    const overall = limits.length
      ? { perSecond: limits.reduce((a, l) => a + l.perSecond, 0) / limits.length, cpuMs: limits.reduce((a, l) => a + l.cpuMs, 0) / limits.length }
      : { perSecond: start.verifications / start.seconds, cpuMs: start.cpuMs };
    argon2Report = { info: argon2.info, start, overall };
  } finally {
    await argon2?.stop();
    await mailbox.stop();
    cleanup();
  }

  for (const p of providers) {
    const phases: [string, PhaseResult][] = [
      ...[p.firstSignIn, p.repeatSignIn, ...(p.tokens ? Object.values(p.tokens) : [])].map((r) => [p.database, r] as [string, PhaseResult]),
      ...(p.bareTokens ? Object.values(p.bareTokens) : []).map((r) => [`bare (with ${p.database})`, r] as [string, PhaseResult]),
    ];
    for (const [who, r] of phases) {
      if ((r.otherCpu ?? 0) > 0.25) notes.push(`${who}, ${r.name}: other processes kept ${r.otherCpu!.toFixed(2)} cores busy meanwhile`);
      if (r.errors) notes.push(`${who}, ${r.name}: ${r.errors} errors, e.g. ${r.firstErrors.join(' | ')}`);
    }
  }
  if (bareSignIn?.result.errors) notes.push(`bare, ${bareSignIn.result.name}: ${bareSignIn.result.errors} errors, e.g. ${bareSignIn.result.firstErrors.join(' | ')}`);
  const table = report(m, argon2Report, providers, bareSignIn, bareRssMiB, notes);
  process.stdout.write(`\n${table}\n\nCommand: npm run bench (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  if (process.env.BENCH_JSON) {
    writeFileSync(process.env.BENCH_JSON, JSON.stringify({ machine: m, argon2: { params: argon2Params, ...argon2Report }, concurrency: CONCURRENCY, providers, bareRssMiB, notes, table }, null, 2));
  }
}

await main();
