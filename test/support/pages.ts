// Small helpers shared by the tests that drive our own pages (console, life cycle, 2FA).
import { Browser, csrfToken, type Page } from './browser.js';
import { testEnv } from './env.js';
import { PASSWORD } from './fixtures.js';
import { consoleSignIn } from './rp.js';
import { secondsLeftInStep, totp } from './totp.js';

export const url = (path: string) => `${testEnv().url}${path}`;

/** Posts a form of ours with the page's CSRF token. */
export async function post(browser: Browser, page: Page, path: string, fields: Record<string, string> = {}): Promise<Page> {
  return browser.submit(page, url(path), { _csrf: csrfToken(page.html), ...fields });
}

/** Avoids a TOTP step boundary between computing a code and the server checking it. */
export async function awayFromStepBoundary(): Promise<void> {
  if (secondsLeftInStep() < 3) await new Promise((r) => setTimeout(r, secondsLeftInStep() * 1000 + 200));
}

/** Signs in to the console, sets up an authenticator app and returns its secret, the recovery codes and the pages. */
export async function enrolTotp(browser: Browser, email: string, deviceName = "Philipp's iPhone") {
  await consoleSignIn(browser, email, PASSWORD);
  const setup = await post(browser, await browser.go(url('/account/2fa')), '/account/2fa/setup');
  const secret = /<code class="key" id="totp-key">([^<]+)<\/code>/.exec(setup.html)![1]!.replace(/\s/g, '');
  await awayFromStepBoundary();
  const done = await post(browser, setup, '/account/2fa/activate', { code: totp(secret), device_name: deviceName });
  const recoveryCodes = [...done.html.matchAll(/<li><code>([a-z0-9-]+)<\/code><\/li>/g)].map((m) => m[1]!);
  return { secret, recoveryCodes, setup, done };
}
