// Bounded password-guessing attacks against a running instance, all from loopback. A second instance
// with TRUST_PROXY on lets X-Forwarded-For stand for other client IPs. The tests count how many guesses
// reached the password check (401) and how many were refused (429), turn the counts into guesses per
// hour using the limits (services.ts PASSWORD_LIMITS), and check that the real user still signs in.
import { expect } from 'chai';
import type { RunningServer } from '../src/app.js';
import { PASSWORD_LIMITS } from '../src/services.js';
import { ProgressiveDelay } from '../src/security/rate-limit.js';
import { Browser, csrfToken, formAction } from './support/browser.js';
import { resetData, startInstance, testEnv } from './support/env.js';
import { makeClient, makeUser, PASSWORD, REDIRECT_URI } from './support/fixtures.js';
import { completeSignIn, exchangeCode, openSignIn, submitPassword } from './support/rp.js';
import { relyingPartyWith } from './support/tokens.js';

interface Guess {
  identifier: string;
  password: string;
  /** The client IP the guess comes from (X-Forwarded-For); none = the loopback address itself. */
  ip?: string;
}

interface AttackResult {
  guesses: number;
  /** Reached the password check and were answered "wrong" (401). */
  checked: number;
  /** Refused by a limit before the check (429). */
  refused: number;
  other: Record<number, number>;
  maxRetryAfter: number;
  seconds: number;
}

/** Guesses per hour that pass the per-account delays when an attacker keeps trying without pause. */
function perAccountGuessesPerHour(): number {
  const delays = new ProgressiveDelay(testEnv().db, 'model', PASSWORD_LIMITS.perAccount);
  let seconds = 0;
  let n = 0;
  while (seconds < PASSWORD_LIMITS.perAccount.window) {
    n += 1;
    seconds += delays.delayAfter(n);
  }
  return n;
}

