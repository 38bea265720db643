import { expect } from 'chai';
import { createRequire } from 'node:module';
import { PNG } from 'pngjs';
import { runCommand } from '../src/cli/commands.js';
import { Browser, csrfToken, type Page } from './support/browser.js';
import { resetData, testEnv } from './support/env.js';
import { makeClient, makeUser, PASSWORD } from './support/fixtures.js';
import { consoleSignIn, isCodePage, isTotpPage, openSignIn, relyingParty, signInAndGetTokens, submitCode, submitPassword, type RelyingParty } from './support/rp.js';
import { mailbox } from './support/smtp.js';
import { totp } from './support/totp.js';
import { awayFromStepBoundary, enrolTotp as enrol, post, url } from './support/pages.js';

// jsqr is CommonJS with an ES-style default export; load it the CommonJS way.
const jsQR = createRequire(import.meta.url)('jsqr') as (data: Uint8ClampedArray, width: number, height: number) => { data: string } | null;


function decodeQr(html: string): string {
  const dataUrl = /<img class="qr" src="data:image\/png;base64,([^"]+)"/.exec(html)![1]!;
  const png = PNG.sync.read(Buffer.from(dataUrl, 'base64'));
  const result = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
  if (!result) throw new Error('QR code not readable');
  return result.data;
}



