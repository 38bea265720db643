// Bad input everywhere: malformed, oversized, wrongly encoded and unexpected values (SQL injection
// strings among them) in every path parameter, query, form field, JSON body, header and cookie of every
// route: ours (enumerated from the app's routers) and oidc-provider's endpoints. Each answer must be
// below 500 and show no stack trace or SQL error; afterwards no stored data has changed, every table is
// still there, the server still answers, and nothing was logged as an error. The number of cases is
// bounded (about a thousand requests).
import { expect } from 'chai';
import net from 'node:net';
import type { RunningServer } from '../src/app.js';
import { createLogger } from '../src/log.js';
import { Browser, csrfToken } from './support/browser.js';
import { resetData, startInstance, testEnv } from './support/env.js';
import { makeClient, makeUser, PASSWORD } from './support/fixtures.js';
import { consoleSignIn, openSignIn, relyingParty } from './support/rp.js';

const OPS_TOKEN = 'an-operator-token-of-at-least-32-characters-for-fuzzing';

/** Values tried in every slot. None is a valid email address, URL or identifier, so nothing legitimate gets stored. */
const PAYLOADS = [
  "' OR '1'='1",
  "'; DROP TABLE users; --",
  '1; DELETE FROM oidc_clients WHERE 1=1',
  '" OR ""="',
  "admin'--",
  '%00\u0000null byte',
  '../../../../etc/passwd',
  '<script>alert(1)</script>',
  '${7*7}{{7*7}}<%= 7*7 %>',
  'x'.repeat(5000),
  'ü😀\u202e\uFEFF\uD800',
  '-1',
  '[]',
  '{"$gt":""}',
  'javascript:alert(1)',
  'a@b',
];

/** Field names used by our forms (from the views) and by the OAuth endpoints. */
const FIELDS = [
  'identifier', 'password', 'code', 'trust', 'decision', 'action', 'email', 'name', 'role', 'token', 'device_name',
  'current_password', 'new_password', 'interaction', 'redirect_uris', 'post_logout_redirect_uris', 'kind', 'auth_method',
  'grant_types', 'refresh_token', 'first_party', 'backchannel_logout_uri', 'id_token_alg', 'scope', 'confirm', 'google_email',
  'logout', 'xsrf', 'client_id', 'client_secret', 'redirect_uri', 'response_type', 'grant_type', 'code_verifier', 'state',
  'nonce', 'prompt', 'login_hint', 'ui_locales', 'acr_values', 'id_token_hint', 'post_logout_redirect_uri', 'token_type_hint',
  'request', 'request_uri', 'claims', 'max_age', 'resource', 'error', 'code_challenge', 'code_challenge_method',
];

const PROVIDER_ROUTES = [
  { methods: ['GET', 'POST'], path: '/auth' },
  { methods: ['GET'], path: '/auth/:uid' },
  { methods: ['POST'], path: '/token' },
  { methods: ['GET', 'POST'], path: '/me' },
  { methods: ['POST'], path: '/token/introspection' },
  { methods: ['POST'], path: '/token/revocation' },
  { methods: ['GET', 'POST'], path: '/session/end' },
  { methods: ['POST'], path: '/session/end/confirm' },
  { methods: ['GET'], path: '/session/end/success' },
  { methods: ['POST'], path: '/reg' },
  { methods: ['GET', 'PUT', 'DELETE'], path: '/reg/:clientId' },
  { methods: ['GET'], path: '/jwks' },
  { methods: ['GET'], path: '/.well-known/openid-configuration' },
  { methods: ['POST'], path: '/request' },
];

/** Lone surrogates (which encodeURIComponent refuses) as U+FFFD, as a browser would send them. */
const wellFormed = (s: string) => s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');

/** Header changes, one per request in turn. */
function headerVariant(i: number, cookie: string, payload: string): Record<string, string> {
  const ascii = encodeURIComponent(wellFormed(payload)).slice(0, 2000);
  const variants: Record<string, string>[] = [
    { cookie },
    { cookie: `${cookie}; idp_csrf=${ascii}; idp_csrf.sig=${ascii}; _session=${ascii}; _session.sig=x; idp_trust=${ascii}` },
    { cookie: `junk=${'y'.repeat(6000)}; ${cookie}` },
    { cookie, 'accept-language': `*;q=abc, de-DE;q=NaN, ${'x'.repeat(500)}, ;;;` },
    { cookie, accept: 'application/json' },
    { cookie, 'x-forwarded-for': ascii, 'x-forwarded-proto': 'gopher', 'x-forwarded-host': ascii },
    { cookie, 'x-request-id': ascii.padEnd(300, 'z') },
    { cookie, 'user-agent': `Mozilla/5.0 ${ascii}`.padEnd(6000, 'u'), referer: ascii },
    { cookie, authorization: `Bearer ${ascii}` },
    { cookie, authorization: `Basic ${Buffer.from(`${payload}:${payload}`).toString('base64')}` },
    { cookie, 'if-none-match': ascii, range: 'bytes=-1--2' },
  ];
  return variants[i % variants.length]!;
}

