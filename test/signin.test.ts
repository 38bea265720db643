import { expect } from 'chai';
import * as oidc from 'openid-client';
import argon2 from 'argon2';
import { Browser, csrfToken, formAction, inputValue } from './support/browser.js';
import { resetData, testEnv } from './support/env.js';
import { makeClient, makeUser, PASSWORD, REDIRECT_URI } from './support/fixtures.js';
import { completeSignIn, openSignIn, relyingParty, signInAndGetTokens, submitPassword } from './support/rp.js';

const INVALID = 'The email address, customer number or password is not correct.';

describe('password sign-in (authorization code + PKCE, openid-client as the relying party)', () => {
  beforeEach(resetData);

  it('signs in with email and password and issues a verified ID token with amr, acr and auth_time', async () => {
    const { user } = await makeUser({ email: 'Jane.Doe@Example.com' });
    const rp = await relyingParty(await makeClient());
    const { tokens } = await signInAndGetTokens(rp, 'jane.doe@example.com', PASSWORD);
    const claims = tokens.claims()!;
    expect(claims.sub).to.equal(user.id);
    expect(claims.sub).not.to.include('@');
    expect(claims.iss).to.equal(testEnv().url);
    expect(claims.amr).to.deep.equal(['pwd', 'mca', 'mfa']);
    expect(claims.acr).to.equal('urn:telephony-idp:acr:2fa');
    expect(claims.auth_time).to.be.a('number');
    expect(tokens.refresh_token, 'no offline_access requested').to.equal(undefined);

    const info = await oidc.fetchUserInfo(rp.config, tokens.access_token, user.id);
    // The email code proved control of the mailbox.
    expect(info).to.include({ sub: user.id, email: 'jane.doe@example.com', email_verified: true, name: user.name });
    expect(info).not.to.have.property('customer_number');

    const events = await testEnv().db('audit_events').where({ user_id: user.id, type: 'login.succeeded' });
    expect(events).to.have.length(1);
    expect(events[0].ip).to.be.a('string');
  });

  it('signs the ID token with RS256 by default and the key is in the published JWKS', async () => {
    await makeUser({ email: 'rs@example.com' });
    const rp = await relyingParty(await makeClient());
    const { tokens } = await signInAndGetTokens(rp, 'rs@example.com', PASSWORD);
    const header = JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString());
    expect(header.alg).to.equal('RS256');
    const jwks = (await (await fetch(`${testEnv().url}/jwks`)).json()) as { keys: { kid: string; d?: string }[] };
    expect(jwks.keys.map((k) => k.kid)).to.include(header.kid);
    expect(jwks.keys.every((k) => k.d === undefined), 'no private parts published').to.equal(true);
  });

  it('signs in the owner with the customer number and grants the customer scope claims', async () => {
    const { user, customer } = await makeUser({ owner: true, customerNumber: '4711001' });
    const rp = await relyingParty(await makeClient());
    const { tokens } = await signInAndGetTokens(rp, customer.customer_number, PASSWORD, { scope: 'openid customer' }, undefined, { email: user.email });
    expect(tokens.claims()!.sub).to.equal(user.id);
    const info = await oidc.fetchUserInfo(rp.config, tokens.access_token, user.id);
    expect(info).to.include({ customer_number: '4711001', role: 'admin' });
  });

  it('issues a refresh token for offline_access and refreshes it', async () => {
    const { user } = await makeUser({ email: 'offline@example.com' });
    const rp = await relyingParty(await makeClient());
    const { tokens } = await signInAndGetTokens(rp, 'offline@example.com', PASSWORD, { scope: 'openid offline_access', prompt: 'consent' });
    expect(tokens.refresh_token).to.be.a('string');
    const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);
    expect(refreshed.access_token).to.be.a('string');
    expect(refreshed.claims()!.sub).to.equal(user.id);
  });

  it('a public client must use PKCE and gets tokens without a secret', async () => {
    await makeUser({ email: 'public@example.com' });
    const client = await makeClient({ public: true, grants: [] });
    expect(client).not.to.have.property('client_secret');
    const rp = await relyingParty(client);
    const { tokens } = await signInAndGetTokens(rp, 'public@example.com', PASSWORD);
    expect(tokens.id_token).to.be.a('string');

    const browser = new Browser();
    const noPkce = new URL(`${testEnv().url}/auth`);
    noPkce.search = new URLSearchParams({ client_id: client.client_id, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT_URI, state: 's1' }).toString();
    const refused = await browser.go(noPkce.href, {}, testEnv().url);
    expect(refused.url).to.include('error=invalid_request');
  });

  it('prefills the identifier from login_hint (escaped)', async () => {
    const rp = await relyingParty(await makeClient());
    const { url } = await rp.authorize({ login_hint: 'hint@example.com"><script>' });
    const page = await openSignIn(new Browser(), url);
    expect(page.status).to.equal(200);
    expect(inputValue(page.html, 'identifier')).to.equal('hint@example.com&#34;&gt;&lt;script&gt;');
    expect(page.html).to.include('<label for="identifier">Email address or customer number</label>');
    expect(page.html).to.include('<label for="password">Password</label>');
  });

  it('sends security headers on the sign-in page', async () => {
    const rp = await relyingParty(await makeClient());
    const page = await openSignIn(new Browser(), (await rp.authorize()).url);
    expect(page.headers.get('content-security-policy')).to.include("frame-ancestors 'none'").and.include("script-src 'self'");
    expect(page.headers.get('referrer-policy')).to.equal('no-referrer');
    expect(page.headers.get('cache-control')).to.equal('no-store');
  });

  describe('wrong credentials (no account enumeration)', () => {
    it('gives the same status and message for a wrong password, an unknown email and an unknown customer number', async () => {
      await makeUser({ email: 'known@example.com', owner: true, customerNumber: '5550001' });
      const rp = await relyingParty(await makeClient());
      const answers = [];
      for (const [identifier, password] of [
        ['known@example.com', 'wrong password'],
        ['unknown@example.com', PASSWORD],
        ['9999999', PASSWORD],
        ['5550001', 'wrong password'],
      ] as const) {
        const browser = new Browser();
        const page = await openSignIn(browser, (await rp.authorize()).url);
        const answer = await submitPassword(browser, page, identifier, password);
        answers.push({ status: answer.status, hasMessage: answer.html.includes(INVALID), keepsIdentifier: inputValue(answer.html, 'identifier') === identifier });
      }
      expect(answers).to.deep.equal(Array(4).fill({ status: 401, hasMessage: true, keepsIdentifier: true }));
      const failures = await testEnv().db('audit_events').where({ type: 'login.failed' });
      expect(failures).to.have.length(4);
    });

    it('refuses a user who has no password yet (invited) with the same message', async () => {
      await makeUser({ email: 'invited@example.com', password: null });
      const rp = await relyingParty(await makeClient());
      const browser = new Browser();
      const page = await openSignIn(browser, (await rp.authorize()).url);
      const answer = await submitPassword(browser, page, 'invited@example.com', 'anything at all');
      expect(answer.status).to.equal(401);
      expect(answer.html).to.include(INVALID);
    });

    it('throttles an identifier after 10 wrong passwords with 429 and Retry-After, also for the right password', async () => {
      await makeUser({ email: 'target@example.com' });
      const rp = await relyingParty(await makeClient());
      const browser = new Browser();
      let page = await openSignIn(browser, (await rp.authorize()).url);
      const statuses: number[] = [];
      for (let i = 0; i < 11; i += 1) {
        page = await submitPassword(browser, page, 'target@example.com', `wrong-${i}-password`);
        statuses.push(page.status);
      }
      expect(statuses.slice(0, 10)).to.deep.equal(Array(10).fill(401));
      expect(statuses[10]).to.equal(429);
      expect(Number(page.headers.get('retry-after'))).to.be.greaterThan(0);
      const right = await submitPassword(browser, page, 'target@example.com', PASSWORD);
      expect(right.status).to.equal(429);
      expect(right.html).to.include('Too many attempts');
    });
  });

  describe('malformed form posts', () => {
    async function signInPage() {
      const rp = await relyingParty(await makeClient());
      const browser = new Browser();
      const page = await openSignIn(browser, (await rp.authorize()).url);
      return { browser, page, action: new URL(formAction(page.html), page.url).href, csrf: csrfToken(page.html) };
    }

    it('missing fields give 400 with a clear message', async () => {
      const { browser, action, csrf } = await signInPage();
      const res = await browser.request(action, { method: 'POST', body: new URLSearchParams({ _csrf: csrf, identifier: 'a@example.com' }) });
      expect(res.status).to.equal(400);
      expect(await res.text()).to.include('Please enter your email address or customer number and your password.');
    });

    it('a huge field gives 413, not 500', async () => {
      const { browser, action, csrf } = await signInPage();
      const res = await browser.request(action, { method: 'POST', body: new URLSearchParams({ _csrf: csrf, identifier: 'x'.repeat(100_000), password: 'y' }) });
      expect(res.status).to.equal(413);
      expect(await res.text()).to.include('The request was too large.');
    });

    it('an over-long identifier or password within the size limit is refused cleanly', async () => {
      await makeUser({ email: 'long@example.com' });
      const { browser, action, csrf } = await signInPage();
      const longId = await browser.request(action, { method: 'POST', body: new URLSearchParams({ _csrf: csrf, identifier: `${'x'.repeat(300)}@example.com`, password: 'y' }) });
      expect(longId.status).to.equal(400);
      const longPw = await browser.request(action, { method: 'POST', body: new URLSearchParams({ _csrf: csrf, identifier: 'long@example.com', password: PASSWORD + 'z'.repeat(5000) }) });
      expect(longPw.status).to.equal(401);
    });

    it('JSON or an unknown content type is refused with 4xx and no stack trace', async () => {
      const { browser, action, csrf } = await signInPage();
      for (const [type, body] of [
        ['application/json', JSON.stringify({ _csrf: csrf, identifier: 'a@example.com', password: 'b' })],
        ['text/plain', 'hello'],
        ['application/x-www-form-urlencoded', '%%%&&&=%E0%A4%A'],
      ] as const) {
        const res = await browser.request(action, { method: 'POST', body, headers: { 'content-type': type } });
        const text = await res.text();
        expect(res.status, type).to.be.within(400, 499);
        expect(text).not.to.match(/at .*\.(ts|js):\d+/);
      }
    });

    it('a form without the CSRF token, or with a foreign one, is refused with 403', async () => {
      const { browser, action } = await signInPage();
      const missing = await browser.request(action, { method: 'POST', body: new URLSearchParams({ identifier: 'a@example.com', password: 'b' }) });
      expect(missing.status).to.equal(403);
      const other = await signInPage();
      const foreign = await browser.request(action, { method: 'POST', body: new URLSearchParams({ _csrf: other.csrf, identifier: 'a@example.com', password: 'b' }) });
      expect(foreign.status).to.equal(403);
      expect(await foreign.text()).to.include('This form has expired');
    });

    it('an unknown or expired interaction shows a clear 400 page', async () => {
      const browser = new Browser();
      const res = await browser.go(`${testEnv().url}/interaction/does-not-exist`);
      expect(res.status).to.equal(400);
      expect(res.html).to.include('This sign-in has expired or was already completed');
    });

    it('a form posted after the interaction finished does not sign in again', async () => {
      await makeUser({ email: 'twice@example.com' });
      const rp = await relyingParty(await makeClient());
      const browser = new Browser();
      const page = await openSignIn(browser, (await rp.authorize()).url);
      const first = await completeSignIn(browser, page, 'twice@example.com', PASSWORD);
      expect(first.url).to.match(/^http:\/\/127\.0\.0\.1:9\/cb\?code=/);
      const again = await submitPassword(browser, page, 'twice@example.com', PASSWORD);
      expect(again.status).to.equal(400);
    });
  });

  it('re-hashes a stored password whose argon2 parameters differ from the configured ones', async () => {
    const { user } = await makeUser({ email: 'rehash@example.com' });
    const { db } = testEnv();
    const oldHash = await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: 9216, timeCost: 2, parallelism: 1 });
    await db('users').where({ id: user.id }).update({ password_hash: oldHash });
    const rp = await relyingParty(await makeClient());
    await signInAndGetTokens(rp, 'rehash@example.com', PASSWORD);
    const stored = (await db('users').where({ id: user.id }).first()).password_hash as string;
    expect(stored).not.to.equal(oldHash);
    expect(stored).to.match(/^\$argon2id\$v=19\$m=8192,p=1,t=1\$/);
  });

  it('the abort link returns access_denied to the app', async () => {
    const rp = await relyingParty(await makeClient());
    const browser = new Browser();
    const { url, state } = await rp.authorize();
    const page = await openSignIn(browser, url);
    const abort = /href="(\/interaction\/[^"]+\/abort)"/.exec(page.html)![1]!;
    const back = await browser.go(new URL(abort, page.url).href, {}, testEnv().url);
    const callback = new URL(back.url);
    expect(callback.searchParams.get('error')).to.equal('access_denied');
    expect(callback.searchParams.get('state')).to.equal(state);
  });

  it('a bad client_id shows an error page, never a redirect', async () => {
    const res = await new Browser().request(`${testEnv().url}/auth?client_id=nope&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('https://evil.example/cb')}`);
    expect(res.status).to.equal(400);
    expect(res.headers.get('location')).to.equal(null);
    expect(await res.text()).to.include('invalid_client');
  });
});
