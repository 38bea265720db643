import { expect } from 'chai';
import * as oidc from 'openid-client';
import { startServer, type RunningServer } from '../src/app.js';
import { createLogger } from '../src/log.js';
import { Browser, csrfToken, type Page } from './support/browser.js';
import { resetData, testEnv } from './support/env.js';
import { makeClient, makeUser, PASSWORD, REDIRECT_URI } from './support/fixtures.js';
import { idpOk, relyingPartyWith, signIn } from './support/tokens.js';

const OPS_TOKEN = 'an-operator-token-of-at-least-32-characters';

describe('operator pages for clients (/ops/clients)', () => {
  let ops: RunningServer;

  before(async () => {
    const { db, config } = testEnv();
    // An instance with OPS_TOKEN set, on the shared database (the main test server has none).
    ops = await startServer({ ...config, port: 0, opsToken: OPS_TOKEN }, { db, log: createLogger(config.logLevel), issuerForPort: () => testEnv().url, keyRefreshMs: 0 });
  });
  after(async () => ops?.close());

  beforeEach(async () => {
    await resetData();
    await testEnv().db('resource_servers').delete();
  });

  const url = (path: string) => `${ops.url}${path}`;

  async function signedIn(): Promise<{ browser: Browser; page: Page }> {
    const browser = new Browser();
    const login = await browser.go(url('/ops/login'));
    const page = await browser.submit(login, '/ops/login', { _csrf: csrfToken(login.html), token: OPS_TOKEN });
    expect(page.url).to.equal(url('/ops/clients'));
    return { browser, page };
  }

  function post(browser: Browser, page: Page, path: string, fields: Record<string, string>) {
    return browser.submit(page, path, { _csrf: csrfToken(page.html), ...fields });
  }

  it('do not exist unless OPS_TOKEN is set', async () => {
    for (const path of ['/ops', '/ops/login', '/ops/clients', '/ops/clients/new']) {
      const res = await fetch(`${testEnv().url}${path}`, { redirect: 'manual' });
      expect(res.status, path).to.equal(404);
    }
  });

  it('need the operator token: wrong ones are refused, audited and throttled per IP', async () => {
    const browser = new Browser();
    const unauthenticated = await browser.request(url('/ops/clients'));
    expect(unauthenticated.status).to.equal(303);
    expect(unauthenticated.headers.get('location')).to.equal('/ops/login');

    const login = await browser.go(url('/ops/login'));
    expect(login.html).to.include('<label for="token">Operator token</label>');
    const noCsrf = await browser.request(url('/ops/login'), { method: 'POST', body: new URLSearchParams({ token: OPS_TOKEN }) });
    expect(noCsrf.status).to.equal(403);

    const statuses: number[] = [];
    let page = login;
    for (let i = 0; i < 11; i += 1) {
      page = await browser.submit(page, '/ops/login', { _csrf: csrfToken(login.html), token: i % 2 ? 'wrong' : `${OPS_TOKEN}x` });
      statuses.push(page.status);
    }
    expect(statuses.slice(0, 10)).to.deep.equal(Array(10).fill(401));
    expect(statuses[10]).to.equal(429);
    expect(page.html).to.include('Too many attempts');
    const right = await browser.submit(page, '/ops/login', { _csrf: csrfToken(login.html), token: OPS_TOKEN });
    expect(right.status, 'throttled even with the right token').to.equal(429);
    expect(Number(right.headers.get('retry-after'))).to.be.greaterThan(0);
    const db = testEnv().db;
    expect(await db('audit_events').where({ type: 'ops.sign_in_failed' })).to.have.length(10);
    expect(await db('audit_events').where({ type: 'ops.throttled' })).to.have.length.at.least(1);
  });

  it('signs in with a scoped, HttpOnly, SameSite=Strict cookie; a tampered cookie or signing out ends it', async () => {
    const browser = new Browser();
    const login = await browser.go(url('/ops/login'));
    const res = await browser.request(url('/ops/login'), { method: 'POST', body: new URLSearchParams({ _csrf: csrfToken(login.html), token: OPS_TOKEN }) });
    expect(res.status).to.equal(303);
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('idp_ops='))!;
    expect(cookie).to.match(/path=\/ops/i).and.match(/httponly/i).and.match(/samesite=strict/i);
    expect(await testEnv().db('audit_events').where({ type: 'ops.signed_in' })).to.have.length(1);

    const list = await browser.go(url('/ops/clients'));
    expect(list.status).to.equal(200);
    const forged = new Browser();
    await forged.jar.setCookie(`idp_ops=${'9'.repeat(10)}.forged; Path=/ops`, url('/ops'));
    expect((await forged.request(url('/ops/clients'))).status).to.equal(303);

    await post(browser, list, '/ops/logout', {});
    expect((await browser.request(url('/ops/clients'))).status).to.equal(303);
  });

  it('lists clients; registers one and shows its secret once; the secret works', async () => {
    await makeClient({ name: 'Existing <b>app</b>' });
    const { browser, page } = await signedIn();
    expect(page.html).to.include('Existing &lt;b&gt;app&lt;/b&gt;');
    expect(page.headers.get('cache-control')).to.equal('no-store');

    const form = await browser.go(url('/ops/clients/new'));
    const created = await post(browser, form, '/ops/clients', {
      name: 'Ops web app',
      kind: 'web',
      redirect_uris: `${REDIRECT_URI}\r\nhttps://app.example.com/cb\r\n`,
      post_logout_redirect_uris: '',
      auth_method: 'client_secret_basic',
      refresh_token: 'yes',
      first_party: 'yes',
      id_token_alg: 'RS256',
    });
    expect(created.status).to.equal(201);
    expect(created.html).to.include('Copy the secret now: it is shown only this once.');
    const clientId = /id="client-id">([^<]+)</.exec(created.html)![1]!;
    const secret = /id="client-secret">([^<]+)</.exec(created.html)![1]!;

    const detail = await browser.go(url(`/ops/clients/${clientId}`));
    expect(detail.html).to.include('https://app.example.com/cb');
    expect(detail.html).not.to.include(secret);
    const row = await testEnv().db('oidc_clients').where({ client_id: clientId }).first();
    expect(row).to.include({ registered_via: 'ops', first_party: true });
    expect(await testEnv().db('audit_events').where({ type: 'client.registered' })).to.have.length(1);

    await makeUser({ email: 'ops-user@example.com' });
    const { tokens } = await signIn(await relyingPartyWith(clientId, { secret }), 'ops-user@example.com', PASSWORD);
    expect(tokens!.id_token).to.be.a('string');
  });

  it('refuses bad registrations with the form again (400), keeping what was typed', async () => {
    const { browser } = await signedIn();
    const form = await browser.go(url('/ops/clients/new'));
    const cases: [Record<string, string>, string][] = [
      [{ name: 'Bad', kind: 'web', redirect_uris: 'http://app.example.com/cb' }, 'must use https'],
      [{ name: 'Bad', kind: 'web', redirect_uris: 'https://app.example.com/cb#x' }, 'must not contain a fragment'],
      [{ name: '', kind: 'web', redirect_uris: REDIRECT_URI }, 'A client name of 1 to 200 characters is required.'],
      [{ name: 'Bad', kind: 'root', redirect_uris: REDIRECT_URI }, 'Choose the kind of client.'],
      [{ name: 'Bad', kind: 'web', redirect_uris: REDIRECT_URI, auth_method: 'private_key_jwt' }, 'use the CLI'],
      [{ name: 'Bad', kind: 'machine', scope: '' }, 'needs the API scopes'],
      [{ name: 'Bad', kind: 'web', redirect_uris: REDIRECT_URI, backchannel_logout_uri: 'ftp://x' }, 'must use https'],
    ];
    for (const [fields, message] of cases) {
      const page = await post(browser, form, '/ops/clients', fields);
      expect(page.status, JSON.stringify(fields)).to.equal(400);
      expect(page.html).to.include(message);
      if (fields.redirect_uris) expect(page.html, 'keeps the typed URIs').to.include(fields.redirect_uris);
    }
    expect(await testEnv().db('oidc_clients')).to.have.length(0);
  });

  it('edits redirect URIs with the same rules', async () => {
    const client = await makeClient({ name: 'Editable' });
    const { browser } = await signedIn();
    const detail = await browser.go(url(`/ops/clients/${client.client_id}`));
    const bad = await post(browser, detail, `/ops/clients/${client.client_id}`, { redirect_uris: 'javascript:alert(1)', post_logout_redirect_uris: '' });
    expect(bad.status).to.equal(400);
    expect(bad.html).to.include('must use https');
    const good = await post(browser, detail, `/ops/clients/${client.client_id}`, { redirect_uris: 'https://new.example.com/cb', post_logout_redirect_uris: 'https://new.example.com/' });
    expect(good.url).to.equal(url(`/ops/clients/${client.client_id}?saved=1`));
    expect(good.html).to.include('Saved.');
    const stored = (await idpOk(['client', 'show', '--client-id', client.client_id])) as { redirect_uris: string[]; post_logout_redirect_uris: string[] };
    expect(stored.redirect_uris).to.deep.equal(['https://new.example.com/cb']);
    expect(stored.post_logout_redirect_uris).to.deep.equal(['https://new.example.com/']);
    expect(await testEnv().db('audit_events').where({ type: 'client.updated' })).to.have.length(1);
  });

  it('rotates a secret: the old one stops working at once, the new one works', async () => {
    await idpOk(['resource', 'create', '--uri', 'https://api.example.com', '--scope', 'api:read']);
    const machine = await idpOk(['client', 'create', '--machine', '--name', 'Daemon', '--scope', 'api:read']);
    const clientId = machine.client_id as string;
    const grant = async (secret: string) => oidc.clientCredentialsGrant((await relyingPartyWith(clientId, { secret })).config, { resource: 'https://api.example.com', scope: 'api:read' });
    expect((await grant(machine.client_secret as string)).access_token).to.be.a('string');

    const { browser } = await signedIn();
    const detail = await browser.go(url(`/ops/clients/${clientId}`));
    const rotated = await post(browser, detail, `/ops/clients/${clientId}/secret`, {});
    expect(rotated.status).to.equal(200);
    const secret = /id="client-secret">([^<]+)</.exec(rotated.html)![1]!;
    expect(secret).not.to.equal(machine.client_secret);
    const old = (await grant(machine.client_secret as string).catch((e: unknown) => e)) as { status?: number; cause?: { parameters?: { error?: string } }[] };
    expect(old.status).to.equal(401);
    expect(old.cause?.[0]?.parameters?.error).to.equal('invalid_client');
    expect((await grant(secret)).access_token).to.be.a('string');

    // A public client has no secret to rotate.
    const pub = await makeClient({ public: true, grants: [] });
    const pubPage = await browser.go(url(`/ops/clients/${pub.client_id}`));
    expect(pubPage.html).not.to.include('/secret"');
    const refused = await post(browser, pubPage, `/ops/clients/${pub.client_id}/secret`, {});
    expect(refused.status).to.equal(400);
    expect(refused.html).to.include('has no secret to rotate');
  });

  it('deletes a client only when its id is typed to confirm', async () => {
    const client = await makeClient({ name: 'Doomed' });
    const { browser } = await signedIn();
    const detail = await browser.go(url(`/ops/clients/${client.client_id}`));
    const unconfirmed = await post(browser, detail, `/ops/clients/${client.client_id}/delete`, { confirm: 'yes' });
    expect(unconfirmed.status).to.equal(400);
    expect(unconfirmed.html).to.include('Type the client ID to confirm the deletion.');
    const deleted = await post(browser, detail, `/ops/clients/${client.client_id}/delete`, { confirm: client.client_id });
    expect(deleted.url).to.equal(url('/ops/clients?deleted=1'));
    expect(deleted.html).to.include('The client was deleted.');
    expect(await testEnv().db('oidc_clients')).to.have.length(0);
    expect(await testEnv().db('audit_events').where({ type: 'client.deleted' })).to.have.length(1);
  });

  it('unknown or malformed client ids give 404; forms without CSRF token 403', async () => {
    const { browser, page } = await signedIn();
    expect((await browser.request(url('/ops/clients/unknown-client'))).status).to.equal(404);
    expect((await browser.request(url('/ops/clients/bad%20id%3Cx%3E'))).status).to.equal(404);
    const noCsrf = await browser.request(url('/ops/clients'), { method: 'POST', body: new URLSearchParams({ name: 'x', kind: 'web', redirect_uris: REDIRECT_URI }) });
    expect(noCsrf.status).to.equal(403);
    const missing = await post(browser, page, '/ops/clients/unknown-client/delete', { confirm: 'unknown-client' });
    expect(missing.status).to.equal(404);
  });
});
