// `npm run bench`: how fast is the provider, against the hardware limit (argon2id) and the bare library.
//
//   1. argon2id verifications per second with the provider's parameters (the hardware limit of sign-ins);
//   2. the provider (src/main.ts, a child process, NODE_ENV=production) on PostgreSQL (DATABASE_URL, or a
//      throwaway local server) and on embedded PGlite: complete sign-ins (first with the email code, then
//      repeat sign-ins on the trusted device), then refresh_token / client_credentials grants and
//      introspection;
//   3. the same token-endpoint operations against a bare oidc-provider with its in-memory adapter;
//   4. peak RSS (VmHWM) of each server process.
// All traffic is on 127.0.0.1. Environment knobs (defaults in brackets): BENCH_CONCURRENCY [8],
// BENCH_SECONDS per measured phase [10], BENCH_TOKEN_SECONDS [8], BENCH_SKIP=postgres,pglite,bare,tokens,pglite-tokens,
// BENCH_JSON=file (results as JSON), BENCH_SERVER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process';
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
import { type PhaseResult, peakRssMiB, processTree, runPhase } from './load.js';
import { BenchMailbox } from './mailbox.js';
import { findPostgresBin, freePort, INSTALL_HINT, type LocalPostgres, startLocalPostgres } from './postgres.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const TOKEN_SECONDS = Number(process.env.BENCH_TOKEN_SECONDS ?? 8);
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

interface Argon2Limit {
  perSecond: number;
  /** Both measurements (start and end of the run). */
  runs?: number[];
  singleMs: number;
  cpuMs: number;
  threads: number;
  inFlight: number;
}

