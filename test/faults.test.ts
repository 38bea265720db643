// Faults: a provider restart in the middle of a sign-in; several instances on one database; and, on
// a real PostgreSQL server, the database going away during sign-ins (a TCP proxy between the provider
// and PostgreSQL is cut and restored) and two provider processes behind a round-robin balancer.
import { expect } from 'chai';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import { startServer, type RunningServer } from '../src/app.js';
import { createLogger } from '../src/log.js';
import { Browser, csrfToken, formAction } from './support/browser.js';
import { resetData, startInstance, testEnv } from './support/env.js';
import { makeClient, makeUser, PASSWORD, REDIRECT_URI } from './support/fixtures.js';
import { answerTrust, completeSignIn, exchangeCode, isCodePage, isTrustPage, openSignIn, submitCode, submitPassword } from './support/rp.js';
import { mailbox } from './support/smtp.js';
import { relyingPartyWith } from './support/tokens.js';

async function count(table: string, where: Record<string, unknown>): Promise<number> {
  const [row] = await testEnv().db(table).where(where).count<{ count: number }[]>('* as count');
  return Number(row!.count);
}

describe('faults: restarts and several instances', function () {
  this.timeout(30_000);
  beforeEach(resetData);

  it('a restart of the provider in the middle of a sign-in: the user continues where they were', async () => {
    const { user } = await makeUser({ email: 'restart@example.com' });
    const client = await makeClient();
    const first = await startInstance();
    const port = Number(new URL(first.url).port);
    const rp = await relyingPartyWith(client.client_id, { secret: client.client_secret }, first.url);
    const browser = new Browser();
    const request = await rp.authorize();
    const codePage = await submitPassword(browser, await openSignIn(browser, request.url, first.url), 'restart@example.com', PASSWORD, first.url);
    expect(isCodePage(codePage)).to.equal(true);
    await first.close();
    expect((await fetch(`${first.url}/healthz`).catch(() => undefined))?.status).to.equal(undefined);

    // The new process listens where the old one did (same issuer), with nothing kept in memory.
    const second = await startInstance({ port }, { issuerForPort: () => first.url });
    try {
      const trustPage = await submitCode(browser, codePage, await mailbox.code('restart@example.com'), second.url);
      expect(isTrustPage(trustPage)).to.equal(true);
      const done = await answerTrust(browser, trustPage, 'no', second.url);
      expect(done.url).to.match(new RegExp(`^${REDIRECT_URI}\\?code=`));
      const tokens = await exchangeCode(rp, done.url, request);
      expect(tokens.claims()!.sub).to.equal(user.id);
      expect(await count('audit_events', { type: 'login.succeeded', user_id: user.id })).to.equal(1);
    } finally {
      await second.close();
    }
  });

  it('two instances on one database: a sign-in started on one continues on the other; keys, cookies and limits are shared', async () => {
    const { user } = await makeUser({ email: 'two@example.com' });
    const client = await makeClient();
    // Both are the same issuer (as behind one load balancer); the browser switches between them.
    const a = testEnv().server;
    const b = await startInstance({}, { sameIssuer: true });
    try {
      const rp = await relyingPartyWith(client.client_id, { secret: client.client_secret }, a.url);
      const browser = new Browser();
      const request = await rp.authorize();
      const signIn = await openSignIn(browser, request.url, a.url);
      const codePage = await submitPassword(browser, { ...signIn, url: signIn.url.replace(a.url, b.url) }, 'two@example.com', PASSWORD, b.url);
      expect(isCodePage(codePage), 'password step on B').to.equal(true);
      const trustPage = await submitCode(browser, { ...codePage, url: codePage.url.replace(b.url, a.url) }, await mailbox.code('two@example.com'), a.url);
      expect(isTrustPage(trustPage), 'code step on A').to.equal(true);
      const done = await answerTrust(browser, { ...trustPage, url: trustPage.url.replace(a.url, b.url) }, 'no', b.url);
      const callback = done.url.startsWith(REDIRECT_URI) ? done.url : (await browser.go(done.url.replace(a.url, b.url), {}, b.url)).url;
      expect(callback).to.match(new RegExp(`^${REDIRECT_URI}\\?code=`));
      // Code redeemed at A; the ID token verifies against B's JWKS; userinfo at B accepts A's access token.
      const tokens = await exchangeCode(rp, callback, request);
      const jwksA = (await (await fetch(`${a.url}/jwks`)).json()) as unknown;
      const jwksB = (await (await fetch(`${b.url}/jwks`)).json()) as unknown;
      expect(jwksB).to.deep.equal(jwksA);
      const info = (await (await fetch(`${b.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).json()) as { sub: string; email: string };
      expect(info).to.include({ sub: user.id, email: 'two@example.com' });

      // Limits: wrong passwords on A and on B count together.
      const attacker = new Browser();
      let page = await openSignIn(attacker, (await rp.authorize()).url, a.url);
      const statuses: number[] = [];
      for (let i = 0; i < 11; i += 1) {
        const base = i % 2 ? b.url : a.url;
        page = await submitPassword(attacker, { ...page, url: page.url.replace(/^http:\/\/127\.0\.0\.1:\d+/, base) }, 'two@example.com', `wrong-${i}`, base);
        statuses.push(page.status);
      }
      expect(statuses).to.deep.equal([...Array(10).fill(401), 429]);
    } finally {
      await b.close();
    }
  });
});

/** A TCP proxy in front of PostgreSQL that can cut every connection and refuse new ones. */
class CuttableProxy {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private cut = false;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((socket) => {
      if (this.cut) {
        socket.destroy();
        return;
      }
      const upstream = net.connect(target.port, target.host);
      for (const s of [socket, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      socket.pipe(upstream).pipe(socket);
      socket.on('close', () => upstream.destroy());
      upstream.on('close', () => socket.destroy());
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  down(): void {
    this.cut = true;
    for (const s of this.sockets) s.destroy();
  }

  up(): void {
    this.cut = false;
  }

  async close(): Promise<void> {
    this.down();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return Date.now() - started;
}

describe('faults on a PostgreSQL server (TEST_DATABASE_URL)', function () {
  this.timeout(60_000);
  const databaseUrl = process.env.TEST_DATABASE_URL;

  before(function () {
    if (!databaseUrl) {
      console.log('      (skipped: these tests cut connections to a PostgreSQL server and start separate processes on it; the embedded PGlite has neither)');
      this.skip();
    }
  });
  beforeEach(resetData);

  it('the database going away during sign-ins: 503 pages and JSON with Retry-After, recovery by itself, nothing lost or doubled', async () => {
    const { user } = await makeUser({ email: 'outage@example.com' });
    const client = await makeClient();
    const target = new URL(databaseUrl!);
    const proxy = new CuttableProxy({ host: target.hostname, port: Number(target.port || 5432) });
    await proxy.start();
    const viaProxy = new URL(databaseUrl!);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const server: RunningServer = await startServer(
      { ...testEnv().config, port: 0, databaseUrl: viaProxy.href },
      { log: createLogger(testEnv().config.logLevel), issuerForPort: (p) => `http://127.0.0.1:${p}`, keyRefreshMs: 0 },
    );
    try {
      const rp = await relyingPartyWith(client.client_id, { secret: client.client_secret }, server.url);
      const browser = new Browser();
      const request = await rp.authorize();
      const codePage = await submitPassword(browser, await openSignIn(browser, request.url, server.url), 'outage@example.com', PASSWORD, server.url);
      expect(isCodePage(codePage)).to.equal(true);
      const code = await mailbox.code('outage@example.com');

      proxy.down();
      const ready = await fetch(`${server.url}/readyz`);
      expect(ready.status).to.equal(503);
      expect(await ready.json()).to.deep.equal({ status: 'unavailable', reason: 'database' });
      const failed = await browser.submit(codePage, formAction(codePage.html), { _csrf: csrfToken(codePage.html), code }, server.url);
      expect(failed.status).to.equal(503);
      expect(failed.headers.get('retry-after')).to.equal('5');
      expect(failed.html).to.include('The service is temporarily unavailable');
      expect(failed.html).not.to.match(/\bat .+\.(ts|js):\d+/);
      // oidc-provider's endpoints answer the same way, as JSON for API callers.
      const token = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: 'x', redirect_uri: REDIRECT_URI }),
      });
      expect(token.status).to.equal(503);
      expect(token.headers.get('retry-after')).to.equal('5');
      expect(((await token.json()) as { error: string }).error).to.equal('temporarily_unavailable');
      // Discovery needs no database and keeps working.
      expect((await fetch(`${server.url}/.well-known/openid-configuration`)).status).to.equal(200);

      proxy.up();
      const recoveredIn = await until('readiness', async () => (await fetch(`${server.url}/readyz`)).status === 200);
      console.log(`      ready again ${recoveredIn} ms after the database came back`);

      // The same code, sent again, is accepted: nothing of the sign-in was lost.
      const trustPage = await submitCode(browser, codePage, code, server.url);
      expect(isTrustPage(trustPage)).to.equal(true);
      const done = await answerTrust(browser, trustPage, 'no', server.url);
      expect(done.url).to.match(new RegExp(`^${REDIRECT_URI}\\?code=`));

      // The token request fails while the database is away, and works with the same code afterwards.
      proxy.down();
      let error: { cause?: Response } | undefined;
      await exchangeCode(rp, done.url, request).catch((e: unknown) => (error = e as typeof error));
      expect(error?.cause?.status).to.equal(503);
      proxy.up();
      await until('readiness', async () => (await fetch(`${server.url}/readyz`)).status === 200);
      const tokens = await exchangeCode(rp, done.url, request);
      expect(tokens.claims()!.sub).to.equal(user.id);
      const codes = await testEnv().db('oidc_payloads').where({ model: 'AuthorizationCode' });
      expect(codes.map((c: { consumed_at: Date | null }) => c.consumed_at !== null), 'one code, issued once and used once').to.deep.equal([true]);
      // A second exchange of that code is refused (and, as OAuth requires, revokes what it gave).
      let reuse: { error?: string } | undefined;
      await exchangeCode(rp, done.url, request).catch((e: unknown) => (reuse = e as typeof reuse));
      expect(reuse?.error).to.equal('invalid_grant');

      expect(await count('audit_events', { type: 'login.succeeded', user_id: user.id })).to.equal(1);
      expect(await count('audit_events', { type: 'code.sent', user_id: user.id })).to.equal(1);
      const metrics = await server.app.services.metrics.registry.getSingleMetricAsString('idp_database_unavailable_total');
      expect(Number(/idp_database_unavailable_total (\d+)/.exec(metrics)![1])).to.be.at.least(2);
    } finally {
      await server.close();
      await proxy.close();
    }
  });

  it('two provider processes behind a round-robin balancer: every request of a sign-in alternates between them; SIGTERM stops one cleanly', async () => {
    const { user } = await makeUser({ email: 'processes@example.com' });
    const client = await makeClient();
    const { config } = testEnv();
    const backends: { port: number; alive: boolean; served: number }[] = [];
    let turn = 0;
    const balancer = http.createServer((req, res) => {
      const live = backends.filter((b) => b.alive);
      const backend = live[turn++ % live.length]!;
      backend.served += 1;
      const upstream = http.request({ host: '127.0.0.1', port: backend.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => {
        res.statusCode = 502;
        res.end();
      });
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => balancer.listen(0, '127.0.0.1', resolve));
    const lb = `http://127.0.0.1:${(balancer.address() as AddressInfo).port}`;
    const dataDir = mkdtempSync(path.join(tmpdir(), 'idp-procs-'));
    const children: { child: ChildProcessWithoutNullStreams; output: () => string }[] = [];
    try {
      const env = {
        ...process.env,
        NODE_ENV: 'development',
        DATABASE_URL: databaseUrl,
        ISSUER: lb,
        HOST: '127.0.0.1',
        PORT: '0',
        DATA_DIR: dataDir,
        COOKIE_KEYS: config.cookieKeys.join(','),
        DATA_ENCRYPTION_KEY: config.dataEncryptionKey.toString('hex'),
        SMTP_URL: mailbox.url,
        ARGON2_MEMORY_KIB: '8192',
        ARGON2_TIME_COST: '1',
        LOG_LEVEL: 'info',
      };
      const started = await Promise.all(
        [0, 1].map(async () => {
          const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env });
          let out = '';
          child.stdout.on('data', (d) => (out += d));
          child.stderr.on('data', (d) => (out += d));
          children.push({ child, output: () => out });
          const port = await new Promise<number>((resolve, reject) => {
            child.stdout.on('data', () => {
              const m = /"port":(\d+)/.exec(out);
              if (m) resolve(Number(m[1]));
            });
            child.once('exit', (code) => reject(new Error(`provider process exited with ${code}: ${out}`)));
          });
          return port;
        }),
      );
      for (const port of started) backends.push({ port, alive: true, served: 0 });

      const rp = await relyingPartyWith(client.client_id, { secret: client.client_secret }, lb);
      const browser = new Browser();
      const request = await rp.authorize();
      const page = await openSignIn(browser, request.url, lb);
      const done = await completeSignIn(browser, page, 'processes@example.com', PASSWORD, { origin: lb });
      expect(done.url).to.match(new RegExp(`^${REDIRECT_URI}\\?code=`));
      const tokens = await exchangeCode(rp, done.url, request);
      expect(tokens.claims()!.sub).to.equal(user.id);
      const info = await oidc.fetchUserInfo(rp.config, tokens.access_token, user.id);
      expect(info.email).to.equal('processes@example.com');
      expect(backends.map((b) => b.served).every((n) => n >= 4), `requests per process: ${backends.map((b) => b.served)}`).to.equal(true);
      // Each process logged its requests as JSON lines with a request id.
      for (const { output } of children) expect(output()).to.match(/"req_id":"[\w-]+".*"msg":"request"/);

      // SIGTERM: the process finishes, logs its shutdown and exits 0; the other one carries on.
      const [first] = children;
      const exited = new Promise<number | null>((resolve) => first!.child.once('exit', resolve));
      backends[0]!.alive = false;
      first!.child.kill('SIGTERM');
      expect(await exited).to.equal(0);
      expect(first!.output()).to.include('"msg":"shutting down"').and.include('"msg":"stopped"');
      expect((await fetch(`${lb}/readyz`)).status).to.equal(200);
      const refreshed = await oidc.fetchUserInfo(rp.config, tokens.access_token, user.id);
      expect(refreshed.sub).to.equal(user.id);
    } finally {
      for (const { child } of children) if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.all(children.map(({ child }) => (child.exitCode === null ? new Promise((resolve) => child.once('exit', resolve)) : undefined)));
      await new Promise<void>((resolve) => balancer.close(() => resolve()));
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
