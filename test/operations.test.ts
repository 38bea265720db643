// Operations: health and readiness, Prometheus metrics and their protection, structured logs with a
// request id and without secrets, graceful shutdown.
import { expect } from 'chai';
import net from 'node:net';
import * as oidc from 'openid-client';
import type { RunningServer } from '../src/app.js';
import { createLogger } from '../src/log.js';
import { Browser } from './support/browser.js';
import { resetData, startInstance, testEnv } from './support/env.js';
import { makeClient, makeUser, PASSWORD, REDIRECT_URI } from './support/fixtures.js';
import { answerTrust, exchangeCode, isCodePage, openSignIn, submitCode, submitPassword } from './support/rp.js';
import { mailbox } from './support/smtp.js';
import { relyingPartyWith } from './support/tokens.js';

const METRICS_TOKEN = 'a-metrics-token-of-at-least-32-characters';

interface LogLine {
  level: number;
  msg: string;
  req_id?: string;
  [key: string]: unknown;
}

describe('operations', function () {
  this.timeout(30_000);
  let server: RunningServer;
  const lines: string[] = [];

  before(async () => {
    server = await startInstance(
      { metricsToken: METRICS_TOKEN, metricsPort: 0 },
      { log: createLogger('debug', { write: (line: string) => void lines.push(line) }) },
    );
  });
  after(() => server.close());
  beforeEach(async () => {
    await resetData();
    lines.length = 0;
  });

  const metricsText = async () => (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
  const metricValue = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}"+]/g, '\\$&')} (\\d+(\\.\\d+)?)$`, 'm').exec(text)?.[1] ?? 0);

  /** A whole sign-in on the instance: a wrong password first, then password, email code, trust, tokens, refresh, userinfo. */
  async function fullSignIn() {
    const { user } = await makeUser({ email: 'ops@example.com' });
    const client = await makeClient();
    const rp = await relyingPartyWith(client.client_id, { secret: client.client_secret }, server.url);
    const browser = new Browser();
    const request = await rp.authorize({ scope: 'openid email offline_access', prompt: 'consent' });
    const signIn = await openSignIn(browser, request.url, server.url);
    const wrong = await submitPassword(browser, signIn, 'ops@example.com', 'not the password at all', server.url);
    expect(wrong.status).to.equal(401);
    const codePage = await submitPassword(browser, wrong, 'ops@example.com', PASSWORD, server.url);
    expect(isCodePage(codePage)).to.equal(true);
    const code = await mailbox.code('ops@example.com');
    const trust = await submitCode(browser, codePage, code, server.url);
    const done = await answerTrust(browser, trust, 'yes', server.url);
    expect(done.url).to.match(new RegExp(`^${REDIRECT_URI}\\?code=`));
    const tokens = await exchangeCode(rp, done.url, request);
    const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);
    await oidc.fetchUserInfo(rp.config, refreshed.access_token, user.id);
    const cookies = (await browser.jar.getCookies(server.url)).map((c) => c.value).filter((v) => v.length >= 16);
    const authorizationCode = new URL(done.url).searchParams.get('code')!;
    return { user, client, code, tokens, refreshed, cookies, authorizationCode, csrf: /name="_csrf" value="([^"]+)"/.exec(signIn.html)![1]! };
  }

  it('/healthz answers while the process runs; /readyz checks the database', async () => {
    const health = await fetch(`${testEnv().url}/healthz`);
    expect(health.status).to.equal(200);
    expect(await health.json()).to.deep.equal({ status: 'ok' });
    const ready = await fetch(`${testEnv().url}/readyz`);
    expect(ready.status).to.equal(200);
    expect(await ready.json()).to.deep.equal({ status: 'ready' });
  });

  it('metrics: off without METRICS_TOKEN, 401 without the right bearer token, Prometheus text with it and on METRICS_PORT', async () => {
    expect((await fetch(`${testEnv().url}/metrics`)).status).to.equal(404);
    for (const authorization of [undefined, 'Bearer wrong', `Basic ${METRICS_TOKEN}`, `Bearer ${METRICS_TOKEN}x`]) {
      const res = await fetch(`${server.url}/metrics`, { headers: authorization ? { authorization } : {} });
      expect(res.status, authorization).to.equal(401);
      expect(res.headers.get('www-authenticate')).to.match(/^Bearer/);
    }
    const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).to.include('# TYPE http_requests_total counter').and.include('# TYPE http_request_duration_seconds histogram').and.include('process_cpu_user_seconds_total');

    const port = await fetch(`${server.metricsUrl}/metrics`);
    expect(port.status).to.equal(200);
    expect(await port.text()).to.include('# TYPE idp_sign_ins_total counter');
    expect((await fetch(`${server.metricsUrl}/account`)).status).to.equal(404);
  });

  it('metrics count requests, sign-ins by outcome and method, codes sent, and time requests', async () => {
    const before = await metricsText();
    await fullSignIn();
    const after = await metricsText();
    const delta = (series: string) => metricValue(after, series) - metricValue(before, series);
    expect(delta('idp_sign_ins_total{outcome="success",method="pwd+mca+mfa"}')).to.equal(1);
    expect(delta('idp_sign_in_steps_total{method="password",outcome="failure"}')).to.equal(1);
    expect(delta('idp_sign_in_steps_total{method="password",outcome="success"}')).to.equal(1);
    expect(delta('idp_sign_in_steps_total{method="email_code",outcome="success"}')).to.equal(1);
    expect(delta('idp_sign_in_steps_total{method="trust",outcome="success"}')).to.equal(1);
    expect(delta('idp_codes_sent_total{channel="email",outcome="sent"}')).to.equal(1);
    expect(delta('http_requests_total{method="POST",route="/token",status="200"}')).to.equal(2);
    expect(delta('http_requests_total{method="POST",route="/interaction/:uid/:step",status="401"}')).to.equal(1);
    expect(delta('idp_password_verify_seconds_count')).to.equal(2);
    expect(delta('http_request_duration_seconds_count{method="GET",route="/interaction/:uid",status_class="2xx"}')).to.be.at.least(2);
    // Only route templates as labels: no interaction uid, no code, no token.
    expect(after).not.to.match(/route="\/interaction\/[\w-]{10,}/);
  });

  it('logs are JSON lines with a request id, one access line per request, and never a password, code, token, cookie or secret', async () => {
    const secrets = await fullSignIn();
    const parsed = lines.map((l) => JSON.parse(l) as LogLine);
    expect(parsed.length).to.be.greaterThan(10);
    const requests = parsed.filter((l) => l.msg === 'request');
    expect(requests.length).to.be.greaterThan(10);
    for (const line of requests) {
      expect(line.req_id).to.match(/^[\w-]{8,}$/);
      expect(line).to.include.keys('method', 'route', 'status', 'ms', 'ip');
    }
    expect(parsed.find((l) => l.msg === 'mail sent')?.req_id, 'lines of deeper modules carry the request id too').to.match(/^[\w-]{8,}$/);
    const all = lines.join('\n');
    const forbidden: Record<string, string> = {
      password: PASSWORD,
      'wrong password': 'not the password at all',
      'email code': secrets.code,
      'authorization code': secrets.authorizationCode,
      'access token': secrets.tokens.access_token,
      'refresh token': secrets.tokens.refresh_token!,
      'rotated refresh token': secrets.refreshed.refresh_token!,
      'ID token': secrets.tokens.id_token!.split('.')[2]!,
      'client secret': secrets.client.client_secret!,
      'CSRF token': secrets.csrf,
    };
    secrets.cookies.forEach((value, i) => (forbidden[`cookie ${i}`] = value));
    for (const [name, value] of Object.entries(forbidden)) expect(all.includes(value), `${name} in the logs`).to.equal(false);
  });

  it('accepts a sane X-Request-Id and returns it; replaces anything else', async () => {
    const given = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'trace-0123456789abcdef' } });
    expect(given.headers.get('x-request-id')).to.equal('trace-0123456789abcdef');
    expect(lines.map((l) => JSON.parse(l) as LogLine).some((l) => l.msg === 'request' && l.req_id === 'trace-0123456789abcdef')).to.equal(true);
    for (const bad of ['short', 'has spaces in it', 'x'.repeat(200), '<script>alert(1)</script>', '"quoted";value']) {
      const res = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': bad } });
      expect(res.headers.get('x-request-id'), bad).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    }
  });

  it('graceful shutdown: readiness turns 503, a request in flight finishes, a stuck one is cut at the end of the grace period', async () => {
    const instance = await startInstance();
    const port = Number(new URL(instance.url).port);
    // A request whose body is still arriving when shutdown begins.
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let answer = '';
    socket.on('data', (d) => (answer += d));
    const body = 'email=slow%40example.com';
    socket.write(`POST /password/forgot HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\nemail=`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    let closed = false;
    const closing = instance.close({ graceMs: 5_000 }).then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(instance.app.draining).to.equal(true);
    expect(closed, 'waits for the request in flight').to.equal(false);
    expect(await fetch(`${instance.url}/healthz`).catch(() => 'refused')).to.equal('refused');
    socket.end(body.slice('email='.length));
    await closing;
    expect(answer).to.match(/^HTTP\/1\.1 403 /); // answered (no CSRF token), not cut off

    // A request that never completes is cut when the grace period ends.
    const stuck = await startInstance();
    const s2 = net.connect(Number(new URL(stuck.url).port), '127.0.0.1');
    await new Promise((resolve) => s2.once('connect', resolve));
    s2.on('error', () => undefined);
    s2.resume();
    const s2Closed = new Promise<boolean>((resolve) => {
      s2.once('close', () => resolve(true));
      setTimeout(() => resolve(false), 2000).unref();
    });
    s2.write('POST /password/forgot HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nx');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await stuck.close({ graceMs: 300 });
    expect(Date.now() - started).to.be.within(250, 3000);
    expect(await s2Closed, 'the stuck connection was closed by the server').to.equal(true);
  });
});
