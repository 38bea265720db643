import { expect } from 'chai';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { createUser } from '../src/accounts/users.js';
import { runCommand } from '../src/cli/commands.js';
import { Browser, csrfToken, formAction, type Page } from './support/browser.js';
import { resetData, testEnv } from './support/env.js';
import { makeClient, makeUser, PASSWORD } from './support/fixtures.js';
import { consoleSignIn, isCodePage, isTotpPage, openSignIn, relyingParty, signInAndGetTokens, submitCode, submitPassword, type RelyingParty } from './support/rp.js';
import { mailbox } from './support/smtp.js';
import { totp } from './support/totp.js';
import { startReceiver } from './support/tokens.js';
import { awayFromStepBoundary, enrolTotp, post, url } from './support/pages.js';

const NEW_PASSWORD = 'granite meadow whistle 31';




const activeTrust = (userId: string) => testEnv().db('trusted_devices').where({ user_id: userId }).whereNull('revoked_at');

async function refreshFails(rp: RelyingParty, refreshToken: string): Promise<boolean> {
  try {
    await oidc.refreshTokenGrant(rp.config, refreshToken);
    return false;
  } catch (error) {
    return (error as { error?: string }).error === 'invalid_grant';
  }
}

describe("credentials stay coherent after security events (README's table)", () => {
  let rp: RelyingParty;
  beforeEach(async () => {
    await resetData();
    rp = await relyingParty(await makeClient());
  });

  it('password reset: every session and refresh token ends, every trusted browser is revoked, a notice is mailed', async () => {
    const { user } = await makeUser({ email: 'reset@example.com' });
    const elsewhere = await signInAndGetTokens(rp, 'reset@example.com', PASSWORD, { scope: 'openid offline_access', prompt: 'consent' }, new Browser(), { trust: 'yes' });
    mailbox.clear();
    const browser = new Browser();
    const page = await browser.go(url('/password/forgot'));
    await post(browser, page, '/password/forgot', { email: 'reset@example.com' });
    const link = /(http:\/\/127\.0\.0\.1:\d+\/password\/reset\/[\w-]+)/.exec((await mailbox.latest('reset@example.com')).text)![1]!;
    const form = await browser.go(link);
    await browser.submit(form, formAction(form.html), { _csrf: csrfToken(form.html), password: NEW_PASSWORD });
    expect(await refreshFails(rp, elsewhere.tokens.refresh_token!)).to.equal(true);
    expect(await activeTrust(user.id)).to.have.length(0);
    expect(await testEnv().db('oidc_payloads').where({ model: 'Session' }).whereRaw("payload->>'accountId' = ?", [user.id])).to.have.length(0);
    expect((await mailbox.latest('reset@example.com')).subject).to.equal('Your password was changed');
  });

  it('password change while signed in: the same, except this browser stays signed in and trusted', async () => {
    const { user } = await makeUser({ email: 'change@example.com' });
    const elsewhere = await signInAndGetTokens(rp, 'change@example.com', PASSWORD, { scope: 'openid offline_access', prompt: 'consent' }, new Browser(), { trust: 'yes' });
    const browser = new Browser();
    const mine = await signInAndGetTokens(rp, 'change@example.com', PASSWORD, { scope: 'openid offline_access', prompt: 'consent' }, browser, { trust: 'yes' });
    await consoleSignIn(browser, 'change@example.com', PASSWORD);
    await post(browser, await browser.go(url('/account/password')), '/account/password', { current_password: PASSWORD, new_password: NEW_PASSWORD });
    expect(await refreshFails(rp, elsewhere.tokens.refresh_token!)).to.equal(true);
    expect(await refreshFails(rp, mine.tokens.refresh_token!), 'refresh tokens end everywhere').to.equal(true);
    const trusted = await activeTrust(user.id);
    expect(trusted).to.have.length(1);
    const page = await submitPassword(browser, await openSignIn(browser, (await rp.authorize({ prompt: 'login' })).url), 'change@example.com', NEW_PASSWORD);
    expect(page.url, 'this browser is still trusted: no email code').to.match(/code=/);
  });

  it('TOTP set up, removed or bypassed: trusted browsers are revoked except the current one (bypass: all)', async () => {
    const { user } = await makeUser({ email: 'factor@example.com' });
    const other = new Browser();
    await signInAndGetTokens(rp, 'factor@example.com', PASSWORD, {}, other, { trust: 'yes' });
    const browser = new Browser();
    await signInAndGetTokens(rp, 'factor@example.com', PASSWORD, {}, browser, { trust: 'yes' });
    const { secret } = await enrolTotp(browser, 'factor@example.com');
    expect(await activeTrust(user.id)).to.have.length(1);

    await awayFromStepBoundary();
    await post(browser, await browser.go(url('/account/2fa')), '/account/2fa/disable', { code: totp(secret, 1) });
    expect(await activeTrust(user.id)).to.have.length(1);

    await signInAndGetTokens(rp, 'factor@example.com', PASSWORD, { prompt: 'login' }, other, { trust: 'yes' });
    expect(await activeTrust(user.id)).to.have.length(2);
    await enrolTotp(browser, 'factor@example.com');
    expect(await activeTrust(user.id)).to.have.length(1);
    const { services } = testEnv().server.app;
    await runCommand(services, ['user', 'disable-2fa', '--email', 'factor@example.com', '--for', '24h']);
    expect(await activeTrust(user.id), 'a bypass revokes every trusted browser').to.have.length(0);
  });

  it('email address changed: the old address is told and trusted browsers are revoked', async () => {
    const { user } = await makeUser({ email: 'moving@example.com' });
    await signInAndGetTokens(rp, 'moving@example.com', PASSWORD, {}, new Browser(), { trust: 'yes' });
    const browser = new Browser();
    await consoleSignIn(browser, 'moving@example.com', PASSWORD);
    const page = await post(browser, await browser.go(url('/account/profile')), '/account/profile/email', { new_email: 'moved@example.com' });
    const code = /^\s+(\d{6})$/m.exec((await mailbox.latest('moved@example.com')).text)![1]!;
    await post(browser, page, '/account/profile/email/confirm', { code });
    expect(await activeTrust(user.id)).to.have.length(0);
    expect((await mailbox.latest('moving@example.com')).subject).to.equal('Your email address was changed');
  });

  it('user disabled by an admin: sessions, refresh tokens and trusted browsers end at once, with back-channel logout', async () => {
    const { customer } = await makeUser({ email: 'boss@example.com', owner: true });
    const { services } = testEnv().server.app;
    const { user: worker } = await createUser(services.db, services.hasher, { customerNumber: customer.customer_number, email: 'worker@example.com', name: 'Worker', password: PASSWORD });
    const receiver = await startReceiver();
    try {
      const app = await relyingParty(await makeClient({ name: 'Backchannel App', backchannelLogoutUri: receiver.url }));
      const signed = await signInAndGetTokens(app, 'worker@example.com', PASSWORD, { scope: 'openid offline_access', prompt: 'consent' }, new Browser(), { trust: 'yes' });
      const admin = new Browser();
      await consoleSignIn(admin, 'boss@example.com', PASSWORD);
      await post(admin, await admin.go(url('/account/users')), `/account/users/${worker.id}/disable`);
      const logout = decodeJwt((await receiver.next()).get('logout_token')!);
      expect(logout.sub).to.equal(worker.id);
      expect(logout.sid).to.be.a('string');
      expect(await refreshFails(app, signed.tokens.refresh_token!)).to.equal(true);
      expect(await activeTrust(worker.id)).to.have.length(0);
    } finally {
      await receiver.close();
    }
  });

  it('counters are atomic: 20 parallel wrong passwords all count, none is lost', async () => {
    const { user } = await makeUser({ email: 'parallel-pw@example.com' });
    const browser = new Browser();
    const page = await openSignIn(browser, (await rp.authorize()).url);
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => submitPassword(browser, page, 'parallel-pw@example.com', `wrong password ${i}`)));
    expect(answers.every((a) => a.status === 401 || a.status === 429)).to.equal(true);
    // Every attempt is counted before its password is checked: the per-IP counter saw all 20, and each
    // attempt was either checked (login.failed) or refused by a limit (login.throttled).
    const perIp = await testEnv().db('rate_limits').where('key', 'like', 'pwd-ip%').first();
    expect(Number(perIp.points)).to.equal(20);
    const failed = await testEnv().db('audit_events').where({ user_id: user.id, type: 'login.failed' });
    const refused = await testEnv().db('audit_events').where({ user_id: user.id, type: 'login.throttled' });
    expect(failed.length + refused.length).to.equal(20);
    expect(failed.length).to.equal(10);
    expect((await submitPassword(browser, page, 'parallel-pw@example.com', PASSWORD)).status).to.equal(429);
  });
});

