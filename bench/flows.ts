// What one virtual user does: a complete sign-in as a browser and an app would do it (authorization
// request with PKCE → sign-in page → password → email code or trusted device → trust question →
// redirect back → code exchange at the token endpoint), and the token-endpoint operations of an app.
import { createHash, randomBytes } from 'node:crypto';
import { basicAuth, Browser, type Page, postForm } from './http.js';
import type { BenchMailbox } from './mailbox.js';

export const REDIRECT_URI = 'https://app.bench.invalid/cb';
export const TRUST_COOKIES = ['idp_trust', 'idp_trust.sig'];

export interface ClientCreds {
  client_id: string;
  client_secret: string;
}

export interface SignInResult {
  accessToken: string;
  refreshToken: string | undefined;
  idToken: string;
  /** Set-Cookie strings for the trust cookie, when the browser now holds one. */
  trustCookies: string[];
  /** Which steps were shown. */
  emailCode: boolean;
}

const isCodePage = (page: Page) => /action="[^"]*\/email_code"/.test(page.body);
const isTrustPage = (page: Page) => page.body.includes('name="trust"');

function fail(what: string, page: Page): never {
  const text = page.body.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 200);
  throw new Error(`${what}: status ${page.status} at ${page.url.pathname}: ${text}`);
}

export async function signIn(
  base: string,
  web: ClientCreds,
  user: { email: string; password: string },
  options: { browser?: Browser; mailbox: BenchMailbox; scope: string; prompt?: string; trust?: 'yes' | 'no' },
): Promise<SignInResult> {
  const browser = options.browser ?? new Browser();
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(16).toString('base64url');
  const nonce = randomBytes(16).toString('base64url');
  const auth = new URL('/auth', base);
  auth.search = new URLSearchParams({
    client_id: web.client_id,
    response_type: 'code',
    scope: options.scope,
    redirect_uri: REDIRECT_URI,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...(options.prompt ? { prompt: options.prompt } : {}),
  }).toString();

  let page = await browser.go(auth);
  if (page.status !== 200 || !/action="[^"]*\/password"/.test(page.body)) fail('no sign-in page', page);
  page = await browser.submit(page, { identifier: user.email, password: user.password });
  let emailCode = false;
  if (isCodePage(page)) {
    emailCode = true;
    const code = await options.mailbox.code(user.email);
    page = await browser.submit(page, { code });
  }
  if (isTrustPage(page)) page = await browser.submit(page, { trust: options.trust ?? 'yes' });
  if (!(page.status >= 300 && page.status < 400) || !page.url.href.startsWith(REDIRECT_URI)) fail('sign-in did not return to the app', page);
  const code = page.url.searchParams.get('code');
  if (!code || page.url.searchParams.get('state') !== state) throw new Error(`bad callback ${page.url.search}`);

  const token = await postForm(
    new URL('/token', base),
    { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier },
    basicAuth(web.client_id, web.client_secret),
  );
  if (token.status !== 200 || typeof token.json.id_token !== 'string' || typeof token.json.access_token !== 'string') {
    throw new Error(`code exchange failed: ${token.status} ${JSON.stringify(token.json).slice(0, 200)}`);
  }
  const idToken = token.json.id_token;
  const claims = JSON.parse(Buffer.from(idToken.split('.')[1]!, 'base64url').toString('utf8')) as { nonce?: string; email?: string };
  if (claims.nonce !== nonce || claims.email !== user.email) throw new Error('ID token does not match the request');
  return {
    accessToken: token.json.access_token,
    refreshToken: typeof token.json.refresh_token === 'string' ? token.json.refresh_token : undefined,
    idToken,
    trustCookies: browser.jar.export(TRUST_COOKIES),
    emailCode,
  };
}

/** A refresh token grant; returns the new (rotated) refresh token and the new access token. */
export async function refresh(base: string, web: ClientCreds, refreshToken: string): Promise<{ refreshToken: string; accessToken: string }> {
  const res = await postForm(new URL('/token', base), { grant_type: 'refresh_token', refresh_token: refreshToken }, basicAuth(web.client_id, web.client_secret));
  if (res.status !== 200 || typeof res.json.refresh_token !== 'string' || typeof res.json.access_token !== 'string') {
    throw new Error(`refresh failed: ${res.status} ${JSON.stringify(res.json).slice(0, 200)}`);
  }
  return { refreshToken: res.json.refresh_token, accessToken: res.json.access_token };
}

export async function clientCredentials(base: string, machine: ClientCreds, resource: string): Promise<void> {
  const res = await postForm(new URL('/token', base), { grant_type: 'client_credentials', resource, scope: 'api:read' }, basicAuth(machine.client_id, machine.client_secret));
  if (res.status !== 200 || typeof res.json.access_token !== 'string' || res.json.scope !== 'api:read') {
    throw new Error(`client_credentials failed: ${res.status} ${JSON.stringify(res.json).slice(0, 200)}`);
  }
}

export async function introspect(base: string, web: ClientCreds, accessToken: string): Promise<void> {
  const res = await postForm(new URL('/token/introspection', base), { token: accessToken, token_type_hint: 'access_token' }, basicAuth(web.client_id, web.client_secret));
  if (res.status !== 200 || res.json.active !== true) throw new Error(`introspection failed: ${res.status} ${JSON.stringify(res.json).slice(0, 200)}`);
}
