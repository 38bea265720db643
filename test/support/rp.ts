// A relying party built on openid-client, as a real app would use it.
import * as oidc from 'openid-client';
import { Browser, csrfToken, formAction, type Page } from './browser.js';
import { REDIRECT_URI } from './fixtures.js';
import { testEnv } from './env.js';

export interface RelyingParty {
  config: oidc.Configuration;
  /** Starts an authorization request; returns the URL and what the callback must check. */
  authorize(params?: Record<string, string>): Promise<{ url: string; verifier: string; state: string; nonce: string }>;
}

export async function relyingParty(client: { client_id: string; client_secret?: string }): Promise<RelyingParty> {
  const { url } = testEnv();
  const config = await oidc.discovery(
    new URL(url),
    client.client_id,
    client.client_secret,
    client.client_secret ? oidc.ClientSecretBasic(client.client_secret) : oidc.None(),
    { execute: [oidc.allowInsecureRequests] },
  );
  return {
    config,
    async authorize(params = {}) {
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const authUrl = oidc.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI,
        scope: 'openid email profile',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
        ...params,
      });
      return { url: authUrl.href, verifier, state, nonce };
    },
  };
}

/** Opens the authorization URL in the browser and returns the sign-in page. */
export async function openSignIn(browser: Browser, authUrl: string): Promise<Page> {
  return browser.go(authUrl, {}, testEnv().url);
}

export async function submitPassword(browser: Browser, page: Page, identifier: string, password: string): Promise<Page> {
  return browser.submit(page, formAction(page.html), { _csrf: csrfToken(page.html), identifier, password }, testEnv().url);
}

/** Signs in with password and exchanges the code at the token endpoint; the ID token is verified by openid-client. */
export async function signInAndGetTokens(rp: RelyingParty, identifier: string, password: string, params: Record<string, string> = {}, browser = new Browser()) {
  const request = await rp.authorize(params);
  const page = await openSignIn(browser, request.url);
  const done = await submitPassword(browser, page, identifier, password);
  if (!done.url.startsWith(REDIRECT_URI)) throw new Error(`sign-in did not return to the app (status ${done.status}): ${done.html.slice(0, 300)}`);
  const tokens = await oidc.authorizationCodeGrant(rp.config, new URL(done.url), {
    pkceCodeVerifier: request.verifier,
    expectedState: request.state,
    expectedNonce: request.nonce,
    idTokenExpected: true,
  });
  return { tokens, browser, callbackUrl: done.url };
}
