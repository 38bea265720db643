// Real-browser tests: Debian's Chromium driven by playwright-core (no browser download), against a
// provider server with Google (the fake issuer), operator pages and the customer's branding, and a
// relying-party app. Every page a test looks at is checked by `checkPage`: a screenshot under
// test-output/screenshots/, axe-core (no serious or critical violations), no horizontal scrolling, the
// page language, and no CSP violation reported by the browser.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { expect } from 'chai';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import type { RunningServer } from '../../src/app.js';
import { startServer } from '../../src/app.js';
import { createLogger } from '../../src/log.js';
import { testEnv } from '../support/env.js';
import { FakeGoogle } from '../support/fake-google.js';
import { makeClient } from '../support/fixtures.js';
import { mailbox } from '../support/smtp.js';
import { RelyingPartyApp } from './rp-app.js';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
/** The flags known to work on these machines (see README, "Browser tests"). */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const OUTPUT_DIR = path.resolve('test-output');
export const SCREENSHOT_DIR = path.join(OUTPUT_DIR, 'screenshots');
export const BRAND = { name: 'Acme Telephony', color: '#6a1b9a', logo: path.resolve('test/browser/fixtures/logo.svg') };
export const OPS_TOKEN = 'browser-test-operator-token-0123456789abcdef';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
// jsqr is CommonJS with an ES-style default export; load it the CommonJS way.
const jsQR = require('jsqr') as (data: Uint8ClampedArray, width: number, height: number) => { data: string } | null;

/**
 * What functions passed to page.evaluate() use of the page's window (they run in the browser; this
 * project compiles without the DOM library).
 */
export interface PageWindow {
  document: {
    activeElement: PageElement | null;
    documentElement: { scrollWidth: number; clientWidth: number };
    getElementById(id: string): PageElement | null;
  };
  axe: { run(context: unknown, options: object): Promise<AxeResults> };
  getComputedStyle(element: PageElement): { outlineStyle: string; outlineWidth: string };
}
export interface PageElement {
  id: string;
  textContent: string | null;
  getAttribute(name: string): string | null;
}
export const pageWindow = (): PageWindow => globalThis as unknown as PageWindow;

export interface BrowserEnv {
  browser: Browser;
  idp: RunningServer;
  google: FakeGoogle;
  rp: RelyingPartyApp;
}

let env: BrowserEnv | undefined;
/** Every axe result, written to test-output/accessibility.json at the end of the run. */
const axeReport: Record<string, { url: string; violations: { id: string; impact: string | null | undefined; help: string; nodes: number }[] }> = {};

export function browserEnv(): BrowserEnv {
  if (!env) throw new Error('browser environment not started (test/browser/hooks.ts)');
  return env;
}

export async function startBrowserEnv(): Promise<BrowserEnv> {
  rmSync(SCREENSHOT_DIR, { recursive: true, force: true });
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  // playwright-core starts the browser with a fresh, temporary --user-data-dir and --headless.
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  const google = new FakeGoogle();
  await google.listen();
  const idp = await startServer(
    {
      ...testEnv().config,
      port: 0,
      google: { clientId: google.clientId, clientSecret: google.clientSecret, issuer: google.issuer },
      opsToken: OPS_TOKEN,
      brandName: BRAND.name,
      brandColor: BRAND.color,
      brandLogoPath: BRAND.logo,
    },
    { db: testEnv().db, log: createLogger('silent'), issuerForPort: (port) => `http://127.0.0.1:${port}` },
  );
  await google.configure(`${idp.url}/interaction/callback/google`);
  const rp = new RelyingPartyApp();
  await rp.listen();
  env = { browser, idp, google, rp };
  return env;
}

export async function stopBrowserEnv(): Promise<void> {
  writeFileSync(path.join(OUTPUT_DIR, 'accessibility.json'), `${JSON.stringify(axeReport, null, 2)}\n`);
  if (!env) return;
  const { browser, idp, google, rp } = env;
  env = undefined;
  await browser.close();
  await rp.close();
  await idp.close();
  await google.stop();
}

/** Registers the relying-party app as a client (first-party unless said otherwise) and points the app at it. */
export async function setUpRelyingParty(options: { firstParty?: boolean; name?: string } = {}): Promise<RelyingPartyApp> {
  const { rp, idp } = browserEnv();
  const client = await makeClient({ name: options.name ?? 'Example app', redirectUris: [rp.redirectUri], firstParty: options.firstParty ?? true });
  await rp.configure(idp.url, client);
  return rp;
}

export interface PageOptions {
  /** Browser language (Accept-Language, navigator.language); default en-GB. */
  locale?: string;
  /** Viewport width in CSS pixels; default 1024 (the tour uses 320). */
  width?: number;
}

