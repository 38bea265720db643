import { expect } from 'chai';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Browser, csrfToken } from './support/browser.js';
import { resetData, testEnv } from './support/env.js';
import { makeClient, makeUser, PASSWORD } from './support/fixtures.js';
import { completeSignIn, consoleSignIn, relyingParty, signInAndGetTokens } from './support/rp.js';
import { mailbox } from './support/smtp.js';
import { startReceiver } from './support/tokens.js';
import { post, url } from './support/pages.js';

const NEW_PASSWORD = 'lantern orchard pebble 77';


/** Makes the console session's sign-in older than the 5 minutes sensitive actions allow. */
async function ageSignIn(userId: string): Promise<void> {
  const { db } = testEnv();
  const sessions = await db('oidc_payloads').where({ model: 'Session' }).whereRaw("payload->>'accountId' = ?", [userId]);
  for (const s of sessions) {
    await db('oidc_payloads').where({ model: 'Session', id: s.id }).update({ payload: JSON.stringify({ ...s.payload, loginTs: Math.floor(Date.now() / 1000) - 600 }) });
  }
}

/** A machine client allowed to call the device-credential check API, and its JWT access token. */
async function deviceApiToken(scope = 'device-credentials:verify'): Promise<string> {
  const client = await makeClient({ name: 'Telephony', machine: true, scope: 'device-credentials:verify', redirectUris: [], postLogoutRedirectUris: [], grants: [] });
  const config = await oidc.discovery(new URL(testEnv().url), client.client_id, client.client_secret, oidc.ClientSecretBasic(client.client_secret!), { execute: [oidc.allowInsecureRequests] });
  const tokens = await oidc.clientCredentialsGrant(config, { resource: url('/api/device-credentials'), scope });
  return tokens.access_token;
}

