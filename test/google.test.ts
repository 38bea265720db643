import { expect } from 'chai';
import type { RunningServer } from '../src/app.js';
import { startServer } from '../src/app.js';
import { setGoogleEmail } from '../src/accounts/google.js';
import { activateTotp, startTotpSetup } from '../src/accounts/totp.js';
import { runCommand, type CommandContext } from '../src/cli/commands.js';
import { createLogger } from '../src/log.js';
import { Browser, csrfToken, formAction, type Page } from './support/browser.js';
import { resetData, testEnv } from './support/env.js';
import { FakeGoogle, type Tamper } from './support/fake-google.js';
import { makeClient, makeUser, PASSWORD, REDIRECT_URI } from './support/fixtures.js';
import { exchangeCode, isCodePage, isTotpPage, relyingParty, type RelyingParty } from './support/rp.js';
import { mailbox } from './support/smtp.js';
import { secondsLeftInStep, totp } from './support/totp.js';

const log = createLogger('silent');
const CALLBACK_PATH = '/interaction/callback/google';
const NO_ACCOUNT = 'No account is linked to this Google account. Please ask your admin';

/** A provider server sharing the test database, with Google configured against `issuer`. */
function startGoogleIdp(fake: FakeGoogle, issuer = fake.issuer): Promise<RunningServer> {
  return startServer(
    { ...testEnv().config, google: { clientId: fake.clientId, clientSecret: fake.clientSecret, issuer }, port: 0 },
    { db: testEnv().db, log, issuerForPort: (port) => `http://127.0.0.1:${port}` },
  );
}

/**
 * Requests `url` and follows redirects across the provider and the fake Google; stops at the app's
 * redirect URI, or at the first redirect to a location `stop` picks (returned as `url`, status 3xx).
 */
async function follow(browser: Browser, url: string, init: RequestInit = {}, stop?: (location: string) => boolean): Promise<Page> {
  let response = await browser.request(url, init);
  let current = url;
  for (let hops = 0; hops < 25 && response.status >= 300 && response.status < 400; hops += 1) {
    const location = new URL(response.headers.get('location')!, current).href;
    await response.arrayBuffer();
    if (location.startsWith(REDIRECT_URI) || stop?.(location)) return { status: response.status, url: location, html: '', headers: response.headers };
    current = location;
    response = await browser.request(current);
  }
  return { status: response.status, url: current, html: await response.text(), headers: response.headers };
}

/** Submits the page's (first) form with its CSRF token and follows the redirects. */
async function submitForm(browser: Browser, page: Page, fields: Record<string, string>): Promise<Page> {
  return follow(browser, new URL(formAction(page.html), page.url).href, {
    method: 'POST',
    body: new URLSearchParams({ _csrf: csrfToken(page.html), ...fields }),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
}

const atGoogleCallback = (location: string) => new URL(location).pathname === CALLBACK_PATH;

function googleAction(html: string): string | undefined {
  return /<form method="post" action="([^"]*\/google)">/.exec(html)?.[1];
}

function backLink(html: string): string | undefined {
  return /<a href="([^"]+)">Back to sign in with password<\/a>/.exec(html)?.[1];
}

async function auditTypes(userId: string): Promise<string[]> {
  return (await testEnv().db('audit_events').where({ user_id: userId }).orderBy('id')).map((e) => e.type as string);
}

async function awayFromStepBoundary(): Promise<void> {
  if (secondsLeftInStep() < 3) await new Promise((r) => setTimeout(r, secondsLeftInStep() * 1000 + 200));
}