describe("support's temporary 2FA bypass", () => {
  let rp: RelyingParty;
  beforeEach(async () => {
    await resetData();
    rp = await relyingParty(await makeClient());
  });

  async function signInDuringBypass(email: string): Promise<{ browser: Browser; page: Page }> {
    const browser = new Browser();
    let page = await submitPassword(browser, await openSignIn(browser, (await rp.authorize()).url), email, PASSWORD);
    expect(isCodePage(page), 'email code instead of TOTP').to.equal(true);
    page = await submitCode(browser, page, await mailbox.code(email));
    expect(page.html).to.include('Set up your authenticator app again');
    return { browser, page };
  }

  it('`idp user disable-2fa --for 24h`: email code meanwhile, the user is mailed, and after the time the old app is required again', async () => {
    const { user } = await makeUser({ email: 'lost@example.com' });
    const { secret } = await enrolTotp(new Browser(), 'lost@example.com');
    const { services } = testEnv().server.app;
    const result = await runCommand(services, ['user', 'disable-2fa', '--email', 'lost@example.com', '--for', '24h']);
    expect(result.exitCode).to.equal(0);
    const until = new Date(result.output!.until as string).getTime();
    expect(until - Date.now()).to.be.within(24 * 3600_000 - 60_000, 24 * 3600_000 + 1000);
    expect((await mailbox.latest('lost@example.com')).subject).to.equal('Your authenticator app is switched off for a while');

    const { browser, page } = await signInDuringBypass('lost@example.com');
    const done = await browser.submit(page, formAction(page.html), { _csrf: csrfToken(page.html), action: 'later' }, testEnv().url);
    expect(done.url).to.match(/code=/);

    // The time runs out without a new set-up: the old app is required again.
    await testEnv().db('totp_credentials').where({ user_id: user.id }).update({ suspended_until: new Date(Date.now() - 1000) });
    const again = new Browser();
    const next = await submitPassword(again, await openSignIn(again, (await rp.authorize()).url), 'lost@example.com', PASSWORD);
    expect(isTotpPage(next)).to.equal(true);
    await awayFromStepBoundary();
    expect((await submitCode(again, next, totp(secret, 1))).url).to.match(/code=/);
    const types = (await testEnv().db('audit_events').where({ user_id: user.id }).orderBy('id')).map((e) => e.type);
    expect(types).to.include.members(['totp.bypass_started', 'totp.bypass_used', 'totp.bypass_ended']);
    const ended = await testEnv().db('audit_events').where({ user_id: user.id, type: 'totp.bypass_ended' }).first();
    expect(ended.details).to.include({ reason: 'expired' });
  });

  it('the user sets up a new app right after the sign-in; the bypass ends and the new app is required', async () => {
    const { user } = await makeUser({ email: 'newphone@example.com' });
    const { secret: oldSecret } = await enrolTotp(new Browser(), 'newphone@example.com');
    await runCommand(testEnv().server.app.services, ['user', 'disable-2fa', '--email', 'newphone@example.com', '--for', '3d']);
    const { browser, page } = await signInDuringBypass('newphone@example.com');
    const setup = await browser.submit(page, formAction(page.html), { _csrf: csrfToken(page.html), action: 'setup' }, testEnv().url);
    const secret = /<code class="key" id="totp-key">([^<]+)<\/code>/.exec(setup.html)![1]!.replace(/\s/g, '');
    expect(secret).not.to.equal(oldSecret);
    await awayFromStepBoundary();
    const wrong = await browser.submit(setup, formAction(setup.html), { _csrf: csrfToken(setup.html), action: 'activate', code: totp(oldSecret), device_name: 'New phone' }, testEnv().url);
    expect(wrong.status, wrong.html.slice(0, 1500)).to.equal(400);
    const codes = await browser.submit(setup, formAction(setup.html), { _csrf: csrfToken(setup.html), action: 'activate', code: totp(secret), device_name: 'New phone' }, testEnv().url);
    expect(codes.html).to.include('Your recovery codes');
    const done = await browser.submit(codes, formAction(codes.html), { _csrf: csrfToken(codes.html), action: 'continue' }, testEnv().url);
    expect(done.url).to.match(/code=/);
    const row = await testEnv().db('totp_credentials').where({ user_id: user.id }).first();
    expect(row).to.include({ status: 'active', device_name: 'New phone', suspended_until: null, pending_secret_encrypted: null });

    const next = new Browser();
    const totpPage = await submitPassword(next, await openSignIn(next, (await rp.authorize()).url), 'newphone@example.com', PASSWORD);
    expect(isTotpPage(totpPage)).to.equal(true);
    await awayFromStepBoundary();
    expect((await submitCode(next, totpPage, totp(oldSecret, 1))).status, 'the old app no longer works').to.equal(401);
  });

  it('the user found the old phone: a code from it ends the bypass', async () => {
    const { user } = await makeUser({ email: 'found@example.com' });
    const { secret } = await enrolTotp(new Browser(), 'found@example.com');
    await runCommand(testEnv().server.app.services, ['user', 'disable-2fa', '--email', 'found@example.com', '--for', '1h']);
    const { browser, page } = await signInDuringBypass('found@example.com');
    await awayFromStepBoundary();
    const done = await browser.submit(page, formAction(page.html), { _csrf: csrfToken(page.html), action: 'keep', code: totp(secret, 1) }, testEnv().url);
    expect(done.url).to.match(/code=/);
    expect((await testEnv().db('totp_credentials').where({ user_id: user.id }).first()).suspended_until).to.equal(null);
    const ended = await testEnv().db('audit_events').where({ user_id: user.id, type: 'totp.bypass_ended' }).first();
    expect(ended.details).to.include({ reason: 'kept_old_app' });
  });

  it('a customer admin can bypass for a chosen time; durations are bounded', async () => {
    const { customer } = await makeUser({ email: 'chief@example.com', owner: true });
    const { services } = testEnv().server.app;
    const { user: worker } = await createUser(services.db, services.hasher, { customerNumber: customer.customer_number, email: 'w@example.com', name: 'W', password: PASSWORD });
    await enrolTotp(new Browser(), 'w@example.com');
    const admin = new Browser();
    await consoleSignIn(admin, 'chief@example.com', PASSWORD);
    const users = await admin.go(url('/account/users'));
    expect(users.html).to.include('<option value="24h" selected>24 hours</option>');
    const bad = await post(admin, users, `/account/users/${worker.id}/disable-2fa`, { for: '999h' });
    expect(bad.status).to.equal(400);
    const done = await post(admin, users, `/account/users/${worker.id}/disable-2fa`, { for: '168h' });
    expect(done.html).to.match(/Two-factor authentication is switched off for W until \d{4}-\d\d-\d\d \d\d:\d\d UTC\./);
    const row = await testEnv().db('totp_credentials').where({ user_id: worker.id }).first();
    expect(row.suspended_until.getTime() - Date.now()).to.be.within(168 * 3600_000 - 60_000, 168 * 3600_000 + 1000);

    for (const bad of ['8d', '0h', 'soon']) {
      const res = await runCommand(services, ['user', 'disable-2fa', '--email', 'w@example.com', '--for', bad]);
      expect(res.exitCode, bad).to.equal(1);
    }
  });
});
