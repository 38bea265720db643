// A relying party built on openid-client, as a real app would use it.
import * as oidc from 'openid-client';
import { Browser, csrfToken, formAction, type Page } from './browser.js';
import { REDIRECT_URI } from './fixtures.js';
import { testEnv } from './env.js';
import { mailbox } from './smtp.js';

export interface RelyingParty {
  config: oidc.Configuration;
  /** Starts an authorization request; returns the URL and what the callback must check. */
  authorize(params?: Record<string, string>): Promise<{ url: string; verifier: string; state: string; nonce: string }>;
}

export type ClientAuth = { secret?: string | undefined; method?: 'basic' | 'post' | 'none'; privateKey?: oidc.CryptoKey };

/** A relying party that authenticates at the token endpoint as the client was registered. */
export async function relyingPartyWith(clientId: string, auth: ClientAuth, baseUrl = testEnv().url): Promise<RelyingParty> {
  let clientAuth: oidc.ClientAuth;
  if (auth.privateKey) clientAuth = oidc.PrivateKeyJwt(auth.privateKey);
  else if (!auth.secret || auth.method === 'none') clientAuth = oidc.None();
  else clientAuth = auth.method === 'post' ? oidc.ClientSecretPost(auth.secret) : oidc.ClientSecretBasic(auth.secret);
  const config = await oidc.discovery(new URL(baseUrl), clientId, auth.secret, clientAuth, { execute: [oidc.allowInsecureRequests] });
  return {
    config,
    async authorize(params = {}) {
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI,
        scope: 'openid email profile',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
        ...params,
      });
      return { url: url.href, verifier, state, nonce };
    },
  };
}

/** A relying party of the shared test server (or of another provider server at `url`) with client_secret_basic or none. */
export async function relyingParty(client: { client_id: string; client_secret?: string }, url = testEnv().url): Promise<RelyingParty> {
  return relyingPartyWith(client.client_id, { secret: client.client_secret }, url);
}

/** Opens the authorization URL in the browser and returns the sign-in page. */
export async function openSignIn(browser: Browser, authUrl: string, origin = testEnv().url): Promise<Page> {
  return browser.go(authUrl, {}, origin);
}

export async function submitPassword(browser: Browser, page: Page, identifier: string, password: string, origin = testEnv().url): Promise<Page> {
  return browser.submit(page, formAction(page.html), { _csrf: csrfToken(page.html), identifier, password }, origin);
}

export interface SignInOptions {
  /** The mailbox that receives the email code (default: the identifier). */
  email?: string;
  /** Answer to "Do you trust this browser and device?" (default: no). */
  trust?: 'yes' | 'no';
  /** Gives the authenticator code when the TOTP step is asked. */
  totp?: () => string;
  /** The provider instance's base URL (default: the shared test server). */
  origin?: string;
}

export const isCodePage = (page: Page) => /action="[^"]*\/email_code"/.test(page.html);
export const isTotpPage = (page: Page) => /action="[^"]*\/totp"/.test(page.html);
export const isTrustPage = (page: Page) => page.html.includes('name="trust"');

export async function submitCode(browser: Browser, page: Page, code: string, origin = testEnv().url): Promise<Page> {
  return browser.submit(page, formAction(page.html), { _csrf: csrfToken(page.html), code }, origin);
}

export async function answerTrust(browser: Browser, page: Page, answer: 'yes' | 'no', origin = testEnv().url): Promise<Page> {
  return browser.submit(page, formAction(page.html), { _csrf: csrfToken(page.html), trust: answer }, origin);
}

/** From the sign-in page to the redirect back to the app: password, then the email code and the trust question when asked. */
export async function completeSignIn(browser: Browser, page: Page, identifier: string, password: string, options: SignInOptions = {}): Promise<Page> {
  const origin = options.origin ?? testEnv().url;
  let current = await submitPassword(browser, page, identifier, password, origin);
  if (isTotpPage(current)) {
    if (!options.totp) throw new Error('the TOTP step was asked but the test gave no code');
    current = await submitCode(browser, current, options.totp(), origin);
  }
  if (isCodePage(current)) {
    const code = await mailbox.code(options.email ?? identifier);
    current = await submitCode(browser, current, code, origin);
  }
  if (isTrustPage(current)) current = await answerTrust(browser, current, options.trust ?? 'no', origin);
  return current;
}

/** Signs in through every step and exchanges the code at the token endpoint; the ID token is verified by openid-client. */
export async function signInAndGetTokens(
  rp: RelyingParty,
  identifier: string,
  password: string,
  params: Record<string, string> = {},
  browser = new Browser(),
  options: SignInOptions = {},
) {
  const request = await rp.authorize(params);
  const page = await openSignIn(browser, request.url, options.origin);
  const done = await completeSignIn(browser, page, identifier, password, options);
  if (!done.url.startsWith(REDIRECT_URI)) throw new Error(`sign-in did not return to the app (status ${done.status}): ${done.html.slice(0, 300)}`);
  return { tokens: await exchangeCode(rp, done.url, request), browser, callbackUrl: done.url };
}

export async function exchangeCode(rp: RelyingParty, callbackUrl: string, request: { verifier: string; state: string; nonce: string }) {
  return oidc.authorizationCodeGrant(rp.config, new URL(callbackUrl), {
    pkceCodeVerifier: request.verifier,
    expectedState: request.state,
    expectedNonce: request.nonce,
    idTokenExpected: true,
  });
}

/** Signs in to the account console (/account) through the provider's sign-in steps. */
export async function consoleSignIn(browser: Browser, email: string, password: string, options: SignInOptions = {}): Promise<Page> {
  const page = await browser.go(`${testEnv().url}/account`);
  if (page.url.endsWith('/account') && page.status === 200) return page;
  return completeSignIn(browser, page, email, password, options);
}