export interface TestPage {
  context: BrowserContext;
  page: Page;
  /** CSP violations and page errors the browser reported. */
  problems: string[];
}

/** A new browser context (a fresh "device": no cookies) with one page. */
export async function openPage(options: PageOptions = {}): Promise<TestPage> {
  const context = await browserEnv().browser.newContext({
    locale: options.locale ?? 'en-GB',
    viewport: { width: options.width ?? 1024, height: options.width && options.width < 500 ? 640 : 800 },
  });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  return { context, page, problems };
}

export function url(path: string): string {
  return `${browserEnv().idp.url}${path}`;
}

/**
 * Checks the page as it is now and keeps a screenshot named `name` (flow-step): axe-core with no serious
 * or critical violations, no horizontal scrolling, the page language, no CSP violation. axe is evaluated
 * through the DevTools protocol (page.evaluate), which CSP does not govern, so the pages keep their real
 * CSP (no bypassCSP) and a violation of it still shows up.
 */
export async function checkPage(test: TestPage, name: string, options: { lang?: string } = {}): Promise<void> {
  const { page, problems } = test;
  await page.waitForLoadState('load');
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
  await page.evaluate(AXE_SOURCE);
  const results = await page.evaluate(() =>
    (globalThis as unknown as PageWindow).axe.run((globalThis as unknown as PageWindow).document, {
      resultTypes: ['violations'],
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
    }),
  );
  axeReport[name] = {
    url: page.url(),
    violations: results.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length })),
  };
  const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(serious.map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.map((n) => n.html).join(' | ')}`), `axe on ${name}`).to.deep.equal([]);
  const overflow = await page.evaluate(() => {
    const { documentElement } = (globalThis as unknown as PageWindow).document;
    return documentElement.scrollWidth - documentElement.clientWidth;
  });
  expect(overflow, `horizontal scrolling on ${name}`).to.be.at.most(0);
  if (options.lang) expect(await page.getAttribute('html', 'lang'), `language of ${name}`).to.equal(options.lang);
  expect(problems, `browser reported problems on ${name}`).to.deep.equal([]);
}

interface AxeResults {
  violations: { id: string; impact?: string | null; help: string; nodes: { html: string }[] }[];
}

/** The id of the element that has the keyboard focus. */
export function focusedId(page: Page): Promise<string | undefined> {
  return page.evaluate(() => (globalThis as unknown as PageWindow).document.activeElement?.id || undefined);
}

/** Reads the QR code as the browser shows it (a screenshot of the image) and returns the otpauth URI. */
export async function readQrCode(page: Page): Promise<string> {
  const png = PNG.sync.read(await page.locator('img.qr').screenshot());
  const result = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
  if (!result) throw new Error('the QR code on the page could not be read');
  return result.data;
}

/** The first absolute link under the provider's issuer in a mail's text. */
export function linkIn(text: string): string {
  const match = new RegExp(`${browserEnv().idp.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/\\S+`).exec(text);
  if (!match) throw new Error(`no link in the mail: ${text}`);
  return match[0];
}

/** Wait until the current TOTP step has a few seconds left, so a computed code is still current when checked. */
export async function awayFromStepBoundary(): Promise<void> {
  const left = 30 - Math.floor((Date.now() / 1000) % 30);
  if (left < 4) await new Promise((resolve) => setTimeout(resolve, left * 1000 + 300));
}

/**
 * Signs in to the account console (/account) in this page through the sign-in steps: password, then the
 * email code from the mailbox and "No" to the trust question when they are asked.
 */
export async function signInToConsole(test: TestPage, email: string, password: string, options: { shots?: string } = {}): Promise<void> {
  const { page } = test;
  await page.goto(url('/account'));
  await page.getByLabel('Email address or customer number').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForLoadState('load');
  if (await page.getByRole('heading', { name: 'Check your email' }).isVisible()) {
    await page.getByLabel('Code', { exact: true }).fill(await mailbox.code(email));
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('button', { name: 'No' }).click();
  }
  await page.getByRole('heading', { name: 'Your account' }).waitFor();
  if (options.shots) await checkPage(test, options.shots, { lang: 'en' });
}

/**
 * For a describe block: returns `newPage()`, which opens a fresh browser context, and closes every
 * context it opened after each test.
 */
export function usePages(): (options?: Parameters<typeof openPage>[0]) => Promise<TestPage> {
  const pages: TestPage[] = [];
  afterEach(async () => {
    for (const test of pages.splice(0)) await test.context.close();
  });
  return async (options = {}) => {
    const test = await openPage(options);
    pages.push(test);
    return test;
  };
}