const STACK_TRACE = /\bat .+\.(ts|js|cjs|mjs):\d+|node_modules|\n\s+at /;
const SQL_ERROR = /syntax error at or near|relation "|SQLSTATE|duplicate key|violates .* constraint|knex/i;
const TABLES = ['customers', 'users', 'oidc_clients', 'signing_keys', 'trusted_devices', 'consents', 'resource_servers', 'totp_credentials', 'recovery_codes', 'user_tokens'];

describe('bad input everywhere (fuzz)', function () {
  this.timeout(120_000);
  let server: RunningServer;
  const logLines: string[] = [];

  before(async () => {
    server = await startInstance(
      { opsToken: OPS_TOKEN, metricsToken: 'a-metrics-token-of-at-least-32-characters', trustProxy: true },
      { log: createLogger('warn', { write: (line: string) => void logLines.push(line) }) },
    );
  });
  after(() => server.close());
  beforeEach(resetData);

  async function digest(): Promise<Record<string, string>> {
    const { db } = testEnv();
    const out: Record<string, string> = {};
    for (const table of TABLES) {
      const row = (await db.raw(`SELECT count(*) AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS h FROM ${table} t`)) as { rows: { n: number; h: string }[] };
      out[table] = `${Number(row.rows[0]!.n)}:${row.rows[0]!.h}`;
    }
    return out;
  }

  it('answers every malformed request to every route below 500, without stack traces, and changes nothing stored', async () => {
    const { user } = await makeUser({ email: 'admin@example.com', owner: true, role: 'admin' });
    await makeUser({ email: 'colleague@example.com' });
    const client = await makeClient();
    // One browser signed in to the account console (as an admin) and to the operator pages, with an
    // interaction in progress, so that handlers behind sign-in and CSRF checks run too.
    const browser = new Browser();
    const home = await consoleSignIn(browser, 'admin@example.com', PASSWORD);
    expect(home.status).to.equal(200);
    const login = await browser.go(`${server.url}/ops/login`);
    await browser.submit(login, '/ops/login', { _csrf: csrfToken(login.html), token: OPS_TOKEN });
    const signInPage = await openSignIn(browser, (await (await relyingParty(client)).authorize({ prompt: 'login' })).url);
    const uid = /\/interaction\/([\w-]+)/.exec(signInPage.url)![1]!;
    const csrf = csrfToken(signInPage.html);
    const cookie = await browser.jar.getCookieString(server.url);

    const before = await digest();
    const routes = [
      // Routes that legitimately change state whatever the input (sign out everywhere, revoke or renew all,
      // a profile name, which may be any text, "Secure my account", whose new password may be any long text)
      // are left out: a valid CSRF token makes them do their job.
      ...server.app.routes.filter(
        (r) =>
          ![
            '/ops/logout',
            '/account/2fa/setup',
            '/interaction/:uid/abort',
            '/account/sessions/end-all',
            '/account/devices/revoke-all',
            '/account/device-credentials/renew-all',
            '/account/profile',
            '/account/secure',
          ].includes(r.path),
      ),
      { methods: ['GET'], path: '/interaction/:uid/abort' }, // with junk uids only (a real one would end the sign-in)
      ...PROVIDER_ROUTES,
    ];
    expect(server.app.routes.length, 'routes enumerated from the routers').to.be.greaterThan(30);

    interface Case {
      method: string;
      url: string;
      headers: Record<string, string>;
      body?: string | Buffer;
    }
    const cases: Case[] = [];
    let n = 0;
    for (const route of routes) {
      for (const method of route.methods) {
        PAYLOADS.forEach((payload, i) => {
          // Path parameters: the payload; for the interaction routes every other case uses the real uid.
          const path = route.path.replace(/:(\w+)/g, (_m, name: string) =>
            name === 'uid' && i % 2 && !route.path.endsWith('abort') ? uid : name === 'step' && i % 3 === 0 ? 'password' : encodeURIComponent(wellFormed(payload)),
          );
          const params = new URLSearchParams();
          for (const field of FIELDS) params.append(field, payload);
          if (i % 4 === 0) params.append('identifier', 'second value'); // a repeated field arrives as an array
          const headers = headerVariant(n++, cookie, payload);
          if (method === 'GET' || method === 'DELETE') {
            cases.push({ method, url: `${server.url}${path}?${params}`, headers });
          } else {
            params.set('_csrf', csrf);
            cases.push({ method, url: `${server.url}${path}`, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: params.toString() });
          }
        });
        if (method === 'POST' || method === 'PUT') {
          const url = `${server.url}${route.path.replace(/:uid/, uid).replace(/:step/, 'password').replace(/:(\w+)/g, 'x')}`;
          const bodies: [string, string | Buffer][] = [
            ['application/json', JSON.stringify({ _csrf: csrf, identifier: { $gt: '' }, password: ["' OR 1=1 --"], redirect_uris: 'x', grant_types: [{}] })],
            ['application/json', '{"_csrf": "unterminated'],
            ['application/x-www-form-urlencoded', `_csrf=${csrf}&identifier=%E0%A4%A&password=%%%&code=%FF%FE%00`],
            ['application/x-www-form-urlencoded; charset=utf-16', `_csrf=${csrf}&identifier=x&password=y`],
            ['multipart/form-data; boundary=----x', `------x\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\n${csrf}\r\n------x--`],
            ['text/xml', `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>`],
            ['application/x-www-form-urlencoded', Buffer.alloc(300_000, 'a')],
            ['application/x-www-form-urlencoded', Buffer.from([0xff, 0xfe, 0xfd, 0x3d, 0x26, 0xc3, 0x28])],
          ];
          for (const [type, body] of bodies) cases.push({ method, url, headers: { cookie, 'content-type': type }, body });
        }
      }
    }

    const failures: string[] = [];
    const statuses = new Map<number, number>();
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++]!;
        const res = await fetch(c.url, { method: c.method, headers: c.headers, body: c.body, redirect: 'manual' });
        const text = await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const where = `${c.method} ${c.url.slice(0, 120)} [${Object.keys(c.headers).join(',')}]`;
        if (res.status >= 500) failures.push(`${res.status} for ${where}: ${text.slice(0, 200)}`);
        if (STACK_TRACE.test(text)) failures.push(`stack trace for ${where}: ${text.slice(0, 300)}`);
        if (SQL_ERROR.test(text)) failures.push(`SQL error text for ${where}: ${text.slice(0, 300)}`);
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: 4 }, worker));
    console.log(
      `      ${cases.length} requests to ${routes.length} routes in ${((Date.now() - started) / 1000).toFixed(1)} s; statuses: ${[...statuses.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([s, c]) => `${s}×${c}`)
        .join(' ')}`,
    );
    if (failures.length) console.log(logLines.filter((l) => l.includes('"level":50')).slice(0, 2).join('\n'));
    expect(failures.slice(0, 10)).to.deep.equal([]);
    expect(cases.length).to.be.within(500, 2000);

    // Nothing stored changed, every table is still there, the service still works.
    expect(await digest()).to.deep.equal(before);
    expect((await fetch(`${server.url}/readyz`)).status).to.equal(200);
    const account = await browser.go(`${testEnv().url}/account`);
    expect(account.status).to.equal(200);
    expect(account.html).to.include(`Signed in as ${user.email}`);
    // No request was logged as failed (500) or as an oidc-provider server_error.
    const errors = logLines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 50);
    expect(errors.map((e) => e.msg)).to.deep.equal([]);
  });

  it('malformed HTTP on the socket gets a 4xx and the server keeps answering', async () => {
    const port = Number(new URL(server.url).port);
    const raw = [
      'GET /interaction/%C0%AF%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      'GET /password/reset/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      'BREW /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      'POST /password/forgot HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nContent-Length: 20\r\nConnection: close\r\n\r\nabc',
      'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n',
      `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      'POST /token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n',
    ];
    for (const request of raw) {
      const answer = await new Promise<string>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.end(Buffer.from(request, 'latin1')));
        let data = '';
        socket.on('data', (d) => (data += d.toString('latin1')));
        socket.on('close', () => resolve(data));
        socket.on('error', () => resolve(data));
        socket.setTimeout(3000, () => socket.destroy());
      });
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
      expect(status, `${JSON.stringify(request.slice(0, 60))} → ${answer.slice(0, 80)}`).to.be.within(400, 499);
      expect(answer).not.to.match(STACK_TRACE);
    }
    expect((await fetch(`${server.url}/healthz`)).status).to.equal(200);
  });
});