async function check(token: string | undefined, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url('/api/device-credentials/verify'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

function issuedSecrets(html: string): { username: string; secret: string }[] {
  const usernames = [...html.matchAll(/<code class="device-username">([^<]+)<\/code>/g)].map((m) => m[1]!);
  const secrets = [...html.matchAll(/<code class="device-secret">([^<]+)<\/code>/g)].map((m) => m[1]!);
  return usernames.map((username, i) => ({ username, secret: secrets[i]! }));
}

describe('account console', () => {
  beforeEach(resetData);

  it('profile: name and language; the console then speaks German', async () => {
    const { user } = await makeUser({ email: 'profile@example.com' });
    const browser = new Browser();
    await consoleSignIn(browser, 'profile@example.com', PASSWORD);
    const page = await browser.go(url('/account/profile'));
    const bad = await post(browser, page, '/account/profile', { name: '  ', locale: 'en' });
    expect(bad.status).to.equal(400);
    const badLocale = await post(browser, page, '/account/profile', { name: 'X', locale: 'xx' });
    expect(badLocale.status).to.equal(400);
    const saved = await post(browser, page, '/account/profile', { name: 'Paula Profil', locale: 'de' });
    expect(saved.html).to.include('Ihr Profil wurde gespeichert.');
    expect((await browser.go(url('/account'))).html).to.include('<h1>Ihr Konto</h1>');
    expect(await testEnv().db('users').where({ id: user.id }).first()).to.include({ name: 'Paula Profil', locale: 'de' });
  });

  it('changing the email address needs a code sent to the new one, notifies the old one and revokes trusted browsers', async () => {
    const { user } = await makeUser({ email: 'old@example.com' });
    await makeUser({ email: 'taken@example.com' });
    const other = new Browser();
    const rp = await relyingParty(await makeClient());
    await signInAndGetTokens(rp, 'old@example.com', PASSWORD, {}, other, { trust: 'yes' });
    const browser = new Browser();
    await consoleSignIn(browser, 'old@example.com', PASSWORD);
    let page = await browser.go(url('/account/profile'));
    page = await post(browser, page, '/account/profile/email', { new_email: 'new@example.com' });
    expect(page.html).to.include('We sent a code to new@example.com');
    const mail = await mailbox.latest('new@example.com');
    expect(mail.subject).to.equal('Confirm your new email address');
    const code = /^\s+(\d{6})$/m.exec(mail.text)![1]!;
    const wrong = await post(browser, page, '/account/profile/email/confirm', { code: code === '000000' ? '111111' : '000000' });
    expect(wrong.status).to.equal(400);
    const done = await post(browser, page, '/account/profile/email/confirm', { code });
    expect(done.html).to.include('Your email address is now new@example.com.');
    expect((await testEnv().db('users').where({ id: user.id }).first()).email).to.equal('new@example.com');
    expect((await mailbox.latest('old@example.com')).text).to.include('changed to new@example.com');
    expect(await testEnv().db('trusted_devices').where({ user_id: user.id }).whereNull('revoked_at')).to.have.length(0);

    // An address of another account: sent like any other, refused vaguely at confirmation.
    page = await post(browser, done, '/account/profile/email', { new_email: 'taken@example.com' });
    const takenCode = /^\s+(\d{6})$/m.exec((await mailbox.latest('taken@example.com')).text)![1]!;
    const taken = await post(browser, page, '/account/profile/email/confirm', { code: takenCode });
    expect(taken.status).to.equal(409);
    expect(taken.html).to.include('This email address cannot be used.');
    expect(await testEnv().db('audit_events').where({ user_id: user.id, type: 'email.changed' })).to.have.length(1);
  });

  it('lists trusted browsers with browser, IP and dates; revokes one or all', async () => {
    const { user } = await makeUser({ email: 'trusting@example.com' });
    const rp = await relyingParty(await makeClient());
    const chrome = new Browser({ 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36' });
    await signInAndGetTokens(rp, 'trusting@example.com', PASSWORD, {}, chrome, { trust: 'yes' });
    const firefox = new Browser({ 'user-agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0' });
    await signInAndGetTokens(rp, 'trusting@example.com', PASSWORD, {}, firefox, { trust: 'yes' });
    await consoleSignIn(chrome, 'trusting@example.com', PASSWORD);
    const page = await chrome.go(url('/account/devices'));
    expect(page.html).to.include('Chrome 156 · Linux').and.include('Firefox 140 · Windows').and.include('(This browser)').and.include('127.0.0.1');
    const firefoxId = (await testEnv().db('trusted_devices').where({ user_id: user.id }).whereLike('user_agent', '%Firefox%').first()).id;
    const revoked = await post(chrome, page, `/account/devices/${firefoxId}/revoke`);
    expect(revoked.html).to.include('The browser is no longer trusted.').and.not.include('Firefox 140');
    expect((await post(chrome, page, `/account/devices/${firefoxId}/revoke`)).status).to.equal(404);
    const all = await post(chrome, revoked, '/account/devices/revoke-all');
    expect(all.html).to.include('You have no trusted browsers.');
  });

  it('sessions and apps: end another session, remove an app, sign out everywhere with back-channel logout', async () => {
    const { user } = await makeUser({ email: 'sessions@example.com' });
    const receiver = await startReceiver();
    try {
      const client = await makeClient({ name: 'Softphone Web', backchannelLogoutUri: receiver.url });
      const rp = await relyingParty(client);
      const phone = new Browser();
      const { tokens } = await signInAndGetTokens(rp, 'sessions@example.com', PASSWORD, { scope: 'openid offline_access', prompt: 'consent' }, phone);
      const browser = new Browser();
      await consoleSignIn(browser, 'sessions@example.com', PASSWORD);
      let page = await browser.go(url('/account/sessions'));
      expect(page.html).to.include('Apps: Softphone Web').and.include('(This browser)');
      expect(page.html).to.include('Remove access of Softphone Web');

      const otherUid = /action="\/account\/sessions\/([^/"]+)\/end"/.exec(page.html)![1]!;
      page = await post(browser, page, `/account/sessions/${otherUid}/end`);
      expect(page.html).to.include('The session was ended.');
      const logout = await receiver.next();
      const claims = decodeJwt(logout.get('logout_token')!);
      expect(claims.sub).to.equal(user.id);
      expect(claims.events).to.have.property('http://schemas.openid.net/event/backchannel-logout');

      page = await post(browser, page, `/account/apps/${encodeURIComponent(client.client_id)}/revoke`);
      expect(page.html).to.include('Softphone Web no longer has access.');
      let refreshError: unknown;
      await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!).catch((e: unknown) => (refreshError = e));
      expect((refreshError as { error?: string }).error).to.equal('invalid_grant');

      const everywhere = await post(browser, page, '/account/sessions/end-all');
      expect(everywhere.html).to.include('name="password"'); // this browser is signed out too
      const types = (await testEnv().db('audit_events').where({ user_id: user.id }).orderBy('id')).map((e) => e.type);
      expect(types).to.include.members(['session.ended', 'app.revoked', 'sessions.ended']);
    } finally {
      await receiver.close();
    }
  });

  describe('device credentials', () => {
    it('are created with a secret shown once, stored hashed, and checked by the telephony API', async () => {
      const { user } = await makeUser({ email: 'sip@example.com' });
      const browser = new Browser();
      await consoleSignIn(browser, 'sip@example.com', PASSWORD);
      let page = await browser.go(url('/account/device-credentials'));
      page = await post(browser, page, '/account/device-credentials', { label: 'Desk phone' });
      const [desk] = issuedSecrets(page.html);
      expect(desk!.username).to.match(/^\d+-\d{6}$/);
      expect(desk!.secret).to.have.length(21);
      page = await post(browser, page, '/account/device-credentials', { label: 'Softphone' });
      const [soft] = issuedSecrets(page.html);
      const listing = await browser.go(url('/account/device-credentials'));
      expect(listing.html).to.include('Desk phone').and.include(desk!.username).and.not.include(desk!.secret);
      const rows = await testEnv().db('device_credentials').where({ user_id: user.id });
      expect(JSON.stringify(rows)).not.to.include(desk!.secret);
      expect((await post(browser, page, '/account/device-credentials', { label: '' })).status).to.equal(400);

      const token = await deviceApiToken();
      expect(await check(token, { username: desk!.username, password: desk!.secret })).to.deep.include({ status: 200 });
      expect((await check(token, { username: desk!.username, password: desk!.secret })).json).to.include({ valid: true, user_id: user.id });
      expect((await check(token, { username: desk!.username, password: soft!.secret })).json).to.deep.equal({ valid: false });
      expect((await check(token, { username: 'nobody', password: 'x' })).json).to.deep.equal({ valid: false });

      // Renew one: the old secret stops working at once.
      const deskId = rows.find((r) => r.username === desk!.username).id;
      page = await post(browser, listing, `/account/device-credentials/${deskId}/renew`);
      const [renewed] = issuedSecrets(page.html);
      expect((await check(token, { username: desk!.username, password: desk!.secret })).json).to.deep.equal({ valid: false });
      expect((await check(token, { username: desk!.username, password: renewed!.secret })).json).to.include({ valid: true });
      // Renew all, then delete.
      page = await post(browser, page, '/account/device-credentials/renew-all');
      expect(issuedSecrets(page.html)).to.have.length(2);
      expect((await check(token, { username: soft!.username, password: soft!.secret })).json).to.deep.equal({ valid: false });
      page = await post(browser, page, `/account/device-credentials/${deskId}/delete`);
      expect(page.html).to.include('The device password was deleted.');
      expect((await post(browser, page, `/account/device-credentials/${deskId}/delete`)).status).to.equal(404);
      expect((await post(browser, page, '/account/device-credentials/not-a-uuid/renew')).status).to.equal(404);
      const types = (await testEnv().db('audit_events').where({ user_id: user.id })).map((e) => e.type);
      expect(types).to.include.members(['device_credential.created', 'device_credential.renewed', 'device_credential.deleted']);
    });

    it('the check API refuses missing, foreign and under-scoped tokens and bad bodies', async () => {
      expect((await check(undefined, { username: 'a', password: 'b' })).status).to.equal(401);
      expect((await check('not.a.jwt', { username: 'a', password: 'b' })).status).to.equal(401);
      const rp = await relyingParty(await makeClient());
      await makeUser({ email: 'apiuser@example.com' });
      const { tokens } = await signInAndGetTokens(rp, 'apiuser@example.com', PASSWORD);
      expect((await check(tokens.access_token, { username: 'a', password: 'b' })).status, 'an opaque user token').to.equal(401);
      const token = await deviceApiToken();
      for (const body of [{}, { username: 1, password: 'x' }, { username: 'a' }, '{"username":', '[]']) {
        const res = await check(token, body);
        expect(res.status, JSON.stringify(body)).to.equal(400);
      }
    });

    it('issuing a secret needs a recent sign-in', async () => {
      const { user } = await makeUser({ email: 'stale-sip@example.com' });
      const browser = new Browser();
      await consoleSignIn(browser, 'stale-sip@example.com', PASSWORD);
      const page = await browser.go(url('/account/device-credentials'));
      await ageSignIn(user.id);
      const res = await browser.request(url('/account/device-credentials'), { method: 'POST', body: new URLSearchParams({ _csrf: csrfToken(page.html), label: 'Phone' }) });
      expect(res.status).to.equal(303);
      expect(new URL(res.headers.get('location')!).searchParams.get('prompt')).to.equal('login');
      expect(await testEnv().db('device_credentials').where({ user_id: user.id })).to.have.length(0);
    });
  });

  it('the security log shows the user their own events only, in plain words', async () => {
    const { user } = await makeUser({ email: 'logged@example.com' });
    await makeUser({ email: 'someone@example.com' });
    const rp = await relyingParty(await makeClient());
    const otherBrowser = new Browser();
    await signInAndGetTokens(rp, 'someone@example.com', PASSWORD, {}, otherBrowser);
    const browser = new Browser({ 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0' });
    await consoleSignIn(browser, 'logged@example.com', PASSWORD);
    const page = await browser.go(url('/account/security-log'));
    expect(page.html).to.include('Signed in').and.include('Sign-in code sent by email').and.include('Firefox 140 · Linux');
    const foreign = await testEnv().db('audit_events').whereNot({ user_id: user.id }).whereNotNull('user_id');
    expect(foreign.length).to.be.greaterThan(0);
    expect(page.html).not.to.include('someone@example.com');
    expect((page.html.match(/<tr/g) ?? []).length).to.equal(await testEnv().db('audit_events').where({ user_id: user.id }).count({ n: '*' }).first().then((r) => Number(r!.n)));
  });

  it('"Secure my account" sets a new password, renews device secrets, signs out everywhere else and shows the changes', async () => {
    const { user } = await makeUser({ email: 'victim@example.com' });
    const rp = await relyingParty(await makeClient());
    const attacker = new Browser();
    const stolen = await signInAndGetTokens(rp, 'victim@example.com', PASSWORD, { scope: 'openid offline_access', prompt: 'consent' }, attacker, { trust: 'yes' });

    const alert = await mailbox.latest('victim@example.com');
    const secureLink = /(http:\/\/127\.0\.0\.1:\d+\/account\/secure)/.exec(alert.text)![1]!;
    const browser = new Browser();
    // The link leads through a sign-in straight to the guided page.
    let page = await completeSignIn(browser, await browser.go(secureLink), 'victim@example.com', PASSWORD);
    expect(page.url).to.equal(url('/account/secure'));
    expect(page.html).to.include('Change the password of your email mailbox first');

    page = await post(browser, await browser.go(url('/account/device-credentials')), '/account/device-credentials', { label: 'Desk phone' });
    const [desk] = issuedSecrets(page.html);
    const weak = await post(browser, page, '/account/secure', { new_password: 'password1' });
    expect(weak.status).to.equal(400);
    const done = await post(browser, page, '/account/secure', { new_password: NEW_PASSWORD });
    expect(done.html).to.include('Done. Your password is new');
    const [renewed] = issuedSecrets(done.html);
    expect(renewed!.username).to.equal(desk!.username);
    expect(done.html).to.include('Device password created').and.include('Browser trusted').and.include('class="change"');

    const token = await deviceApiToken();
    expect((await check(token, { username: desk!.username, password: desk!.secret })).json).to.deep.equal({ valid: false });
    expect((await check(token, { username: desk!.username, password: renewed!.secret })).json).to.include({ valid: true });
    let refreshError: unknown;
    await oidc.refreshTokenGrant(rp.config, stolen.tokens.refresh_token!).catch((e: unknown) => (refreshError = e));
    expect((refreshError as { error?: string }).error).to.equal('invalid_grant');
    expect(await testEnv().db('trusted_devices').where({ user_id: user.id }).whereNull('revoked_at')).to.have.length(0);
    const attackerAgain = await attacker.go((await rp.authorize()).url, {}, testEnv().url);
    expect(attackerAgain.html).to.include('name="password"');
    expect((await browser.go(url('/account'))).html).to.include('Signed in as victim@example.com');
  });
});