describe('brute force and credential stuffing (bounded attacks from loopback)', function () {
  this.timeout(60_000);
  let proxied: RunningServer;
  let client: Awaited<ReturnType<typeof makeClient>>;

  before(async () => {
    proxied = await startInstance({ trustProxy: true });
  });
  after(() => proxied.close());
  beforeEach(async () => {
    await resetData();
    client = await makeClient();
  });

  async function rp() {
    return relyingPartyWith(client.client_id, { secret: client.client_secret }, proxied.url);
  }

  /** An open sign-in page an attacker posts guesses to: its form URL, CSRF token and cookies. */
  async function signInForm() {
    const browser = new Browser();
    const page = await openSignIn(browser, (await (await rp()).authorize()).url, proxied.url);
    const action = new URL(formAction(page.html), page.url).href;
    return { action, csrf: csrfToken(page.html), cookie: await browser.jar.getCookieString(action) };
  }

  /** Sends the guesses, `concurrency` at a time, and counts the answers. */
  async function attack(guesses: Guess[], concurrency = 8): Promise<AttackResult> {
    const form = await signInForm();
    const result: AttackResult = { guesses: guesses.length, checked: 0, refused: 0, other: {}, maxRetryAfter: 0, seconds: 0 };
    const started = Date.now();
    let next = 0;
    const worker = async () => {
      while (next < guesses.length) {
        const g = guesses[next++]!;
        const res = await fetch(form.action, {
          method: 'POST',
          redirect: 'manual',
          headers: { cookie: form.cookie, 'content-type': 'application/x-www-form-urlencoded', ...(g.ip ? { 'x-forwarded-for': g.ip } : {}) },
          body: new URLSearchParams({ _csrf: form.csrf, identifier: g.identifier, password: g.password }),
        });
        await res.arrayBuffer();
        if (res.status === 401) result.checked += 1;
        else if (res.status === 429) {
          result.refused += 1;
          result.maxRetryAfter = Math.max(result.maxRetryAfter, Number(res.headers.get('retry-after')));
        } else result.other[res.status] = (result.other[res.status] ?? 0) + 1;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    result.seconds = (Date.now() - started) / 1000;
    return result;
  }

  function report(name: string, r: AttackResult, perHour: string): void {
    console.log(
      `      ${name}: ${r.guesses} guesses in ${r.seconds.toFixed(1)} s; ${r.checked} reached the password check, ${r.refused} refused with 429 ` +
        `(Retry-After up to ${r.maxRetryAfter} s); ${perHour}`,
    );
  }

  /** Signs in through the TRUST_PROXY instance from `ip`, to the redirect back to the app with a code. */
  async function signInFrom(ip: string, identifier: string, browser = new Browser({ 'x-forwarded-for': ip }), trust: 'yes' | 'no' = 'no') {
    const relyingParty = await rp();
    const request = await relyingParty.authorize({ prompt: 'login' });
    const page = await openSignIn(browser, request.url, proxied.url);
    const done = await completeSignIn(browser, page, identifier, PASSWORD, { origin: proxied.url, trust });
    return { done, browser, tokens: done.url.startsWith(REDIRECT_URI) ? await exchangeCode(relyingParty, done.url, request) : undefined };
  }

  it('credential stuffing from one IP: 600 guesses over 30 accounts, at most 100 reach a password check per hour; the user signs in from home', async () => {
    const users = await Promise.all(Array.from({ length: 30 }, (_, i) => makeUser({ email: `stuffed${i}@example.com` })));
    const guesses: Guess[] = Array.from({ length: 600 }, (_, i) => ({ identifier: users[i % users.length]!.user.email, password: `leaked-password-${i}` }));
    const result = await attack(guesses);
    report('one IP, 30 accounts', result, `the per-IP window is ${PASSWORD_LIMITS.perIp.duration / 3600} h, so at most ${PASSWORD_LIMITS.perIp.points} guesses an hour from one IP`);

    expect(result.other, 'no other status than 401 and 429').to.deep.equal({});
    expect(result.checked).to.equal(PASSWORD_LIMITS.perIp.points);
    expect(result.refused).to.equal(guesses.length - PASSWORD_LIMITS.perIp.points);
    expect(result.maxRetryAfter).to.be.within(1, PASSWORD_LIMITS.perIp.duration);
    const audited = await testEnv().db('audit_events').where({ type: 'login.failed' }).count<{ count: number }[]>('* as count');
    expect(Number(audited[0]!.count)).to.equal(result.checked);

    // The attacked user, at home (another IP), signs in at once and gets tokens.
    const victim = await signInFrom('198.51.100.7', users[0]!.user.email);
    expect(victim.tokens?.claims()?.sub).to.equal(users[0]!.user.id);
    // The attacking IP stays refused, even with a right password.
    const fromAttacker = await signInForm();
    const res = await fetch(fromAttacker.action, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: fromAttacker.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: fromAttacker.csrf, identifier: users[1]!.user.email, password: PASSWORD }),
    });
    expect(res.status).to.equal(429);
    expect(await res.text()).to.match(/Too many attempts\. Please wait \d+ minutes/);
  });

  it('a distributed attack on one account: progressive delays (at most 60 s), a trusted browser is never held up, others wait at most a minute', async () => {
    const { user } = await makeUser({ email: 'target@example.com' });
    // The user trusted their laptop in an earlier sign-in.
    const laptop = await signInFrom('198.51.100.20', 'target@example.com', undefined, 'yes');
    expect(laptop.tokens).not.to.equal(undefined);

    // 400 guesses, each from another address.
    const guesses: Guess[] = Array.from({ length: 400 }, (_, i) => ({ identifier: 'target@example.com', password: `guess-${i}`, ip: `203.0.${Math.floor(i / 250)}.${i % 250}` }));
    const result = await attack(guesses, 10);
    const perHour = perAccountGuessesPerHour();
    report('400 IPs, one account', result, `with delays doubling from 1 s to 60 s this is at most ${perHour} guesses an hour on one account`);
    expect(result.other).to.deep.equal({});
    // The free attempts, then one per delay (1 s, 2 s, 4 s, …) while the attack lasted.
    const admittedByDelays = Math.floor(Math.log2(result.seconds + 1)) + 1;
    expect(result.checked).to.be.within(PASSWORD_LIMITS.perAccount.free + 1, PASSWORD_LIMITS.perAccount.free + admittedByDelays);
    expect(result.maxRetryAfter).to.be.within(1, PASSWORD_LIMITS.perAccount.maxDelay);
    expect(perHour).to.be.below(80);

    // The trusted laptop, now at another address, signs in during the attack without delay.
    const again = await signInFrom('198.51.100.21', 'target@example.com', laptop.browser);
    expect(again.tokens?.claims()?.sub).to.equal(user.id);

    // A new browser is asked to wait, briefly: the page says for how long.
    const phone = new Browser({ 'x-forwarded-for': '198.51.100.30' });
    const page = await openSignIn(phone, (await (await rp()).authorize()).url, proxied.url);
    await attack([{ identifier: 'target@example.com', password: 'one more guess', ip: '203.0.9.9' }], 1);
    const waiting = await submitPassword(phone, page, 'target@example.com', PASSWORD, proxied.url);
    expect(waiting.status).to.equal(429);
    const retryAfter = Number(waiting.headers.get('retry-after'));
    expect(retryAfter).to.be.within(1, PASSWORD_LIMITS.perAccount.maxDelay);
    expect(waiting.html).to.match(/Please wait \d+ (seconds|minutes)/);
    // Once that time has passed (moved forward here instead of waiting), the right password works.
    await testEnv().db('rate_limits').where('key', 'like', 'pwd-acct-gate:%').update({ expire: Date.now() - 1 });
    const signedIn = await submitPassword(phone, waiting, 'target@example.com', PASSWORD, proxied.url);
    expect(signedIn.status, signedIn.html.slice(0, 300)).to.equal(200);
    expect(signedIn.html).to.include('name="code"');
  });

  it('an attacker at one IP cannot lock the user out: 20 wrong passwords there, the user elsewhere still signs in', async () => {
    const { user } = await makeUser({ email: 'lockout@example.com' });
    const result = await attack(Array.from({ length: 20 }, (_, i) => ({ identifier: 'lockout@example.com', password: `nope-${i}`, ip: '203.0.113.66' })), 1);
    expect(result.checked).to.equal(PASSWORD_LIMITS.perAccountIp.points);
    expect(result.refused).to.equal(20 - PASSWORD_LIMITS.perAccountIp.points);
    const victim = await signInFrom('198.51.100.8', 'lockout@example.com');
    expect(victim.tokens?.claims()?.sub).to.equal(user.id);
    // The email address and the customer number of an owner share one counter.
    const owner = await makeUser({ email: 'owner@example.com', owner: true, customerNumber: '7700001' });
    const mixed = await attack(
      Array.from({ length: 12 }, (_, i) => ({ identifier: i % 2 ? 'owner@example.com' : owner.customer.customer_number, password: `x-${i}`, ip: '203.0.113.67' })),
      1,
    );
    expect(mixed.checked).to.equal(PASSWORD_LIMITS.perAccountIp.points);
  });

  it('limits hold across instances and restarts: counters live in the database', async () => {
    await makeUser({ email: 'shared@example.com' });
    // Nine wrong passwords on this instance, one on the main one: the eleventh is refused on either.
    await attack(Array.from({ length: 9 }, (_, i) => ({ identifier: 'shared@example.com', password: `p-${i}` })), 1);
    const rpMain = await relyingPartyWith(client.client_id, { secret: client.client_secret });
    const browser = new Browser();
    let page = await openSignIn(browser, (await rpMain.authorize()).url);
    page = await submitPassword(browser, page, 'shared@example.com', 'tenth wrong');
    expect(page.status).to.equal(401);
    // A fresh instance (a restart) sees the same counters.
    const restarted = await startInstance({ trustProxy: true });
    try {
      const b2 = new Browser();
      const rp2 = await relyingPartyWith(client.client_id, { secret: client.client_secret }, restarted.url);
      const p2 = await openSignIn(b2, (await rp2.authorize()).url, restarted.url);
      const refused = await submitPassword(b2, p2, 'shared@example.com', PASSWORD, restarted.url);
      expect(refused.status).to.equal(429);
      expect(Number(refused.headers.get('retry-after'))).to.be.greaterThan(60);
    } finally {
      await restarted.close();
    }
  });

  it('unknown invitation and reset links: 20 an hour per IP, then 429 with Retry-After; other IPs unaffected', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 21; i += 1) {
      const res = await fetch(`${proxied.url}/${i % 2 ? 'invite' : 'password/reset'}/${'A'.repeat(42)}${String.fromCharCode(66 + (i % 20))}`, { headers: { 'x-forwarded-for': '203.0.113.99' } });
      statuses.push(res.status);
      if (i === 20) {
        expect(Number(res.headers.get('retry-after'))).to.be.within(1, 3600);
        expect(await res.text()).to.include('Too many attempts');
      } else await res.arrayBuffer();
    }
    expect(statuses.slice(0, 20).every((s) => s === 400)).to.equal(true);
    expect(statuses[20]).to.equal(429);
    const elsewhere = await fetch(`${proxied.url}/invite/${'A'.repeat(43)}`, { headers: { 'x-forwarded-for': '198.51.100.50' } });
    expect(elsewhere.status).to.equal(400);
  });
});
