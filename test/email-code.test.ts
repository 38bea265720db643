import { expect } from 'chai';
import { revokeTrustedDevice } from '../src/accounts/trusted-devices.js';
import { Browser, csrfToken, formAction, type Page } from './support/browser.js';
import { resetData, testEnv } from './support/env.js';
import { makeClient, makeUser, PASSWORD, REDIRECT_URI } from './support/fixtures.js';
import {
  answerTrust,
  completeSignIn,
  exchangeCode,
  isCodePage,
  isTrustPage,
  openSignIn,
  relyingParty,
  signInAndGetTokens,
  submitCode,
  submitPassword,
  type RelyingParty,
} from './support/rp.js';
import { mailbox } from './support/smtp.js';

const CHROME_LINUX = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36';

async function toCodePage(rp: RelyingParty, email: string, browser = new Browser({ 'user-agent': CHROME_LINUX }), params: Record<string, string> = {}) {
  const request = await rp.authorize(params);
  const page = await submitPassword(browser, await openSignIn(browser, request.url), email, PASSWORD);
  return { browser, page, request };
}

async function resend(browser: Browser, page: Page): Promise<Page> {
  return browser.submit(page, formAction(page.html), { _csrf: csrfToken(page.html), action: 'resend' }, testEnv().url);
}

