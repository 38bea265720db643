// Helpers for the clients-and-tokens tests: relying parties with every client authentication method,
// the consent page, the published JWKS, and a small HTTP endpoint that records what it receives.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, type JSONWebKeySet } from 'jose';
import * as oidc from 'openid-client';
import { runCommand, type CommandResult } from '../../src/cli/commands.js';
import { Browser, csrfToken, formAction, type Page } from './browser.js';
import { REDIRECT_URI } from './fixtures.js';
import { completeSignIn, openSignIn, relyingPartyWith, type ClientAuth, type RelyingParty } from './rp.js';

export { relyingPartyWith, type ClientAuth };
import { testEnv } from './env.js';


export function isConsentPage(page: Page): boolean {
  return page.status === 200 && page.html.includes('name="decision" value="allow"');
}

/** Answers the consent page ("allow" or "deny") and follows redirects back towards the app. */
export async function answerConsent(browser: Browser, page: Page, decision: 'allow' | 'deny'): Promise<Page> {
  return browser.submit(page, formAction(page.html), { _csrf: csrfToken(page.html), decision }, testEnv().url);
}

export interface SignInOptions {
  params?: Record<string, string>;
  /** What to answer if the consent page appears; without it, the consent page is an error. */
  consent?: 'allow' | 'deny';
  browser?: Browser;
  tokenParams?: Record<string, string>;
}

/** Signs in (password, email code, then consent if asked) and exchanges the code with openid-client. */
export async function signIn(rp: RelyingParty, identifier: string, password: string, options: SignInOptions = {}) {
  const browser = options.browser ?? new Browser();
  const request = await rp.authorize(options.params);
  let page = await openSignIn(browser, request.url);
  if (page.html.includes('name="password"')) page = await completeSignIn(browser, page, identifier, password);
  let consentShown = false;
  if (isConsentPage(page)) {
    consentShown = true;
    if (!options.consent) throw new Error('unexpected consent page');
    page = await answerConsent(browser, page, options.consent);
  }
  if (!page.url.startsWith(REDIRECT_URI)) throw new Error(`sign-in did not return to the app (status ${page.status}): ${page.html.slice(0, 400)}`);
  const callback = new URL(page.url);
  if (callback.searchParams.get('error')) return { tokens: undefined, browser, callback, consentShown };
  const tokens = await oidc.authorizationCodeGrant(
    rp.config,
    callback,
    { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce, idTokenExpected: true },
    options.tokenParams,
  );
  return { tokens, browser, callback, consentShown };
}

export async function fetchJwks(baseUrl = testEnv().url): Promise<JSONWebKeySet> {
  return (await (await fetch(`${baseUrl}/jwks`)).json()) as JSONWebKeySet;
}

export async function localJwks(baseUrl = testEnv().url) {
  return createLocalJWKSet(await fetchJwks(baseUrl));
}

export function jwtHeader(jwt: string): { alg: string; kid: string; typ?: string } {
  return JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()) as { alg: string; kid: string; typ?: string };
}

/** Runs an operator command in-process against the test database. */
export function idp(argv: string[], options: { production?: boolean; stdin?: string } = {}): Promise<CommandResult> {
  const { services } = testEnv().server.app;
  return runCommand(
    { ...services, stdin: options.stdin, config: { ...services.config, production: Boolean(options.production) } },
    argv,
  );
}

export async function idpOk(argv: string[]): Promise<Record<string, unknown>> {
  const result = await idp(argv);
  if (result.exitCode !== 0) throw new Error(`idp ${argv.join(' ')} failed: ${result.error}`);
  return result.output!;
}

/** A tiny HTTP endpoint on 127.0.0.1 that records form posts (a relying party's back-channel logout URI). */
export async function startReceiver(): Promise<{ url: string; received: URLSearchParams[]; next(): Promise<URLSearchParams>; close(): Promise<void> }> {
  const received: URLSearchParams[] = [];
  const waiting: ((p: URLSearchParams) => void)[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      received.push(params);
      waiting.shift()?.(params);
      res.statusCode = 200;
      res.setHeader('cache-control', 'no-store');
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/backchannel-logout`,
    received,
    next: () =>
      received.length
        ? Promise.resolve(received[received.length - 1]!)
        : new Promise((resolve, reject) => {
            waiting.push(resolve);
            setTimeout(() => reject(new Error('nothing received')), 5000).unref();
          }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