describe('Sign in with Google (upstream OpenID Connect)', () => {
  let fake: FakeGoogle;
  let idp: RunningServer;
  let rp: RelyingParty;

  before(async function () {
    this.timeout(30_000);
    fake = new FakeGoogle();
    await fake.listen();
    idp = await startGoogleIdp(fake);
    await fake.configure(`${idp.url}${CALLBACK_PATH}`);
  });

  after(async () => {
    await idp?.close();
    await fake?.stop();
  });

  beforeEach(async () => {
    await resetData();
    fake.reset();
    rp = await relyingParty(await makeClient(), idp.url);
  });

  /** A user with a password whose admin entered `googleEmail` as their Google address. */
  async function googleUser(email: string, googleEmail: string, options: { password?: string | null } = {}) {
    const made = await makeUser({ email, ...options });
    await setGoogleEmail(testEnv().db, email, googleEmail, { kind: 'operator' }, {});
    return made;
  }

  async function openSignIn(browser: Browser, params: Record<string, string> = {}) {
    const request = await rp.authorize(params);
    const page = await follow(browser, request.url);
    expect(page.status, page.html.slice(0, 300)).to.equal(200);
    return { request, page };
  }

  /** Presses "Sign in with Google" on the password page. */
  async function pressGoogle(browser: Browser, page: Page, stop?: (location: string) => boolean): Promise<Page> {
    const action = googleAction(page.html);
    if (!action) throw new Error('no Google button on the page');
    return follow(
      browser,
      new URL(action, page.url).href,
      { method: 'POST', body: new URLSearchParams({ _csrf: csrfToken(page.html) }), headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      stop,
    );
  }

  /** From the app through Google; returns where the browser ends up (the app, or a page of ours). */
  async function googleSignIn(params: Record<string, string> = {}, browser = new Browser()) {
    const { request, page } = await openSignIn(browser, params);
    const done = await pressGoogle(browser, page);
    return { request, page, done, browser };
  }

  async function tokensAfterGoogle(params: Record<string, string> = {}) {
    const { request, done } = await googleSignIn(params);
    expect(done.url, `${done.status} ${done.html.slice(0, 400)}`).to.match(new RegExp(`^${REDIRECT_URI}\\?code=`));
    return exchangeCode(rp, done.url, request);
  }

  it('shows the "Sign in with Google" button only when Google is configured', async () => {
    const browser = new Browser();
    const { page } = await openSignIn(browser);
    expect(page.html).to.include('<button type="submit" class="secondary">Sign in with Google</button>');
    expect(googleAction(page.html)).to.match(/^\/interaction\/[\w-]+\/google$/);
    expect(page.html.match(/name="_csrf"/g)).to.have.length(2);

    // The shared test server has no Google configuration: no button, and the route does not exist.
    const plainRp = await relyingParty(await makeClient());
    const plain = await follow(browser, (await plainRp.authorize()).url);
    expect(plain.status).to.equal(200);
    expect(plain.html).to.include('Email address or customer number');
    expect(plain.html).not.to.include('Sign in with Google');
    expect(googleAction(plain.html)).to.equal(undefined);
    const uid = /\/interaction\/([\w-]+)\/password/.exec(plain.html)![1]!;
    const post = await browser.request(`${testEnv().url}/interaction/${uid}/google`, {
      method: 'POST',
      body: new URLSearchParams({ _csrf: csrfToken(plain.html) }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(post.status).to.equal(404);
    expect((await browser.request(`${testEnv().url}${CALLBACK_PATH}?state=x&code=y`)).status).to.equal(404);
  });

  it('the upstream request uses PKCE (S256), state bound to the interaction and a nonce, at the one registered redirect URI', async () => {
    await googleUser('pkce@example.com', 'pkce@gmail.com');
    fake.account = { sub: 'pkce-sub', email: 'pkce@gmail.com', email_verified: true };
    const browser = new Browser();
    const { page } = await openSignIn(browser);
    const uid = /\/interaction\/([\w-]+)\/google/.exec(page.html)![1]!;
    const redirect = await pressGoogle(browser, page, (location) => location.startsWith(fake.issuer));
    expect(redirect.status).to.equal(303);
    const sent = new URL(redirect.url).searchParams;
    expect(sent.get('client_id')).to.equal(fake.clientId);
    expect(sent.get('response_type')).to.equal('code');
    expect(sent.get('scope')).to.equal('openid email');
    expect(sent.get('redirect_uri')).to.equal(`${idp.url}${CALLBACK_PATH}`);
    expect(sent.get('code_challenge_method')).to.equal('S256');
    expect(sent.get('code_challenge')).to.match(/^[\w-]{43}$/);
    expect(sent.get('nonce')).to.match(/^[\w-]{43}$/);
    expect(sent.get('state')).to.match(new RegExp(`^${uid}\\.[\\w-]{43}$`));
    // Only a keyed hash of the state is kept; the verifier and nonce are not stored at all.
    const flow = await testEnv().db('login_flows').where({ id: uid }).first();
    const stored = JSON.stringify(flow.state);
    expect(flow.state.google.stateHash).to.match(/^[\w-]{43}$/);
    for (const value of [sent.get('state')!, sent.get('nonce')!, sent.get('code_challenge')!]) expect(stored).not.to.include(value);
  });

  it('the first sign-in links the Google subject by the verified address; no email code; amr fed, acr 1fa', async () => {
    const { user } = await googleUser('jane@example.com', 'Jane.Doe@gmail.com');
    fake.account = { sub: '104000000000000000042', email: 'jane.doe@gmail.com', email_verified: true, hd: 'example.com' };
    const tokens = await tokensAfterGoogle();
    const claims = tokens.claims()!;
    expect(claims.sub).to.equal(user.id);
    expect(claims.amr).to.deep.equal(['fed']);
    expect(claims.acr).to.equal('urn:telephony-idp:acr:1fa');
    expect(mailbox.for('jane@example.com')).to.have.length(0);

    const stored = await testEnv().db('users').where({ id: user.id }).first();
    expect(stored).to.include({ google_subject: '104000000000000000042', google_email: 'jane.doe@gmail.com' });
    expect(await auditTypes(user.id)).to.deep.equal(['google.email_set', 'google.linked', 'login.succeeded']);
    const linked = await testEnv().db('audit_events').where({ type: 'google.linked' }).first();
    expect(linked.details).to.include({ google_subject: '104000000000000000042', google_email: 'jane.doe@gmail.com', hd: 'example.com' });
    expect(linked.ip).to.equal('127.0.0.1');
  });

  it('later sign-ins match by subject only: a changed Google address still works, the old address on another Google account does not', async () => {
    const { user } = await googleUser('move@example.com', 'move@gmail.com');
    fake.account = { sub: 'subject-original', email: 'move@gmail.com', email_verified: true };
    await tokensAfterGoogle();

    fake.account = { sub: 'subject-original', email: 'renamed@gmail.com', email_verified: true };
    expect((await tokensAfterGoogle()).claims()!.sub).to.equal(user.id);

    // Someone else now holds the old address at Google: a different subject, refused, nothing changes.
    fake.account = { sub: 'subject-newcomer', email: 'move@gmail.com', email_verified: true };
    const { done } = await googleSignIn();
    expect(done.status).to.equal(403);
    expect(done.html).to.include(NO_ACCOUNT);
    const stored = await testEnv().db('users').where({ id: user.id }).first();
    expect(stored.google_subject).to.equal('subject-original');
    const refused = await testEnv().db('audit_events').where({ type: 'login.failed' }).first();
    expect(refused.user_id).to.equal(user.id);
    expect(refused.details).to.include({ method: 'fed', reason: 'linked_to_other_subject', google_subject: 'subject-newcomer' });
    expect(await testEnv().db('audit_events').where({ type: 'google.linked' })).to.have.length(1);
  });

  it('refuses an address Google has not verified, also for a linked subject, and links nothing', async () => {
    const { user } = await googleUser('unverified@example.com', 'unverified@gmail.com');
    for (const emailVerified of [false, 'true', undefined]) {
      fake.account = { sub: 'unverified-sub', email: 'unverified@gmail.com', email_verified: emailVerified };
      const { done } = await googleSignIn();
      expect(done.status, String(emailVerified)).to.equal(403);
      expect(done.html).to.include('Google has not verified the email address of this Google account');
    }
    expect((await testEnv().db('users').where({ id: user.id }).first()).google_subject).to.equal(null);

    fake.account = { sub: 'unverified-sub', email: 'unverified@gmail.com', email_verified: true };
    await tokensAfterGoogle();
    fake.account = { sub: 'unverified-sub', email: 'unverified@gmail.com', email_verified: false };
    expect((await googleSignIn()).done.status).to.equal(403);
  });

  it('an unknown Google identity gets a clear page, creates nothing, and the password sign-in still works', async () => {
    const { user } = await makeUser({ email: 'pw@example.com' });
    const before = await testEnv().db('users').count({ n: '*' }).first();
    fake.account = { sub: 'stranger', email: 'stranger@gmail.com', email_verified: true };
    const { done, browser } = await googleSignIn();
    expect(done.status).to.equal(403);
    expect(done.html).to.include('<h1>Signing in with Google did not work</h1>').and.include(NO_ACCOUNT);
    expect(await testEnv().db('users').count({ n: '*' }).first()).to.deep.equal(before);
    expect(await testEnv().db('users').whereNotNull('google_subject')).to.have.length(0);

    // Back to the password page of the same sign-in, and on through the email code.
    const back = backLink(done.html)!;
    expect(back).to.match(/^\/interaction\/[\w-]+$/);
    const signin = await follow(browser, new URL(back, idp.url).href);
    expect(signin.html).to.include('Email address or customer number');
    const code = await submitForm(browser, signin, { identifier: 'pw@example.com', password: PASSWORD });
    expect(isCodePage(code)).to.equal(true);
    const finished = await submitForm(browser, code, { code: await mailbox.code('pw@example.com') });
    expect(finished.html).to.include('Do you trust this browser and device?');
    expect(await auditTypes(user.id)).to.include('code.verified');
  });

  it('invited and disabled users get the same refusal and are not linked', async () => {
    const invited = await googleUser('invited@example.com', 'invited@gmail.com', { password: null });
    fake.account = { sub: 'invited-sub', email: 'invited@gmail.com', email_verified: true };
    const first = await googleSignIn();
    expect(first.done.status).to.equal(403);
    expect(first.done.html).to.include(NO_ACCOUNT);
    expect((await testEnv().db('users').where({ id: invited.user.id }).first()).google_subject).to.equal(null);

    const disabled = await googleUser('disabled@example.com', 'disabled@gmail.com');
    fake.account = { sub: 'disabled-sub', email: 'disabled@gmail.com', email_verified: true };
    await tokensAfterGoogle();
    await testEnv().db('users').where({ id: disabled.user.id }).update({ status: 'disabled' });
    const second = await googleSignIn();
    expect(second.done.status).to.equal(403);
    expect(second.done.html).to.include(NO_ACCOUNT);
    const reasons = (await testEnv().db('audit_events').where({ type: 'login.failed' }).orderBy('id')).map((e) => e.details.reason);
    expect(reasons).to.deep.equal(['status_invited', 'status_disabled']);
  });

  it('asks for the authenticator code after Google when TOTP is set up: amr fed, otp, mfa', async () => {
    const { user } = await googleUser('totp@example.com', 'totp@gmail.com');
    const { services } = idp.app;
    const secret = await startTotpSetup(services.db, services.secrets, user.id);
    await activateTotp(services.db, services.secrets, user.id, totp(secret, -1), 'Pixel');
    fake.account = { sub: 'totp-sub', email: 'totp@gmail.com', email_verified: true };

    const { request, done, browser } = await googleSignIn();
    expect(done.status).to.equal(200);
    expect(isTotpPage(done), done.html.slice(0, 300)).to.equal(true);
    await awayFromStepBoundary();
    const finished = await submitForm(browser, done, { code: totp(secret) });
    const tokens = await exchangeCode(rp, finished.url, request);
    expect(tokens.claims()!.amr).to.deep.equal(['fed', 'otp', 'mfa']);
    expect(tokens.claims()!.acr).to.equal('urn:telephony-idp:acr:2fa');
    expect(mailbox.for('totp@example.com')).to.have.length(0);
  });

  it('a user who cancels at Google gets a clear page and goes back to the password sign-in', async () => {
    fake.deny = 'access_denied';
    const { done, browser } = await googleSignIn({ ui_locales: 'de' });
    expect(done.status).to.equal(401);
    expect(done.html).to.include('Sie haben die Anmeldung mit Google abgebrochen.');
    expect(done.html).to.include('Zurück zur Anmeldung mit Passwort');
    const back = /<a href="(\/interaction\/[\w-]+)">/.exec(done.html)![1]!;
    const signin = await follow(browser, new URL(back, idp.url).href);
    expect(signin.status).to.equal(200);
    expect(signin.html).to.include('E-Mail-Adresse oder Kundennummer');

    fake.deny = 'server_error';
    const failed = await googleSignIn();
    expect(failed.done.status).to.equal(502);
    expect(failed.done.html).to.include('Google did not confirm the sign-in.');
    const reasons = (await testEnv().db('audit_events').where({ type: 'login.failed' }).orderBy('id')).map((e) => e.details.reason);
    expect(reasons).to.deep.equal(['upstream_cancelled', 'upstream_rejected']);
  });

  it('after Google there is no email code even when the app asks for two factors; acr then says one factor', async () => {
    const { user } = await googleUser('oneacr@example.com', 'oneacr@gmail.com');
    fake.account = { sub: 'oneacr-sub', email: 'oneacr@gmail.com', email_verified: true };
    const claims = (await tokensAfterGoogle({ acr_values: 'urn:telephony-idp:acr:2fa' })).claims()!;
    expect(claims).to.include({ sub: user.id, acr: 'urn:telephony-idp:acr:1fa' });
    expect(claims.amr).to.deep.equal(['fed']);
    expect(mailbox.for('oneacr@example.com')).to.have.length(0);
  });

  it('refuses a forged state, a replayed callback, a callback in another browser and a missing code', async () => {
    const { user } = await googleUser('replay@example.com', 'replay@gmail.com');
    const secret = await startTotpSetup(testEnv().db, idp.app.services.secrets, user.id);
    await activateTotp(testEnv().db, idp.app.services.secrets, user.id, totp(secret, -1), 'Pixel');
    fake.account = { sub: 'replay-sub', email: 'replay@gmail.com', email_verified: true };

    const browser = new Browser();
    const { page } = await openSignIn(browser);
    const atCallback = await pressGoogle(browser, page, atGoogleCallback);
    const callback = new URL(atCallback.url);
    expect(callback.searchParams.get('code')).to.be.a('string');
    expect(callback.searchParams.get('iss')).to.equal(fake.issuer);

    // Malformed state at the registered redirect URI: no interaction to go back to.
    const malformed = await follow(browser, `${idp.url}${CALLBACK_PATH}?code=abc&state=not-ours`);
    expect(malformed.status).to.equal(400);
    expect(malformed.html).to.include('does not belong to this sign-in or was already used');
    expect(backLink(malformed.html)).to.equal(undefined);

    // A forged random part: refused, and the real callback still works afterwards.
    const forged = new URL(callback);
    forged.searchParams.set('state', `${callback.searchParams.get('state')!.split('.')[0]}.${'A'.repeat(43)}`);
    const refused = await follow(browser, forged.href);
    expect(refused.status).to.equal(400);
    expect(refused.html).to.include('does not belong to this sign-in or was already used');
    expect(backLink(refused.html)).to.match(/^\/interaction\/[\w-]+$/);

    // The same callback in another browser (login CSRF): that browser has no such sign-in.
    const other = await follow(new Browser(), callback.href);
    expect(other.status).to.equal(400);
    expect(other.html).to.include('This sign-in has expired or was already completed.');

    const totpPage = await follow(browser, callback.href);
    expect(isTotpPage(totpPage)).to.equal(true);
    // Replayed while the sign-in is still open: the attempt was used up.
    const replayed = await follow(browser, callback.href);
    expect(replayed.status).to.equal(400);
    expect(replayed.html).to.include('was already used');
    // The sign-in itself is unharmed: the TOTP step is still due.
    expect(isTotpPage(await follow(browser, new URL(backLink(replayed.html)!, idp.url).href))).to.equal(true);

    // A callback without a code is refused and uses up the attempt.
    const second = new Browser();
    const { page: page2 } = await openSignIn(second);
    const withCode = new URL((await pressGoogle(second, page2, atGoogleCallback)).url);
    const noCode = new URL(withCode);
    noCode.searchParams.delete('code');
    const missing = await follow(second, noCode.href);
    expect(missing.status).to.equal(400);
    expect((await follow(second, withCode.href)).status).to.equal(400);

    const reasons = (await testEnv().db('audit_events').where({ type: 'login.failed' }).orderBy('id')).map((e) => e.details.reason);
    expect(reasons).to.deep.equal(['state_malformed', 'state_mismatch', 'no_attempt_pending', 'code_missing', 'no_attempt_pending']);
    expect(await testEnv().db('audit_events').where({ type: 'google.linked' })).to.have.length(1);
  });

  it('refuses ID tokens with a wrong nonce, a foreign signature, another audience or issuer, or past expiry', async () => {
    const { user } = await googleUser('tamper@example.com', 'tamper@gmail.com');
    fake.account = { sub: 'tamper-sub', email: 'tamper@gmail.com', email_verified: true };
    const tampers: Tamper[] = ['nonce', 'signature', 'audience', 'issuer', 'expired'];
    for (const tamper of tampers) {
      fake.tamper = tamper;
      const { done } = await googleSignIn();
      expect(done.status, tamper).to.equal(502);
      expect(done.html, tamper).to.include("Google&#39;s answer could not be verified, so you were not signed in.");
      expect(backLink(done.html), tamper).to.match(/^\/interaction\/[\w-]+$/);
    }
    expect((await testEnv().db('users').where({ id: user.id }).first()).google_subject).to.equal(null);
    const failures = await testEnv().db('audit_events').where({ type: 'login.failed' }).orderBy('id');
    expect(failures.map((e) => e.details.reason)).to.deep.equal(tampers.map(() => 'upstream_invalid'));
    expect(failures[0].details.detail).to.match(/nonce/);

    fake.tamper = undefined;
    expect((await tokensAfterGoogle()).claims()!.sub).to.equal(user.id);
  });

  it('rate-limits refused callbacks per IP address', async () => {
    for (let i = 0; i < 20; i += 1) {
      const response = await fetch(`${idp.url}${CALLBACK_PATH}?code=x&state=bad${i}`);
      expect(response.status).to.equal(400);
    }
    const browser = new Browser();
    const { page } = await openSignIn(browser);
    const callback = await pressGoogle(browser, page, atGoogleCallback);
    const throttled = await follow(browser, callback.url);
    expect(throttled.status).to.equal(429);
    expect(Number(throttled.headers.get('retry-after'))).to.be.greaterThan(0);
    expect(throttled.html).to.include('Too many attempts');
  });

  it('when Google is down at the token endpoint, a clear 503 page leads back to the password sign-in', async () => {
    await googleUser('down@example.com', 'down@gmail.com');
    fake.account = { sub: 'down-sub', email: 'down@gmail.com', email_verified: true };
    const browser = new Browser();
    const { page } = await openSignIn(browser);
    const callback = await pressGoogle(browser, page, atGoogleCallback);
    await fake.stop();
    try {
      const down = await follow(browser, callback.url);
      expect(down.status).to.equal(503);
      expect(down.headers.get('retry-after')).to.equal('30');
      expect(down.html).to.include('Google cannot be reached right now.');
      const signin = await follow(browser, new URL(backLink(down.html)!, idp.url).href);
      expect(signin.html).to.include('Email address or customer number').and.include('Sign in with Google');
    } finally {
      await fake.listen();
    }
    expect((await googleSignIn()).done.url).to.match(new RegExp(`^${REDIRECT_URI}`));
  });

  it('when the issuer cannot be discovered, a clear 503 page; the next attempt discovers again', async () => {
    const late = new FakeGoogle();
    await late.listen();
    await late.stop(); // nothing listens on its port for now
    const server = await startGoogleIdp(late);
    try {
      await late.configure(`${server.url}${CALLBACK_PATH}`);
      const lateRp = await relyingParty(await makeClient(), server.url);
      const browser = new Browser();
      const open = async () => follow(browser, (await lateRp.authorize()).url);
      const press = async (signin: Page) =>
        follow(browser, new URL(googleAction(signin.html)!, server.url).href, {
          method: 'POST',
          body: new URLSearchParams({ _csrf: csrfToken(signin.html) }),
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        });

      const first = await press(await open());
      expect(first.status).to.equal(503);
      expect(first.html).to.include('Google cannot be reached right now.');
      expect(backLink(first.html)).to.match(/^\/interaction\/[\w-]+$/);

      await late.listen(late.port);
      const { user } = await googleUser('late@example.com', 'late@gmail.com');
      late.account = { sub: 'late-sub', email: 'late@gmail.com', email_verified: true };
      const second = await press(await open());
      expect(second.url).to.match(new RegExp(`^${REDIRECT_URI}\\?code=`));
      expect((await testEnv().db('users').where({ id: user.id }).first()).google_subject).to.equal('late-sub');
    } finally {
      await server.close();
      await late.stop();
    }
  });

  describe('operator CLI', () => {
    function commandContext(): CommandContext {
      const { services } = idp.app;
      return { ...services };
    }
    const run = (argv: string[]) => runCommand(commandContext(), argv);

    it('user set-google-email and user unlink-google: JSON output, audit events, clear errors', async () => {
      const { user } = await makeUser({ email: 'cli@example.com' });
      await makeUser({ email: 'other@example.com' });
      const set = await run(['user', 'set-google-email', '--email', 'CLI@example.com', '--google-email', 'Cli.User@Gmail.com']);
      expect(set).to.deep.equal({ exitCode: 0, output: { user_id: user.id, email: 'cli@example.com', google_email: 'cli.user@gmail.com', google_linked: false } });

      fake.account = { sub: 'cli-sub', email: 'cli.user@gmail.com', email_verified: true };
      await tokensAfterGoogle();

      const taken = await run(['user', 'set-google-email', '--email', 'other@example.com', '--google-email', 'cli.user@gmail.com']);
      expect(taken).to.deep.equal({ exitCode: 1, error: 'Another user already has the Google address cli.user@gmail.com.' });
      expect((await run(['user', 'set-google-email', '--email', 'cli@example.com', '--google-email', 'nope'])).exitCode).to.equal(1);
      expect(await run(['user', 'set-google-email', '--email', 'nobody@example.com', '--google-email', 'x@gmail.com'])).to.deep.equal({
        exitCode: 1,
        error: 'No user with email nobody@example.com.',
      });
      expect((await run(['user', 'set-google-email', '--email', 'cli@example.com'])).exitCode).to.equal(2);
      expect((await run(['user', 'unlink-google'])).exitCode).to.equal(2);

      const unlinked = await run(['user', 'unlink-google', '--email', 'cli@example.com']);
      expect(unlinked).to.deep.equal({ exitCode: 0, output: { user_id: user.id, email: 'cli@example.com', google_email: null, google_linked: false } });
      expect(await testEnv().db('users').where({ id: user.id }).first()).to.include({ google_email: null, google_subject: null });
      expect(await run(['user', 'unlink-google', '--email', 'cli@example.com'])).to.deep.equal({ exitCode: 1, error: 'cli@example.com has no Google account.' });

      const { done } = await googleSignIn();
      expect(done.status).to.equal(403);
      expect(done.html).to.include(NO_ACCOUNT);

      expect(await auditTypes(user.id)).to.deep.equal(['google.email_set', 'google.linked', 'login.succeeded', 'google.unlinked']);
      const unlink = await testEnv().db('audit_events').where({ type: 'google.unlinked' }).first();
      expect(unlink.details).to.include({ by: 'operator', google_subject: 'cli-sub', google_email: 'cli.user@gmail.com' });
      expect(unlink.user_agent).to.equal('idp-cli');
    });

    it('setting the Google address again removes the link, so a new Google account can be linked', async () => {
      const { user } = await googleUser('relink@example.com', 'relink@gmail.com');
      fake.account = { sub: 'old-google-account', email: 'relink@gmail.com', email_verified: true };
      await tokensAfterGoogle();
      fake.account = { sub: 'new-google-account', email: 'relink@gmail.com', email_verified: true };
      expect((await googleSignIn()).done.status).to.equal(403);

      const result = await run(['user', 'set-google-email', '--email', 'relink@example.com', '--google-email', 'relink@gmail.com']);
      expect(result.exitCode).to.equal(0);
      expect((await tokensAfterGoogle()).claims()!.sub).to.equal(user.id);
      expect((await testEnv().db('users').where({ id: user.id }).first()).google_subject).to.equal('new-google-account');
      const types = await auditTypes(user.id);
      expect(types.filter((t) => t.startsWith('google.'))).to.deep.equal(['google.email_set', 'google.linked', 'google.unlinked', 'google.email_set', 'google.linked']);
    });

    it('user create --google-email refuses an address another user already has', async () => {
      await run(['customer', 'create', '--name', 'ACME', '--customer-number', '800001']);
      const first = await run(['user', 'create', '--customer', '800001', '--email', 'a@example.com', '--name', 'A', '--google-email', 'same@gmail.com', '--no-invite']);
      expect(first.exitCode).to.equal(0);
      const second = await run(['user', 'create', '--customer', '800001', '--email', 'b@example.com', '--name', 'B', '--google-email', 'SAME@gmail.com', '--no-invite']);
      expect(second).to.deep.equal({ exitCode: 1, error: 'Another user already has the Google address same@gmail.com.' });
    });
  });
});
