import { expect } from 'chai';
import * as oidc from 'openid-client';
import { Browser, csrfToken, formAction } from './support/browser.js';
import { resetData, testEnv } from './support/env.js';
import { makeClient, makeUser, PASSWORD, REDIRECT_URI } from './support/fixtures.js';
import { completeSignIn, openSignIn, relyingParty } from './support/rp.js';
import { answerConsent, idp, isConsentPage, signIn } from './support/tokens.js';

describe('consent (clients that are not first-party)', () => {
  beforeEach(resetData);

  async function thirdParty(overrides = {}) {
    const client = await makeClient({ firstParty: false, name: 'Partner CRM', ...overrides });
    return { client, rp: await relyingParty(client) };
  }

  it('shows what the app asks for in plain words, and issues tokens after "Allow"', async () => {
    const { user, customer } = await makeUser({ email: 'consent@example.com', owner: true });
    const { client, rp } = await thirdParty();
    const browser = new Browser();
    const request = await rp.authorize({ scope: 'openid email profile customer' });
    const page = await completeSignIn(browser, await openSignIn(browser, request.url), 'consent@example.com', PASSWORD);

    expect(isConsentPage(page)).to.equal(true);
    expect(page.html).to.include('<h1>Allow access?</h1>');
    expect(page.html).to.include('Partner CRM would like to:');
    for (const words of ['Confirm that it is you', 'See your email address', 'See your name and language', 'See your customer number and your role']) {
      expect(page.html).to.include(words);
    }
    expect(page.html).to.include('You are signed in as consent@example.com.');
    expect(page.html).to.include('Afterwards you return to 127.0.0.1:9.');
    expect(page.headers.get('content-security-policy')).to.include("frame-ancestors 'none'");

    const back = await answerConsent(browser, page, 'allow');
    expect(back.url).to.match(/^http:\/\/127\.0\.0\.1:9\/cb\?code=/);
    const tokens = await oidc.authorizationCodeGrant(rp.config, new URL(back.url), {
      pkceCodeVerifier: request.verifier,
      expectedState: request.state,
      expectedNonce: request.nonce,
      idTokenExpected: true,
    });
    expect(tokens.claims()).to.include({ sub: user.id, email: 'consent@example.com', customer_number: customer.customer_number, role: 'admin' });
    const events = await testEnv().db('audit_events').where({ type: 'consent.granted', user_id: user.id });
    expect(events).to.have.length(1);
    expect(events[0].details).to.include({ client_id: client.client_id });
  });

  it('is skipped for first-party clients', async () => {
    await makeUser({ email: 'first@example.com' });
    const rp = await relyingParty(await makeClient({ firstParty: true }));
    const { consentShown, tokens } = await signIn(rp, 'first@example.com', PASSWORD, { params: { scope: 'openid email profile customer' } });
    expect(consentShown).to.equal(false);
    expect(tokens!.claims()!.role).to.equal('user');
  });

  it('is remembered per user and client: a new session does not ask again, a new scope asks only for that', async () => {
    const { user } = await makeUser({ email: 'remember@example.com' });
    const { client, rp } = await thirdParty();
    const first = await signIn(rp, 'remember@example.com', PASSWORD, { params: { scope: 'openid email' }, consent: 'allow' });
    expect(first.consentShown).to.equal(true);

    // Another browser (a new session), same scopes: straight back to the app.
    const second = await signIn(rp, 'remember@example.com', PASSWORD, { params: { scope: 'openid email' } });
    expect(second.consentShown).to.equal(false);
    expect(second.tokens!.claims()).to.include({ sub: user.id, email: 'remember@example.com' });

    // Asking for more: only the new scope is listed.
    const browser = new Browser();
    const request = await rp.authorize({ scope: 'openid email profile' });
    const page = await completeSignIn(browser, await openSignIn(browser, request.url), 'remember@example.com', PASSWORD);
    expect(isConsentPage(page)).to.equal(true);
    expect(page.html).to.include('See your name and language');
    expect(page.html).not.to.include('See your email address');
    await answerConsent(browser, page, 'allow');

    const listed = await idp(['consent', 'list', '--email', 'remember@example.com']);
    const consents = listed.output!.consents as { client_id: string; client_name: string; scopes: string[] }[];
    expect(consents).to.have.length(1);
    expect(consents[0]).to.include({ client_id: client.client_id, client_name: 'Partner CRM' });
    expect(consents[0]!.scopes).to.have.members(['openid', 'email', 'profile']);
  });

  it('"Deny" returns access_denied to the app and remembers nothing', async () => {
    const { user } = await makeUser({ email: 'deny@example.com' });
    const { rp } = await thirdParty();
    const { callback, tokens } = await signIn(rp, 'deny@example.com', PASSWORD, { consent: 'deny' });
    expect(tokens).to.equal(undefined);
    expect(callback.searchParams.get('error')).to.equal('access_denied');
    expect(await testEnv().db('consents').where({ user_id: user.id })).to.have.length(0);
    expect(await testEnv().db('audit_events').where({ type: 'consent.denied', user_id: user.id })).to.have.length(1);
  });

  it('can be revoked: tokens stop working and the next sign-in asks again, in the same browser too', async () => {
    const { user } = await makeUser({ email: 'revoke@example.com' });
    const { client, rp } = await thirdParty();
    const { tokens, browser } = await signIn(rp, 'revoke@example.com', PASSWORD, { params: { scope: 'openid email offline_access', prompt: 'consent' }, consent: 'allow' });
    expect(tokens!.refresh_token).to.be.a('string');

    const revoked = await idp(['consent', 'revoke', '--email', 'revoke@example.com', '--client-id', client.client_id]);
    expect(revoked.exitCode).to.equal(0);
    expect(revoked.output).to.deep.include({ grants_revoked: 1 });

    const introspection = await oidc.tokenIntrospection(rp.config, tokens!.access_token);
    expect(introspection.active).to.equal(false);
    let refreshError: unknown;
    await oidc.refreshTokenGrant(rp.config, tokens!.refresh_token!).catch((e: unknown) => (refreshError = e));
    expect((refreshError as { error?: string }).error).to.equal('invalid_grant');

    // Same browser: still signed in, but the consent page is back.
    const again = await browser.go((await rp.authorize({ scope: 'openid email' })).url, {}, testEnv().url);
    expect(isConsentPage(again)).to.equal(true);
    expect((await idp(['consent', 'list', '--email', 'revoke@example.com'])).output!.consents).to.deep.equal([]);
    expect(await testEnv().db('audit_events').where({ type: 'consent.revoked', user_id: user.id })).to.have.length(1);

    const twice = await idp(['consent', 'revoke', '--email', 'revoke@example.com', '--client-id', client.client_id]);
    expect(twice.exitCode).to.equal(1);
    expect(twice.error).to.include('has not allowed');
    expect((await idp(['consent', 'revoke', '--email', 'nobody@example.com', '--client-id', client.client_id])).error).to.equal('No user with email nobody@example.com.');
  });

  it('lists claims asked for with the claims parameter', async () => {
    await makeUser({ email: 'claims@example.com' });
    const { rp } = await thirdParty();
    const browser = new Browser();
    const request = await rp.authorize({ scope: 'openid', claims: JSON.stringify({ id_token: { customer_number: null, email: { essential: true } } }) });
    const page = await completeSignIn(browser, await openSignIn(browser, request.url), 'claims@example.com', PASSWORD);
    expect(page.html).to.include('See these details: your customer number, your email address');
  });

  it('speaks German with ui_locales=de', async () => {
    await makeUser({ email: 'de@example.com' });
    const { rp } = await thirdParty();
    const browser = new Browser();
    const page = await completeSignIn(browser, await openSignIn(browser, (await rp.authorize({ ui_locales: 'de' })).url), 'de@example.com', PASSWORD);
    expect(page.html).to.include('<html lang="de">');
    expect(page.html).to.include('Partner CRM möchte:');
    expect(page.html).to.include('>Erlauben</button>');
    expect(page.html).to.include('Ihre E-Mail-Adresse sehen');
  });

  describe('bad input', () => {
    async function consentPage() {
      await makeUser({ email: 'bad@example.com' });
      const { rp } = await thirdParty();
      const browser = new Browser();
      const page = await completeSignIn(browser, await openSignIn(browser, (await rp.authorize()).url), 'bad@example.com', PASSWORD);
      expect(isConsentPage(page)).to.equal(true);
      return { browser, page, action: new URL(formAction(page.html), page.url).href };
    }

    it('a post without a decision, or an unknown one, shows the page again with 400', async () => {
      const { browser, page, action } = await consentPage();
      for (const body of [{ _csrf: csrfToken(page.html) }, { _csrf: csrfToken(page.html), decision: 'maybe' }] as Record<string, string>[]) {
        const res = await browser.request(action, { method: 'POST', body: new URLSearchParams(body) });
        expect(res.status).to.equal(400);
        expect(await res.text()).to.include('Please choose &#34;Allow&#34; or &#34;Deny&#34;.');
      }
    });

    it('a post without the CSRF token is refused with 403', async () => {
      const { browser, action } = await consentPage();
      const res = await browser.request(action, { method: 'POST', body: new URLSearchParams({ decision: 'allow' }) });
      expect(res.status).to.equal(403);
    });

    it('a post after the interaction finished, or for an unknown one, gives a clear 400 page', async () => {
      const { browser, page, action } = await consentPage();
      const done = await answerConsent(browser, page, 'allow');
      expect(done.url.startsWith(REDIRECT_URI)).to.equal(true);
      const again = await browser.request(action, { method: 'POST', body: new URLSearchParams({ _csrf: csrfToken(page.html), decision: 'allow' }) });
      expect(again.status).to.equal(400);
      expect(await again.text()).to.include('This sign-in has expired or was already completed');
      const unknown = await browser.request(`${testEnv().url}/interaction/nope/consent`, { method: 'POST', body: new URLSearchParams({ _csrf: csrfToken(page.html), decision: 'allow' }) });
      expect(unknown.status).to.equal(400);
    });
  });
});