describe('two-factor authentication with an authenticator app (TOTP)', () => {
  let rp: RelyingParty;
  beforeEach(async () => {
    await resetData();
    rp = await relyingParty(await makeClient());
  });

  it('set-up shows a QR code and key for the same otpauth URI; activation needs a correct code and a device name', async () => {
    const { user } = await makeUser({ email: 'setup@example.com' });
    const browser = new Browser();
    await consoleSignIn(browser, 'setup@example.com', PASSWORD);
    const status = await browser.go(url('/account/2fa'));
    expect(status.html).to.include('<h1>Two-Factor Authentication</h1>').and.include('Two-factor authentication is off.');
    const setup = await post(browser, status, '/account/2fa/setup');
    const key = /<code class="key" id="totp-key">([^<]+)<\/code>/.exec(setup.html)![1]!;
    const secret = key.replace(/\s/g, '');
    expect(secret).to.match(/^[A-Z2-7]{32}$/);

    const uri = new URL(decodeQr(setup.html));
    expect(uri.protocol).to.equal('otpauth:');
    expect(uri.host).to.equal('totp');
    expect(decodeURIComponent(uri.pathname)).to.equal('/Test IdP:setup@example.com');
    expect(Object.fromEntries(uri.searchParams)).to.deep.equal({ secret, issuer: 'Test IdP', algorithm: 'SHA1', digits: '6', period: '30' });
    expect(setup.html).to.include('<label for="device_name">Device name</label>').and.include('Complete activation');

    const stored = await testEnv().db('totp_credentials').where({ user_id: user.id }).first();
    expect(stored.status).to.equal('pending');
    expect(stored.secret_encrypted).not.to.include(secret);

    await awayFromStepBoundary();
    const wrong = await post(browser, setup, '/account/2fa/activate', { code: totp(secret, 5), device_name: 'Phone' });
    expect(wrong.status).to.equal(400);
    expect(wrong.html).to.include('The code is not correct');
    const noName = await post(browser, setup, '/account/2fa/activate', { code: totp(secret), device_name: '   ' });
    expect(noName.status).to.equal(400);
    expect(noName.html).to.include('Please give the device a name');
    expect((await testEnv().db('totp_credentials').where({ user_id: user.id }).first()).status).to.equal('pending');

    const done = await post(browser, setup, '/account/2fa/activate', { code: totp(secret), device_name: "Philipp's iPhone" });
    expect(done.html).to.include('Two-factor authentication is on.');
    const codes = [...done.html.matchAll(/<li><code>([a-z0-9-]+)<\/code><\/li>/g)].map((m) => m[1]);
    expect(codes).to.have.length(10);
    expect(new Set(codes).size).to.equal(10);
    expect(done.html).not.to.include(secret);
    const hashes = await testEnv().db('recovery_codes').where({ user_id: user.id });
    expect(hashes).to.have.length(10);
    expect(JSON.stringify(hashes)).not.to.include(codes[0]!);

    const mail = await mailbox.latest('setup@example.com');
    expect(mail.subject).to.equal('Two-factor authentication is on');
    expect(mail.text).to.include("Philipp's iPhone");
    expect(await testEnv().db('audit_events').where({ user_id: user.id, type: 'totp.enabled' })).to.have.length(1);
    const again = await browser.go(url('/account/2fa'));
    expect(again.html).to.include('Two-factor authentication is on (Philipp&#39;s iPhone');
    expect(again.html).to.include('Recovery codes left: 10.');
  });

  it('signs in with password and TOTP instead of the email code, even on a trusted browser; amr has otp and mfa', async () => {
    const { user } = await makeUser({ email: 'totp@example.com' });
    const browser = new Browser();
    await signInAndGetTokens(rp, 'totp@example.com', PASSWORD, {}, browser, { trust: 'yes' });
    const { secret } = await enrol(browser, 'totp@example.com');
    mailbox.clear();

    await awayFromStepBoundary();
    const { tokens } = await signInAndGetTokens(rp, 'totp@example.com', PASSWORD, { prompt: 'login' }, browser, { totp: () => totp(secret, 1) });
    expect(tokens.claims()!.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
    expect(tokens.claims()!.acr).to.equal('urn:telephony-idp:acr:2fa');
    expect(mailbox.for('totp@example.com'), 'no email code').to.have.length(0);
    // The console shared the first sign-in's session, so two sign-ins in all.
    expect(await testEnv().db('audit_events').where({ user_id: user.id, type: 'login.succeeded' })).to.have.length(2);
  });

  it('a code is accepted once (replay refused), one step of drift either way, not two', async () => {
    await makeUser({ email: 'drift@example.com' });
    const { secret } = await enrol(new Browser(), 'drift@example.com');
    await awayFromStepBoundary();

    async function attempt(code: string): Promise<Page> {
      const browser = new Browser();
      const page = await submitPassword(browser, await openSignIn(browser, (await rp.authorize()).url), 'drift@example.com', PASSWORD);
      expect(isTotpPage(page)).to.equal(true);
      return submitCode(browser, page, code);
    }
    // Enrolment used the current step: it cannot be used again, and neither can an older one.
    const replayed = await attempt(totp(secret));
    expect(replayed.status).to.equal(401);
    expect((await attempt(totp(secret, -1))).status).to.equal(401);
    expect((await attempt(totp(secret, 2))).status, 'two steps ahead').to.equal(401);
    const ahead = await attempt(totp(secret, 1));
    expect(ahead.url, 'one step ahead is accepted').to.match(/^http:\/\/127\.0\.0\.1:9\/cb\?code=/);
    expect((await attempt(totp(secret, 1))).status, 'the same step again').to.equal(401);
    expect(replayed.html).to.include('The code is not correct. Please try again with the current code from your app.');
  });

  it('wrong codes are rate-limited per user', async () => {
    await makeUser({ email: 'limit@example.com' });
    const { secret } = await enrol(new Browser(), 'limit@example.com');
    const browser = new Browser();
    const page = await submitPassword(browser, await openSignIn(browser, (await rp.authorize()).url), 'limit@example.com', PASSWORD);
    const wrong = totp(secret, 10);
    const statuses = [];
    for (let i = 0; i < 11; i += 1) statuses.push((await submitCode(browser, page, wrong)).status);
    expect(statuses.slice(0, 10)).to.deep.equal(Array(10).fill(401));
    expect(statuses[10]).to.equal(429);
    await awayFromStepBoundary();
    expect((await submitCode(browser, page, totp(secret, 1))).status, 'even the right code waits').to.equal(429);
  });

  it('a recovery code replaces a TOTP code once', async () => {
    const { user } = await makeUser({ email: 'recover@example.com' });
    const { recoveryCodes } = await enrol(new Browser(), 'recover@example.com');
    const code = recoveryCodes[3]!;
    const first = await signInAndGetTokens(rp, 'recover@example.com', PASSWORD, {}, new Browser(), { totp: () => code.toUpperCase() });
    expect(first.tokens.claims()!.amr).to.include('otp');
    const browser = new Browser();
    const page = await submitPassword(browser, await openSignIn(browser, (await rp.authorize()).url), 'recover@example.com', PASSWORD);
    expect((await submitCode(browser, page, code)).status).to.equal(401);
    expect(await testEnv().db('audit_events').where({ user_id: user.id, type: 'totp.recovery_code_used' })).to.have.length(1);
  });

  it('the user turns it off with a current code; then sign-in uses the email code again', async () => {
    const { user } = await makeUser({ email: 'off@example.com' });
    const browser = new Browser();
    const { secret } = await enrol(browser, 'off@example.com');
    const status = await browser.go(url('/account/2fa'));
    const wrong = await post(browser, status, '/account/2fa/disable', { code: totp(secret, 7) });
    expect(wrong.status).to.equal(400);
    await awayFromStepBoundary();
    const off = await post(browser, status, '/account/2fa/disable', { code: totp(secret, 1) });
    expect(off.html).to.include('Two-factor authentication is off.');
    expect(await testEnv().db('totp_credentials').where({ user_id: user.id })).to.have.length(0);
    expect(await testEnv().db('recovery_codes').where({ user_id: user.id })).to.have.length(0);
    expect((await mailbox.latest('off@example.com')).subject).to.equal('Two-factor authentication was turned off');
    const audit = await testEnv().db('audit_events').where({ user_id: user.id, type: 'totp.disabled' }).first();
    expect(audit.details).to.include({ by: 'user' });

    const fresh = new Browser();
    const next = await submitPassword(fresh, await openSignIn(fresh, (await rp.authorize()).url), 'off@example.com', PASSWORD);
    expect(isCodePage(next)).to.equal(true);
  });

  it("an admin turns it off for a user of their own customer only; others can't", async () => {
    const { customer } = await makeUser({ email: 'boss@example.com', owner: true });
    const { createUser } = await import('../src/accounts/users.js');
    const { services } = testEnv().server.app;
    const { user: worker } = await createUser(services.db, services.hasher, { customerNumber: customer.customer_number, email: 'worker@example.com', name: 'Worker', password: PASSWORD });
    const { user: colleague } = await createUser(services.db, services.hasher, { customerNumber: customer.customer_number, email: 'colleague@example.com', name: 'Colleague', password: PASSWORD });
    await makeUser({ email: 'stranger@example.com', owner: true });
    await enrol(new Browser(), 'worker@example.com');

    const outsider = new Browser();
    await consoleSignIn(outsider, 'stranger@example.com', PASSWORD);
    const list = await outsider.go(url('/account/users'));
    expect(list.html).not.to.include('worker@example.com');
    const cross = await post(outsider, await outsider.go(url('/account/2fa')), `/account/users/${worker.id}/disable-2fa`);
    expect(cross.status).to.equal(404);

    const plain = new Browser();
    await consoleSignIn(plain, 'colleague@example.com', PASSWORD);
    const forbidden = await plain.go(url('/account/users'));
    expect(forbidden.status).to.equal(403);
    expect(colleague.role).to.equal('user');
    const formPage = await plain.go(url('/account/2fa'));
    expect((await post(plain, formPage, `/account/users/${worker.id}/disable-2fa`)).status).to.equal(403);
    expect(await testEnv().db('totp_credentials').where({ user_id: worker.id })).to.have.length(1);

    const admin = new Browser();
    await consoleSignIn(admin, 'boss@example.com', PASSWORD);
    const users = await admin.go(url('/account/users'));
    expect(users.html).to.include('worker@example.com').and.include('Authenticator app on');
    const done = await post(admin, users, `/account/users/${worker.id}/disable-2fa`, { for: 'permanent' });
    expect(done.html).to.include('Two-factor authentication is now off for Worker.');
    expect(await testEnv().db('totp_credentials').where({ user_id: worker.id })).to.have.length(0);
    const mail = await mailbox.latest('worker@example.com');
    expect(mail.text).to.include('An admin of your company (boss@example.com) turned off');
  });

  it('an operator turns it off with `idp user disable-2fa`', async () => {
    const { user } = await makeUser({ email: 'lost@example.com' });
    await enrol(new Browser(), 'lost@example.com');
    const { services } = testEnv().server.app;
    const ctx = services;
    const result = await runCommand(ctx, ['user', 'disable-2fa', '--email', 'LOST@example.com']);
    expect(result).to.deep.equal({ exitCode: 0, output: { user_id: user.id, email: 'lost@example.com', two_factor: 'email_code' } });
    expect((await mailbox.latest('lost@example.com')).text).to.include('Our support team turned off');
    expect(await runCommand(ctx, ['user', 'disable-2fa', '--email', 'lost@example.com'])).to.deep.equal({ exitCode: 1, error: 'lost@example.com has no authenticator app set up.' });
    expect(await runCommand(ctx, ['user', 'disable-2fa', '--email', 'nobody@example.com'])).to.deep.equal({ exitCode: 1, error: 'No user with email nobody@example.com.' });
    const audit = await testEnv().db('audit_events').where({ user_id: user.id, type: 'totp.disabled' }).first();
    expect(audit.details).to.include({ by: 'operator' });
  });

  it('setting up requires a recent sign-in', async () => {
    const { user } = await makeUser({ email: 'stale@example.com' });
    const browser = new Browser();
    await consoleSignIn(browser, 'stale@example.com', PASSWORD);
    const status = await browser.go(url('/account/2fa'));
    const { db } = testEnv();
    const session = await db('oidc_payloads').where({ model: 'Session' }).whereRaw("payload->>'accountId' = ?", [user.id]).first();
    await db('oidc_payloads')
      .where({ model: 'Session', id: session.id })
      .update({ payload: JSON.stringify({ ...session.payload, loginTs: Math.floor(Date.now() / 1000) - 600 }) });
    const res = await browser.request(url('/account/2fa/setup'), { method: 'POST', body: new URLSearchParams({ _csrf: csrfToken(status.html) }) });
    expect(res.status).to.equal(303);
    const location = new URL(res.headers.get('location')!);
    expect(location.pathname).to.equal('/auth');
    expect(location.searchParams.get('prompt')).to.equal('login');
    expect(await db('totp_credentials').where({ user_id: user.id })).to.have.length(0);
  });

  it('setting up revokes the other trusted browsers but keeps this one', async () => {
    const { user } = await makeUser({ email: 'devices@example.com' });
    const other = new Browser();
    await signInAndGetTokens(rp, 'devices@example.com', PASSWORD, {}, other, { trust: 'yes' });
    const browser = new Browser();
    await signInAndGetTokens(rp, 'devices@example.com', PASSWORD, {}, browser, { trust: 'yes' });
    await enrol(browser, 'devices@example.com');
    const devices = await testEnv().db('trusted_devices').where({ user_id: user.id }).orderBy('created_at');
    expect(devices.map((d) => d.revoked_at === null)).to.deep.equal([false, true]);
  });

  it('console pages need a signed-in user and refuse forms without the CSRF token', async () => {
    const anonymous = await fetch(url('/account/2fa'), { redirect: 'manual' });
    expect(anonymous.status).to.equal(303);
    expect(anonymous.headers.get('location')).to.include('/auth?client_id=account-console');
    await makeUser({ email: 'csrf@example.com' });
    const browser = new Browser();
    await consoleSignIn(browser, 'csrf@example.com', PASSWORD);
    const res = await browser.request(url('/account/2fa/setup'), { method: 'POST', body: new URLSearchParams({}) });
    expect(res.status).to.equal(403);
    const forged = await browser.go(url('/account/callback?code=abc&state=def'));
    expect(forged.status).to.equal(400);
  });
});