describe('email code step, trusted devices and the alert email', () => {
  let rp: RelyingParty;
  beforeEach(async () => {
    await resetData();
    rp = await relyingParty(await makeClient());
  });

  it('sends a six-digit code as a security alert with text and HTML parts, and signs in with it', async () => {
    const { user } = await makeUser({ email: 'alert@example.com' });
    const { browser, page, request } = await toCodePage(rp, 'alert@example.com');
    expect(page.status).to.equal(200);
    expect(isCodePage(page)).to.equal(true);
    expect(page.html).to.include('Step 2 of 3: enter the code we sent to a•••@example.com');
    expect(page.html).to.include('<label for="code">Code</label>');
    expect(page.html).to.include('autocomplete="one-time-code"').and.include('inputmode="numeric"');

    const mail = await mailbox.latest('alert@example.com');
    expect(mail.subject).to.equal('Your sign-in code');
    expect(mail.from).to.include('no-reply@idp.test');
    const code = await mailbox.code('alert@example.com');
    expect(code).to.match(/^\d{6}$/);
    expect(mail.html).to.include(code);
    for (const part of [mail.text, mail.html]) {
      expect(part).to.include('127.0.0.1');
      expect(part).to.include('Chrome 156 on Linux');
      expect(part).to.match(/UTC/);
      expect(part).to.include('Change the password of your email mailbox first.');
      expect(part).to.include('Renew the passwords (SIP credentials)');
      expect(part).to.include('automatic top-up, contracts and new users');
    }
    const stored = await testEnv().db('email_codes').where({ user_id: user.id }).first();
    expect(stored.code_hash).not.to.include(code);

    const trust = await submitCode(browser, page, code);
    expect(isTrustPage(trust)).to.equal(true);
    expect(trust.html).to.include('Do you trust this browser and device?');
    const done = await answerTrust(browser, trust, 'no');
    const tokens = await exchangeCode(rp, done.url, request);
    expect(tokens.claims()).to.include({ sub: user.id, acr: 'urn:telephony-idp:acr:2fa' });
    expect(tokens.claims()!.amr).to.deep.equal(['pwd', 'mca', 'mfa']);

    const types = (await testEnv().db('audit_events').where({ user_id: user.id }).orderBy('id')).map((e) => e.type);
    expect(types).to.deep.equal(['code.sent', 'code.verified', 'login.succeeded']);
  });

  it('writes the email and the page in German for ui_locales=de', async () => {
    await makeUser({ email: 'de@example.com' });
    const { page } = await toCodePage(rp, 'de@example.com', undefined, { ui_locales: 'de' });
    expect(page.html).to.include('<html lang="de">').and.include('Schritt 2 von 3');
    const mail = await mailbox.latest('de@example.com');
    expect(mail.subject).to.equal('Ihr Anmeldecode');
    expect(mail.text).to.include('Ändern Sie zuerst das Passwort Ihres E-Mail-Postfachs.');
  });

  it('a trusted browser skips the code next time; the cookie holds only a random token', async () => {
    const { user } = await makeUser({ email: 'trusty@example.com' });
    const browser = new Browser({ 'user-agent': CHROME_LINUX });
    await signInAndGetTokens(rp, 'trusty@example.com', PASSWORD, {}, browser, { trust: 'yes' });
    const cookies = await browser.jar.getCookies(testEnv().url);
    const trust = cookies.find((c) => c.key === 'idp_trust')!;
    expect(trust.httpOnly).to.equal(true);
    expect(trust.sameSite).to.equal('lax');
    expect(trust.value).not.to.include(user.id);
    expect(cookies.some((c) => c.key === 'idp_trust.sig')).to.equal(true);
    const device = await testEnv().db('trusted_devices').where({ user_id: user.id }).first();
    expect(device).to.include({ ip: '127.0.0.1', user_agent: CHROME_LINUX });
    expect(device.token_hash).not.to.equal(trust.value);

    mailbox.clear();
    const { tokens } = await signInAndGetTokens(rp, 'trusty@example.com', PASSWORD, { prompt: 'login' }, browser);
    expect(mailbox.for('trusty@example.com')).to.have.length(0);
    expect(tokens.claims()!.amr).to.deep.equal(['pwd']);
    expect(tokens.claims()!.acr).to.equal('urn:telephony-idp:acr:1fa');
    const audit = await testEnv().db('audit_events').where({ user_id: user.id, type: 'device.trusted' });
    expect(audit).to.have.length(1);
  });

  it('an app that asks for two factors (acr_values) gets the email code even on a trusted browser', async () => {
    await makeUser({ email: 'stepup@example.com' });
    const browser = new Browser();
    await signInAndGetTokens(rp, 'stepup@example.com', PASSWORD, {}, browser, { trust: 'yes' });
    const { page } = await toCodePage(rp, 'stepup@example.com', browser, { prompt: 'login', acr_values: 'urn:telephony-idp:acr:2fa' });
    expect(isCodePage(page)).to.equal(true);
  });

  it('revoked or expired trust no longer skips the code', async () => {
    const { user } = await makeUser({ email: 'revoked@example.com' });
    const browser = new Browser();
    await signInAndGetTokens(rp, 'revoked@example.com', PASSWORD, {}, browser, { trust: 'yes' });
    const device = await testEnv().db('trusted_devices').where({ user_id: user.id }).first();

    expect(await revokeTrustedDevice(testEnv().db, user.id, device.id)).to.equal(true);
    expect(isCodePage((await toCodePage(rp, 'revoked@example.com', browser, { prompt: 'login' })).page)).to.equal(true);

    await testEnv().db('trusted_devices').where({ id: device.id }).update({ revoked_at: null, expires_at: new Date(Date.now() - 1000) });
    expect(isCodePage((await toCodePage(rp, 'revoked@example.com', browser, { prompt: 'login' })).page)).to.equal(true);
  });

  it("user A's trusted-device cookie does nothing for user B in the same browser", async () => {
    await makeUser({ email: 'usera@example.com' });
    await makeUser({ email: 'userb@example.com' });
    const browser = new Browser();
    await signInAndGetTokens(rp, 'usera@example.com', PASSWORD, {}, browser, { trust: 'yes' });
    const { page } = await toCodePage(rp, 'userb@example.com', browser, { prompt: 'login' });
    expect(isCodePage(page)).to.equal(true);
  });

  it('a wrong code is refused; five wrong codes lock that code, even for the right one; a new code works', async () => {
    await makeUser({ email: 'guess@example.com' });
    const { browser, page, request } = await toCodePage(rp, 'guess@example.com');
    const code = await mailbox.code('guess@example.com');
    const wrong = code === '000000' ? '111111' : '000000';
    let current = page;
    const statuses = [];
    for (let i = 0; i < 5; i += 1) {
      current = await submitCode(browser, current, wrong);
      statuses.push(current.status);
    }
    expect(statuses.slice(0, 4)).to.deep.equal([401, 401, 401, 401]);
    expect(current.html).to.include('Too many wrong codes. Please request a new code.');
    const locked = await submitCode(browser, current, code);
    expect(locked.status).to.equal(400);
    expect(locked.html).to.include('Too many wrong codes');

    await testEnv().db('rate_limits').where('key', 'like', 'code-resend%').delete();
    const again = await resend(browser, locked);
    expect(again.html).to.include('We sent a new code to g•••@example.com.');
    const fresh = await mailbox.code('guess@example.com');
    const trust = await submitCode(browser, again, fresh);
    const done = await answerTrust(browser, trust, 'no');
    expect((await exchangeCode(rp, done.url, request)).claims()!.amr).to.include('mca');
  });

  it('20 parallel wrong guesses count as 20: the code is locked after exactly 5', async () => {
    const { user } = await makeUser({ email: 'parallel@example.com' });
    const { browser, page } = await toCodePage(rp, 'parallel@example.com');
    const code = await mailbox.code('parallel@example.com');
    const wrong = code === '999999' ? '888888' : '999999';
    const answers = await Promise.all(Array.from({ length: 20 }, () => submitCode(browser, page, wrong)));
    expect(answers.every((a) => a.status === 401 || a.status === 400)).to.equal(true);
    const row = await testEnv().db('email_codes').where({ user_id: user.id }).first();
    expect(row.attempts).to.equal(5);
    const failures = await testEnv().db('audit_events').where({ user_id: user.id, type: 'code.failed' });
    expect(failures).to.have.length(20);
    // The right code no longer passes (the code is locked, and the user's hourly guess budget is spent).
    const right = await submitCode(browser, page, code);
    expect(isTrustPage(right)).to.equal(false);
    expect(right.status).to.be.oneOf([400, 429]);
  });

  it('an expired code is refused', async () => {
    await makeUser({ email: 'late@example.com' });
    const { browser, page } = await toCodePage(rp, 'late@example.com');
    const code = await mailbox.code('late@example.com');
    await testEnv().db('email_codes').update({ expires_at: new Date(Date.now() - 1000) });
    const answer = await submitCode(browser, page, code);
    expect(answer.status).to.equal(400);
    expect(answer.html).to.include('This code has expired.');
  });

  it('a code works once and only for the sign-in it was sent for', async () => {
    await makeUser({ email: 'replay@example.com' });
    const first = await toCodePage(rp, 'replay@example.com');
    const firstCode = await mailbox.code('replay@example.com');
    const second = await toCodePage(rp, 'replay@example.com');
    const secondCode = await mailbox.code('replay@example.com');
    expect(secondCode).to.not.equal(undefined);

    // The first sign-in's code is no use in the second sign-in.
    if (firstCode !== secondCode) {
      expect((await submitCode(second.browser, second.page, firstCode)).status).to.equal(401);
    }
    const trust = await submitCode(first.browser, first.page, firstCode);
    expect(isTrustPage(trust)).to.equal(true);
    // Replaying the used code (the sign-in moved on) does not pass the step again.
    const replay = await submitCode(first.browser, first.page, firstCode);
    expect(isCodePage(replay)).to.equal(false);
    expect(replay.url).not.to.include('code=');
  });

  it('"Send a new code" is limited to one a minute and five an hour; the old code stops working', async () => {
    await makeUser({ email: 'resend@example.com' });
    const { browser, page } = await toCodePage(rp, 'resend@example.com');
    const oldCode = await mailbox.code('resend@example.com');
    const first = await resend(browser, page);
    expect(first.status).to.equal(200);
    expect(mailbox.for('resend@example.com')).to.have.length(2);
    const tooSoon = await resend(browser, first);
    expect(tooSoon.status).to.equal(429);
    expect(tooSoon.html).to.match(/Please wait \d+ seconds before requesting another code\./);
    expect(Number(tooSoon.headers.get('retry-after'))).to.be.within(1, 60);
    expect(mailbox.for('resend@example.com')).to.have.length(2);

    const newCode = await mailbox.code('resend@example.com');
    if (newCode !== oldCode) expect((await submitCode(browser, first, oldCode)).status).to.equal(401);

    for (let i = 0; i < 4; i += 1) {
      await testEnv().db('rate_limits').where('key', 'like', 'code-resend%').delete();
      await resend(browser, first);
    }
    const hourly = await resend(browser, first);
    expect(mailbox.for('resend@example.com')).to.have.length(5);
    expect(hourly.status).to.equal(429);
  });

  it('SMTP down: a clear page with a retry button; the retry works once mail is back', async () => {
    const { user } = await makeUser({ email: 'outage@example.com' });
    await mailbox.stop();
    let failed: Awaited<ReturnType<typeof toCodePage>>;
    try {
      failed = await toCodePage(rp, 'outage@example.com');
      expect(failed.page.status).to.equal(503);
      expect(failed.page.html).to.include('We could not send the email with your code.');
      expect(failed.page.html).to.include('Try sending the code again');
      expect(await testEnv().db('email_codes').where({ user_id: user.id })).to.have.length(0);
      expect(await testEnv().db('audit_events').where({ user_id: user.id, type: 'code.delivery_failed' })).to.have.length(1);
      const stillDown = await resend(failed.browser, failed.page);
      expect(stillDown.status).to.equal(503);
    } finally {
      await mailbox.start();
    }
    const retried = await resend(failed.browser, failed.page);
    expect(retried.status).to.equal(200);
    const code = await mailbox.code('outage@example.com');
    const done = await completeAfterCode(failed.browser, retried, code);
    expect(done.url.startsWith(REDIRECT_URI)).to.equal(true);
  });

  it('refuses malformed codes and forms without the CSRF token', async () => {
    await makeUser({ email: 'format@example.com' });
    const { browser, page } = await toCodePage(rp, 'format@example.com');
    for (const code of ['', '12345', '1234567', 'abcdef', '12 34 5x']) {
      const answer = await submitCode(browser, page, code);
      expect(answer.status, code).to.equal(400);
      expect(answer.html).to.include('Please enter the 6-digit code from the email.');
    }
    const noCsrf = await browser.request(new URL(formAction(page.html), page.url).href, { method: 'POST', body: new URLSearchParams({ code: '123456' }) });
    expect(noCsrf.status).to.equal(403);
    const code = await mailbox.code('format@example.com');
    const spaced = await submitCode(browser, page, `${code.slice(0, 3)} ${code.slice(3)}`);
    expect(isTrustPage(spaced)).to.equal(true);
  });

  it('the trust question accepts only yes or no', async () => {
    await makeUser({ email: 'yesno@example.com' });
    const browser = new Browser();
    const page = await openSignIn(browser, (await rp.authorize()).url);
    const codePage = await submitPassword(browser, page, 'yesno@example.com', PASSWORD);
    const trust = await submitCode(browser, codePage, await mailbox.code('yesno@example.com'));
    const bad = await browser.submit(trust, formAction(trust.html), { _csrf: csrfToken(trust.html), trust: 'maybe' }, testEnv().url);
    expect(bad.status).to.equal(400);
    expect(await testEnv().db('trusted_devices')).to.have.length(0);
    const done = await answerTrust(browser, bad, 'no');
    expect(done.url.startsWith(REDIRECT_URI)).to.equal(true);
    expect(await testEnv().db('trusted_devices')).to.have.length(0);
  });
});

async function completeAfterCode(browser: Browser, page: Page, code: string): Promise<Page> {
  const trust = await submitCode(browser, page, code);
  return answerTrust(browser, trust, 'no');
}