function measureArgon2(): Argon2Limit {
  const out = execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/argon2-limit.ts')], {
    cwd: ROOT,
    env: { ...process.env, UV_THREADPOOL_SIZE: String(os.availableParallelism()), BENCH_ARGON2_PARAMS: JSON.stringify(argon2Params) },
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Argon2Limit;
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
    env: { ...process.env, PORT: String(port), NODE_ENV: 'production', BENCH_CHAINS: String(CONCURRENCY), UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? String(os.availableParallelism()) },
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

interface ProviderResults {
  database: string;
  firstSignIn: PhaseResult;
  repeatSignIn: PhaseResult;
  tokens: TokenResults | undefined;
  peakRssMiB: number | undefined;
}

async function tokenPhases(
  pid: number,
  dbPids: (() => number[]) | undefined,
  base: string,
  creds: { web: ClientCreds; machine: ClientCreds; api: string },
  refreshTokens: string[],
  accessTokens: string[],
): Promise<TokenResults> {
  const concurrency = Math.min(CONCURRENCY, refreshTokens.length, accessTokens.length);
  const chains = [...refreshTokens];
  const current = [...accessTokens];
  const opts = { concurrency, seconds: TOKEN_SECONDS, warmupSeconds: 1, pid, dbPids };
  const refreshPhase = await runPhase('refresh_token', opts, async (w) => {
    const next = await refresh(base, creds.web, chains[w]!);
    chains[w] = next.refreshToken;
    current[w] = next.accessToken;
  });
  const cc = await runPhase('client_credentials', { ...opts, concurrency: CONCURRENCY }, () => clientCredentials(base, creds.machine, creds.api));
  // Each worker introspects the access token its last refresh returned.
  const intro = await runPhase('introspection', opts, (w) => introspect(base, creds.web, current[w]!));
  return { refresh: refreshPhase, clientCredentials: cc, introspection: intro };
}

async function benchProvider(
  database: 'postgresql' | 'pglite',
  workDir: string,
  mailbox: BenchMailbox,
  pg: { url: string; pid?: number | undefined } | undefined,
  withTokens: boolean,
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
    const first = await runPhase('first sign-in (email code)', { concurrency: CONCURRENCY, seconds: SECONDS, maxOps: seeded.users.length, pid, dbPids }, async () => {
      const user = seeded.users[next++];
      if (!user) throw new Error('out of users');
      // An app that keeps the user signed in (offline_access; oidc-provider issues a refresh token only with prompt=consent).
      const result = await signIn(server.url, web, user, { mailbox, scope: 'openid email profile offline_access', prompt: 'consent', trust: 'yes' });
      if (!result.emailCode) throw new Error('first sign-in did not ask for the email code');
      if (!result.trustCookies.length) throw new Error('no trust cookie after "Yes"');
      trusted.push({ ...user, cookies: result.trustCookies });
      if (result.refreshToken) refreshTokens.push(result.refreshToken);
      accessTokens.push(result.accessToken);
    });

    log(`${database}: repeat sign-ins on trusted devices (${CONCURRENCY} users at a time, ${SECONDS} s)`);
    let turn = 0;
    const repeat = await runPhase('repeat sign-in (trusted device)', { concurrency: CONCURRENCY, seconds: SECONDS, warmupSeconds: 1, pid, dbPids }, async () => {
      if (!trusted.length) throw new Error('no trusted users');
      const user = trusted[turn++ % trusted.length]!;
      // The user signed out and closed the browser: only the long-lived trust cookie is left.
      const browser = new Browser();
      for (const c of user.cookies) browser.jar.set(c);
      const result = await signIn(server.url, web, user, { browser, mailbox, scope: 'openid email profile' });
      if (result.emailCode) throw new Error('trusted device was asked for the email code');
    });

    let tokens: TokenResults | undefined;
    if (withTokens) {
      log(`${database}: token endpoint (${TOKEN_SECONDS} s each: refresh_token, client_credentials, introspection)`);
      tokens = await tokenPhases(pid, dbPids, server.url, { web, machine: seeded.machine, api: seeded.api }, refreshTokens, accessTokens);
    }
    const rss = peakRssMiB(pid);
    return { database, firstSignIn: first, repeatSignIn: repeat, tokens, peakRssMiB: rss };
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

function report(m: Machine, limit: Argon2Limit | undefined, providers: ProviderResults[], bare: { tokens: TokenResults; peakRssMiB: number | undefined } | undefined, notes: string[]): string {
  const lines: string[] = [];
  lines.push(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB.toFixed(0)} GiB; Node ${m.node}; Linux ${m.kernel}`);
  lines.push(
    `argon2id m=${argon2Params.memoryCost} KiB t=${argon2Params.timeCost} p=${argon2Params.parallelism}: ` +
      (limit
        ? `${f1(limit.perSecond)} verifications/s = the limit (${limit.threads} threads, ${limit.inFlight} in flight; start/end of run ${limit.runs?.map(f1).join(' / ')}; ` +
          `one alone ${f1(limit.singleMs)} ms; ${f1(limit.cpuMs)} ms CPU each)`
        : 'not measured'),
  );
  lines.push(`Load: ${CONCURRENCY} concurrent users from 127.0.0.1, ${SECONDS} s per sign-in phase, ${TOKEN_SECONDS} s per token phase`);
  lines.push('');
  lines.push(
    '| Complete sign-ins | database | sign-ins/s | ÷ argon2 limit | p50 / p95 / p99 ms | server CPU ms per sign-in | argon2 share of it | CPU cores: server / PostgreSQL / load / other |',
  );
  lines.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const p of providers) {
    for (const r of [p.repeatSignIn, p.firstSignIn]) {
      const perOp = cpuPerOp(r);
      const share = limit && perOp ? limit.cpuMs / perOp : undefined;
      lines.push(`| ${r.name} | ${p.database} | ${rate(r)} | ${pct(limit ? r.perSecond / limit.perSecond : undefined)} | ${lat(r)} | ${f1(perOp)} | ${pct(share)} | ${cpu(r)} |`);
    }
  }
  lines.push('');
  const withTokens = providers.filter((p) => p.tokens);
  const header = ['Token endpoint', ...withTokens.map((p) => `${p.database} /s`), ...(bare ? ['bare oidc-provider /s'] : []), ...withTokens.map((p) => `${p.database} ÷ bare`), 'p50 / p95 / p99 ms (' + [...withTokens.map((p) => p.database), ...(bare ? ['bare'] : [])].join(', ') + ')'];
  lines.push(`| ${header.join(' | ')} |`);
  lines.push(`| --- | ${header.slice(1).map(() => '---:').join(' | ')} |`);
  for (const key of ['refresh', 'clientCredentials', 'introspection'] as const) {
    const label = { refresh: 'refresh_token grant', clientCredentials: 'client_credentials grant (JWT for an API)', introspection: 'introspection (opaque access token)' }[key];
    const ours = withTokens.map((p) => p.tokens![key]);
    const ref = bare?.tokens[key];
    const cells = [
      label,
      ...ours.map(rate),
      ...(bare ? [rate(ref)] : []),
      ...ours.map((r) => pct(ref ? r.perSecond / ref.perSecond : undefined)),
      [...ours, ...(ref ? [ref] : [])].map(lat).join('; '),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  lines.push('');
  lines.push('| Token endpoint CPU | server CPU ms per operation (provider + PostgreSQL) | bare ÷ ours (CPU) | CPU cores: server / PostgreSQL / load / other |');
  lines.push('| --- | ---: | ---: | --- |');
  for (const p of withTokens) {
    for (const key of ['refresh', 'clientCredentials', 'introspection'] as const) {
      const r = p.tokens![key];
      const ref = bare?.tokens[key];
      const ours = cpuPerOp(r);
      const theirs = ref ? cpuPerOp(ref) : undefined;
      lines.push(`| ${r.name} on ${p.database} | ${f1(ours)} | ${pct(ours && theirs ? theirs / ours : undefined)} | ${cpu(r)} |`);
    }
  }
  if (bare) for (const r of Object.values(bare.tokens)) lines.push(`| ${r.name} on bare oidc-provider | ${f1(cpuPerOp(r))} | | ${cpu(r)} |`);
  lines.push('');
  lines.push('| Peak RSS (VmHWM) | MiB |');
  lines.push('| --- | ---: |');
  for (const p of providers) lines.push(`| provider on ${p.database} | ${f0(p.peakRssMiB)} |`);
  if (bare) lines.push(`| bare oidc-provider (memory adapter) | ${f0(bare.peakRssMiB)} |`);
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
  const cleanup = () => {
    pg?.stop();
    rmSync(workDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  const providers: ProviderResults[] = [];
  let bare: { tokens: TokenResults; peakRssMiB: number | undefined } | undefined;
  let limit: Argon2Limit | undefined;
  try {
    log(`argon2id limit (${os.availableParallelism()} threads, 6 s)`);
    const before = measureArgon2();

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
      if (url) providers.push(await benchProvider('postgresql', workDir, mailbox, { url, pid: pg?.pid }, !SKIP.has('tokens')));
      pg?.stop();
      pg = undefined;
    }
    if (!SKIP.has('pglite')) providers.push(await benchProvider('pglite', workDir, mailbox, undefined, !SKIP.has('tokens') && !SKIP.has('pglite-tokens')));
    if (!SKIP.has('bare')) {
      log('bare oidc-provider with the in-memory adapter: token endpoint');
      const b = await startBare();
      try {
        const tokens = await tokenPhases(b.child.pid!, undefined, b.info.url, b.info, b.info.refreshTokens, b.info.accessTokens);
        bare = { tokens, peakRssMiB: peakRssMiB(b.child.pid!) };
      } finally {
        await b.stop();
      }
    }
    // Measured again at the end: the higher of the two is the limit (other work on the machine only lowers it).
    log('argon2id limit again');
    const after = measureArgon2();
    limit = before.perSecond >= after.perSecond ? before : after;
    limit.runs = [before.perSecond, after.perSecond];
  } finally {
    await mailbox.stop();
    cleanup();
  }

  for (const p of providers) {
    for (const r of [p.firstSignIn, p.repeatSignIn, ...(p.tokens ? Object.values(p.tokens) : [])]) {
      if ((r.otherCpu ?? 0) > 0.25) notes.push(`${p.database}, ${r.name}: other processes kept ${r.otherCpu!.toFixed(2)} cores busy meanwhile`);
    }
  }
  for (const p of providers) {
    for (const r of [p.firstSignIn, p.repeatSignIn, ...(p.tokens ? Object.values(p.tokens) : [])]) {
      if (r.errors) notes.push(`${p.database}, ${r.name}: ${r.errors} errors, e.g. ${r.firstErrors.join(' | ')}`);
    }
  }
  if (bare) {
    for (const r of Object.values(bare.tokens)) if ((r.otherCpu ?? 0) > 0.25) notes.push(`bare, ${r.name}: other processes kept ${r.otherCpu!.toFixed(2)} cores busy meanwhile`);
    for (const r of Object.values(bare.tokens)) if (r.errors) notes.push(`bare, ${r.name}: ${r.errors} errors, e.g. ${r.firstErrors.join(' | ')}`);
  }
  const table = report(m, limit, providers, bare, notes);
  process.stdout.write(`\n${table}\n\nCommand: npm run bench (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  if (process.env.BENCH_JSON) {
    writeFileSync(process.env.BENCH_JSON, JSON.stringify({ machine: m, argon2: { params: argon2Params, ...limit }, concurrency: CONCURRENCY, providers, bare, notes, table }, null, 2));
  }
}

await main();
