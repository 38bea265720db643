// The OpenID Foundation conformance suite's test plans, module by module, and a relying party that makes
// the same requests the suite makes: hand-built authorization requests (so a test controls every
// parameter), the real sign-in pages in a cookie-jar browser, responses by query or form_post, and the
// token and userinfo calls with the client authentication the plan uses. docs/conformance.md is written
// from the results at the end of test/conformance.test.ts.
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT, type JWK, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import { Cookie } from 'tough-cookie';
import { activateTotp, startTotpSetup } from '../../src/accounts/totp.js';
import { Browser, type Page } from './browser.js';
import { testEnv } from './env.js';
import { makeClient, makeUser, PASSWORD, REDIRECT_URI } from './fixtures.js';
import { completeSignIn, type SignInOptions } from './rp.js';
import { answerConsent, idpOk, isConsentPage } from './tokens.js';
import { totp } from './totp.js';

// ---------------------------------------------------------------------------------------------------
// The plans

/** What the suite reports for a module run against this provider. */
export type SuiteOutcome = 'passed' | 'review' | 'skipped' | 'warning';

export interface ModuleEntry {
  module: string;
  outcome: SuiteOutcome;
  /** Why, for anything but a plain pass. */
  note?: string;
}

const passed = (module: string, note?: string): ModuleEntry => ({ module, outcome: 'passed', ...(note ? { note } : {}) });
const review = (module: string, note: string): ModuleEntry => ({ module, outcome: 'review', note });
const skipped = (module: string, note: string): ModuleEntry => ({ module, outcome: 'skipped', note });
const warning = (module: string, note: string): ModuleEntry => ({ module, outcome: 'warning', note });

const NO_ADDRESS = 'we hold no postal address, so `address` is not in scopes_supported and the suite skips the module';
const NO_PHONE = 'we hold no phone number, so `phone` is not in scopes_supported and the suite skips the module';
const NO_UNSIGNED_ID_TOKENS = 'ID tokens are always signed: `none` is not in id_token_signing_alg_values_supported, and registering it is refused';
const ERROR_PAGE = 'the provider shows an error page instead of redirecting; the suite asks for a screenshot of it';

/** OIDCCBasicTestPlan (static client, client_secret_basic; oidcc-server-client-secret-post with client_secret_post). */
export const BASIC_MODULES: ModuleEntry[] = [
  passed('oidcc-server'),
  passed('oidcc-response-type-missing'),
  passed('oidcc-idtoken-signature'),
  skipped('oidcc-idtoken-unsigned', `not applicable to a static client; with a dynamic one: ${NO_UNSIGNED_ID_TOKENS}`),
  passed('oidcc-userinfo-get'),
  passed('oidcc-userinfo-post-header'),
  passed('oidcc-userinfo-post-body'),
  passed('oidcc-ensure-request-without-nonce-succeeds-for-code-flow'),
  warning(
    'oidcc-scope-profile',
    'userinfo returns the profile claims we hold (`name`, `locale`, `updated_at`); the suite warns that the other eleven profile claims (given_name, birthdate, …) are missing. We do not invent them: OpenID Connect Core 5.3.2 says to omit claims we do not have. A warning does not stop certification',
  ),
  passed('oidcc-scope-email'),
  skipped('oidcc-scope-address', NO_ADDRESS),
  skipped('oidcc-scope-phone', NO_PHONE),
  skipped('oidcc-scope-all', `${NO_ADDRESS}; the same for \`phone\``),
  passed('oidcc-ensure-other-scope-order-succeeds'),
  passed('oidcc-display-page'),
  passed('oidcc-display-popup'),
  review('oidcc-prompt-login', 'the suite asks for a screenshot of the second sign-in page'),
  passed('oidcc-prompt-none-not-logged-in'),
  passed('oidcc-prompt-none-logged-in'),
  review('oidcc-max-age-1', 'the suite asks for a screenshot of the second sign-in page'),
  passed('oidcc-max-age-10000'),
  passed('oidcc-ensure-request-with-unknown-parameter-succeeds'),
  passed('oidcc-id-token-hint'),
  passed('oidcc-login-hint'),
  passed('oidcc-ui-locales'),
  passed('oidcc-claims-locales'),
  passed('oidcc-ensure-request-with-acr-values-succeeds'),
  passed('oidcc-codereuse'),
  passed('oidcc-codereuse-30seconds'),
  review('oidcc-ensure-registered-redirect-uri', ERROR_PAGE),
  passed('oidcc-ensure-post-request-succeeds'),
  passed('oidcc-server-client-secret-post'),
  passed('oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported', 'not applicable to a static client; with a dynamic one the request_uri is supported'),
  passed('oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported'),
  passed('oidcc-claims-essential'),
  passed('oidcc-ensure-request-object-with-redirect-uri'),
  passed('oidcc-refresh-token'),
  passed('oidcc-ensure-request-with-valid-pkce-succeeds'),
];

/** OIDCCConfigTestPlan. */
export const CONFIG_MODULES: ModuleEntry[] = [passed('oidcc-discovery-endpoint-verification')];

/** OIDCCDynamicTestPlan (discovery, dynamic registration with the initial access token, private_key_jwt, response_type code). */
export const DYNAMIC_MODULES: ModuleEntry[] = [
  passed('oidcc-idtoken-rs256'),
  skipped('oidcc-idtoken-unsigned', NO_UNSIGNED_ID_TOKENS),
  passed('oidcc-userinfo-rs256'),
  review('oidcc-ensure-redirect-uri-in-authorization-request', ERROR_PAGE),
  passed('oidcc-redirect-uri-query-OK'),
  review('oidcc-redirect-uri-query-mismatch', ERROR_PAGE),
  review('oidcc-redirect-uri-query-added', ERROR_PAGE),
  passed('oidcc-redirect-uri-regfrag'),
  passed('oidcc-discovery-endpoint-verification'),
  passed('oidcc-server'),
  review('oidcc-registration-logo-uri', 'the suite asks for a screenshot of the sign-in page showing the logo'),
  review('oidcc-registration-policy-uri', 'the suite asks for a screenshot of the sign-in page linking the policy'),
  review('oidcc-registration-tos-uri', 'the suite asks for a screenshot of the sign-in page linking the terms'),
  passed('oidcc-registration-jwks-uri'),
  skipped('oidcc-registration-sector-uri', 'pairwise subjects are not offered (`sub` is the stable user id, DESIGN §5), so the suite skips the module'),
  skipped('oidcc-registration-sector-bad', 'pairwise subjects are not offered, so the suite skips the module'),
  passed('oidcc-server-rotate-keys', 'start it after `idp keys rotate --activate-in 0`'),
  passed('oidcc-refresh-token-rp-key-rotation'),
  passed('oidcc-request-uri-unsigned'),
  passed('oidcc-request-uri-signed-rs256'),
  passed('oidcc-ensure-request-object-with-redirect-uri'),
  passed('oidcc-refresh-token'),
  passed('oidcc-ensure-client-assertion-with-iss-aud-succeeds'),
];

export interface Plan {
  name: string;
  title: string;
  modules: ModuleEntry[];
}

export const PLANS = {
  basic: { name: 'oidcc-basic-certification-test-plan', title: 'Basic OP', modules: BASIC_MODULES },
  config: { name: 'oidcc-config-certification-test-plan', title: 'Config OP', modules: CONFIG_MODULES },
  formPost: { name: 'oidcc-formpost-basic-certification-test-plan', title: 'Form Post OP', modules: BASIC_MODULES },
  dynamic: { name: 'oidcc-dynamic-certification-test-plan', title: 'Dynamic OP', modules: DYNAMIC_MODULES },
} satisfies Record<string, Plan>;

// ---------------------------------------------------------------------------------------------------
// The table in docs/conformance.md

export interface TestResult {
  plan: string;
  module: string;
  title: string;
  state: 'passed' | 'failed' | 'not run';
}

const OUTCOME_TEXT: Record<SuiteOutcome, string> = {
  passed: 'PASSED',
  review: 'REVIEW (screenshot)',
  skipped: 'SKIPPED',
  warning: 'WARNING',
};

export function conformanceMarkdown(plans: Plan[], results: TestResult[]): string {
  const lines = [
    '# OpenID Connect conformance',
    '',
    'Generated by `test/conformance.test.ts` at the end of every full test run (`npm test`): do not edit by hand.',
    'Each module of the OpenID Foundation certification plans has a test here that makes the same requests through',
    'the real sign-in pages and asserts what the suite checks. "Suite result" is what the suite reports for the module',
    'against this provider; "Our test" is the test that reproduces it and its result in the last run.',
    'How to run the real suite against a deployment: README, "OpenID conformance".',
    '',
  ];
  for (const plan of plans) {
    lines.push(`## ${plan.title}: \`${plan.name}\``, '', '| Module | Suite result | Our test | Result |', '| --- | --- | --- | --- |');
    for (const entry of plan.modules) {
      const result = results.find((r) => r.plan === plan.name && r.module === entry.module);
      const mark = !result ? 'no test' : result.state === 'passed' ? 'pass' : result.state === 'failed' ? '**FAIL**' : 'not run';
      const outcome = OUTCOME_TEXT[entry.outcome] + (entry.note ? `: ${entry.note}` : '');
      lines.push(`| \`${entry.module}\` | ${outcome} | ${result ? result.title.replace(/\|/g, '\\|') : ''} | ${mark} |`);
    }
    lines.push('');
  }
  const failed = results.filter((r) => r.state === 'failed').length;
  const run = results.filter((r) => r.state !== 'not run').length;
  lines.push(`Last run: ${run} tests, ${run - failed} passed, ${failed} failed.`, '');
  return lines.join('\n');
}

/** Writes the table; a read-only checkout only logs that it could not. */
export function writeConformanceDoc(markdown: string): void {
  const target = new URL('../../docs/conformance.md', import.meta.url);
  try {
    mkdirSync(new URL('.', target), { recursive: true });
    writeFileSync(target, markdown);
  } catch (error) {
    console.warn(`docs/conformance.md not written: ${(error as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// The tester: one user who signs in through the real pages

export interface Tester {
  email: string;
  userId: string;
  /** A browser this user trusts (no email code), like the tester's own browser during a suite run. */
  trustedBrowser(): Promise<Browser>;
  signInOptions: SignInOptions;
}

/** Creates the suite's test user and trusts one browser through a full sign-in (password, email code, "Yes"). */
export async function makeTester(email: string, client: SuiteClient): Promise<Tester> {
  const { user } = await makeUser({ email });
  const browser = new Browser();
  const done = await authorize(browser, authRequest(client), { email, signIn: { trust: 'yes' } });
  if (done.kind !== 'redirect') throw new Error('the first sign-in did not return to the app');
  const url = testEnv().url;
  const trust = (await browser.jar.getCookies(url)).filter((c) => c.key.startsWith('idp_trust'));
  if (!trust.length) throw new Error('no trust cookie');
  return {
    email,
    userId: user.id,
    signInOptions: {},
    async trustedBrowser() {
      const fresh = new Browser();
      for (const cookie of trust) await fresh.jar.setCookie(Cookie.parse(cookie.toString())!, url);
      return fresh;
    },
  };
}

/** Turns on an authenticator app for the user; returns a code source that never repeats a time step. */
export async function enrolTotp(userId: string): Promise<() => string> {
  const { db, secrets } = testEnv().server.app.services;
  const secret = await startTotpSetup(db, secrets, userId);
  await activateTotp(db, secrets, userId, totp(secret, -1), 'Tester phone');
  let offset = -1;
  return () => {
    offset += 1;
    if (offset > 1) throw new Error('out of TOTP steps in this time window');
    return totp(secret, offset);
  };
}

// ---------------------------------------------------------------------------------------------------
// Clients

export interface SuiteClient {
  clientId: string;
  secret?: string | undefined;
  auth: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';
  key?: { privateKey: oidc.CryptoKey; kid: string } | undefined;
  redirectUri: string;
  config: oidc.Configuration;
  /** The metadata the registration returned (dynamic clients). */
  registered?: Record<string, unknown>;
}

export async function discoveryDocument(): Promise<Record<string, unknown>> {
  const response = await fetch(`${testEnv().url}/.well-known/openid-configuration`);
  return (await response.json()) as Record<string, unknown>;
}

function configFor(metadata: oidc.ServerMetadata, client: Omit<SuiteClient, 'config'>, aud: 'token_endpoint' | 'issuer' = 'token_endpoint'): oidc.Configuration {
  let clientAuth: oidc.ClientAuth;
  if (client.auth === 'private_key_jwt') {
    // The suite's client assertion names the token endpoint as its audience (the iss-aud module the issuer).
    clientAuth = oidc.PrivateKeyJwt(
      { key: client.key!.privateKey, kid: client.key!.kid },
      { [oidc.modifyAssertion]: (_header, payload) => void (payload.aud = aud === 'issuer' ? metadata.issuer : metadata.token_endpoint) },
    );
  } else {
    clientAuth = client.auth === 'client_secret_post' ? oidc.ClientSecretPost(client.secret!) : oidc.ClientSecretBasic(client.secret!);
  }
  const config = new oidc.Configuration(metadata, client.clientId, client.secret, clientAuth);
  oidc.allowInsecureRequests(config);
  return config;
}

/** A client registered by an operator (the suite's static client): third-party, so the consent page shows. */
export async function staticClient(auth: 'client_secret_basic' | 'client_secret_post' = 'client_secret_basic'): Promise<SuiteClient> {
  const created = await makeClient({ name: 'Conformance suite', firstParty: false, authMethod: auth, grants: ['refresh_token'] });
  const metadata = (await discoveryDocument()) as unknown as oidc.ServerMetadata;
  const client = { clientId: created.client_id, secret: created.client_secret, auth, redirectUri: REDIRECT_URI };
  return { ...client, config: configFor(metadata, client) };
}

/** The same registered client authenticating another way (oidc-provider takes a secret in either form). */
export async function withClientAuth(client: SuiteClient, auth: 'client_secret_basic' | 'client_secret_post'): Promise<SuiteClient> {
  const metadata = (await discoveryDocument()) as unknown as oidc.ServerMetadata;
  const { config: _old, ...rest } = client;
  return { ...rest, auth, config: configFor(metadata, { ...rest, auth }) };
}

let initialAccessToken: string | undefined;

/** The reusable initial access token an operator would give the suite (`idp client iat create --reusable`). */
export async function suiteInitialAccessToken(): Promise<string> {
  initialAccessToken ??= (await idpOk(['client', 'iat', 'create', '--reusable', '--expires-in', '1d'])).initial_access_token as string;
  return initialAccessToken;
}

export function forgetInitialAccessToken(): void {
  initialAccessToken = undefined;
}

export async function newClientKey(): Promise<{ privateKey: oidc.CryptoKey; publicJwk: JWK; kid: string }> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = `rp-${Math.random().toString(36).slice(2, 10)}`;
  return { privateKey, kid, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

/** POST /reg as the suite does (OIDCCCreateDynamicClientRegistrationRequest); returns the raw response. */
export async function register(metadata: Record<string, unknown>, token?: string): Promise<Response> {
  return fetch(`${testEnv().url}/reg`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(metadata),
  });
}

export interface DynamicOptions {
  /** Extra or replaced registration metadata. */
  metadata?: Record<string, unknown>;
  /** Publish the keys at this jwks_uri instead of registering them by value. */
  jwksUri?: string;
  key?: Awaited<ReturnType<typeof newClientKey>>;
  aud?: 'token_endpoint' | 'issuer';
}

/** A client registered through dynamic registration with the suite's metadata: private_key_jwt with RS256 keys. */
export async function dynamicClient(options: DynamicOptions = {}): Promise<SuiteClient> {
  const key = options.key ?? (await newClientKey());
  const request = {
    client_name: 'oidcc-dynamic conformance client',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'private_key_jwt',
    ...(options.jwksUri ? { jwks_uri: options.jwksUri } : { jwks: { keys: [key.publicJwk] } }),
    contacts: ['certification@example.com'],
    ...options.metadata,
  };
  const response = await register(request, await suiteInitialAccessToken());
  const body = (await response.json()) as Record<string, unknown>;
  if (response.status !== 201) throw new Error(`registration failed (${response.status}): ${JSON.stringify(body)}`);
  const metadata = (await discoveryDocument()) as unknown as oidc.ServerMetadata;
  const client = {
    clientId: body.client_id as string,
    auth: 'private_key_jwt' as const,
    key: { privateKey: key.privateKey, kid: key.kid },
    redirectUri: (request.redirect_uris as string[])[0]!,
    registered: body,
  };
  return { ...client, config: configFor(metadata, client, options.aud) };
}

// ---------------------------------------------------------------------------------------------------
// Authorization requests and responses

export interface AuthRequest {
  params: URLSearchParams;
  state?: string | undefined;
  nonce?: string | undefined;
  verifier?: string | undefined;
}

/**
 * The suite's authorization request (CreateAuthorizationRequestSteps): client_id, redirect_uri,
 * response_type=code, scope=openid, a random state and nonce; `undefined` removes a parameter.
 */
export function authRequest(client: SuiteClient, overrides: Record<string, string | undefined> = {}, mode: 'query' | 'form_post' = 'query'): AuthRequest {
  const params = new URLSearchParams({
    client_id: client.clientId,
    redirect_uri: client.redirectUri,
    response_type: 'code',
    scope: 'openid',
    state: oidc.randomState(),
    nonce: oidc.randomNonce(),
    ...(mode === 'form_post' ? { response_mode: 'form_post' } : {}),
  });
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) params.delete(name);
    else params.set(name, value);
  }
  return { params, state: params.get('state') ?? undefined, nonce: params.get('nonce') ?? undefined };
}

/** Adds PKCE (S256) to a request, as oidcc-ensure-request-with-valid-pkce-succeeds does. */
export async function withPkce(request: AuthRequest): Promise<AuthRequest> {
  const verifier = oidc.randomPKCECodeVerifier();
  request.params.set('code_challenge', await oidc.calculatePKCECodeChallenge(verifier));
  request.params.set('code_challenge_method', 'S256');
  return { ...request, verifier };
}

export function authUrl(request: AuthRequest | URLSearchParams): string {
  const params = request instanceof URLSearchParams ? request : request.params;
  return `${testEnv().url}/auth?${params.toString()}`;
}

export type AuthResponse =
  | { kind: 'redirect'; url: string; params: URLSearchParams; via: 'query' | 'fragment' }
  | { kind: 'form_post'; action: string; params: URLSearchParams; status: number }
  | { kind: 'page'; page: Page };

function decodeHtml(value: string): string {
  return value.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

function hiddenForm(page: Page): { action: string; params: URLSearchParams } | undefined {
  if (!page.html.includes('<title>Submitting Callback</title>')) return undefined;
  const form = /<form method="post" action="([^"]*)">([\s\S]*?)<\/form>/.exec(page.html);
  if (!form) return undefined;
  const params = new URLSearchParams();
  for (const input of form[2]!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/>/g)) params.append(input[1]!, decodeHtml(input[2]!));
  return { action: decodeHtml(form[1]!), params };
}

/**
 * Submits the provider's self-submitting forms to itself, as a browser runs their script: when an
 * interaction ends with another account than the session's, oidc-provider first ends the old session.
 */
export async function followProviderForms(browser: Browser, page: Page): Promise<Page> {
  const { url } = testEnv();
  for (let i = 0; i < 3; i += 1) {
    const form = hiddenForm(page);
    if (!form || !form.action.startsWith(`${url}/`)) return page;
    page = await browser.go(form.action, { method: 'POST', body: form.params, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, url);
  }
  return page;
}

/** What came back to the app: a redirect (query or fragment), a form_post page, or a page of the provider. */
export function authResponse(page: Page, redirectPrefix = REDIRECT_URI.slice(0, REDIRECT_URI.lastIndexOf('/'))): AuthResponse {
  if (page.status >= 300 && page.status < 400 && page.url.startsWith(redirectPrefix)) {
    const url = new URL(page.url);
    if (url.hash.length > 1) return { kind: 'redirect', url: page.url, params: new URLSearchParams(url.hash.slice(1)), via: 'fragment' };
    return { kind: 'redirect', url: page.url, params: url.searchParams, via: 'query' };
  }
  const form = hiddenForm(page);
  if (form && !form.action.startsWith(`${testEnv().url}/`)) return { kind: 'form_post', action: form.action, params: form.params, status: page.status };
  return { kind: 'page', page };
}

export function isSignInPage(page: Page): boolean {
  return page.status === 200 && /action="\/interaction\/[^"]+\/password"/.test(page.html);
}

export interface AuthorizeOptions {
  /** Whose mailbox gets the email code. */
  email?: string;
  /** Sign in when the sign-in page shows (default: yes). */
  signIn?: SignInOptions | false;
  /** Send the request by POST (oidcc-ensure-post-request-succeeds). */
  post?: boolean;
  /** Where the browser returns (default: the test redirect URI's origin and path prefix). */
  redirectPrefix?: string;
}

/** Opens the authorization request in the browser, signs in and allows the consent page when they show. */
export async function authorize(browser: Browser, request: AuthRequest | URLSearchParams, options: AuthorizeOptions = {}): Promise<AuthResponse> {
  const { url } = testEnv();
  const params = request instanceof URLSearchParams ? request : request.params;
  let page = options.post
    ? await browser.go(`${url}/auth`, { method: 'POST', body: params, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, url)
    : await browser.go(authUrl(params), {}, url);
  if (isSignInPage(page) && options.signIn !== false) {
    page = await completeSignIn(browser, page, options.email ?? tester().email, PASSWORD, options.signIn ?? {});
  }
  page = await followProviderForms(browser, page);
  if (isConsentPage(page)) page = await answerConsent(browser, page, 'allow');
  return authResponse(page, options.redirectPrefix);
}

let currentTester: Tester | undefined;
export function useTester(t: Tester | undefined): void {
  currentTester = t;
}
function tester(): Tester {
  if (!currentTester) throw new Error('no tester');
  return currentTester;
}

/** The callback as openid-client receives it: the URL for query/fragment, a POST request for form_post. */
export function callbackInput(response: AuthResponse, client: SuiteClient): URL | Request {
  if (response.kind === 'redirect') return new URL(response.url);
  if (response.kind === 'form_post') {
    return new Request(client.redirectUri, { method: 'POST', body: response.params, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  }
  throw new Error(`no authorization response: status ${response.page.status} ${response.page.html.slice(0, 300)}`);
}

/** The code exchange with openid-client, which checks state, iss, the ID token signature, iss, aud, exp, iat and nonce. */
export async function exchange(client: SuiteClient, response: AuthResponse, request: AuthRequest, checks: { maxAge?: number } = {}) {
  return oidc.authorizationCodeGrant(client.config, callbackInput(response, client), {
    expectedState: request.state ?? oidc.skipStateCheck,
    expectedNonce: request.nonce,
    pkceCodeVerifier: request.verifier,
    idTokenExpected: true,
    ...(checks.maxAge === undefined ? {} : { maxAge: checks.maxAge }),
  });
}

/** Verifies an ID token against the published JWKS as the suite does (ValidateIdToken, ValidateIdTokenSignature*). */
export async function verifyIdToken(idToken: string, clientId: string, nonce?: string): Promise<JWTPayload> {
  const jwks = (await (await fetch(`${testEnv().url}/jwks`)).json()) as { keys: JWK[] };
  const header = JSON.parse(Buffer.from(idToken.split('.')[0]!, 'base64url').toString()) as { alg: string; kid?: string };
  if (header.alg === 'none') throw new Error('unsigned ID token');
  if (!header.kid || !jwks.keys.some((k) => k.kid === header.kid)) throw new Error('the ID token kid is not in the JWKS');
  const { payload } = await jwtVerify(idToken, createLocalJWKSet(jwks), { issuer: testEnv().url, audience: clientId });
  if (nonce !== undefined && payload.nonce !== nonce) throw new Error('nonce mismatch');
  if (typeof payload.sub !== 'string' || typeof payload.iat !== 'number' || typeof payload.exp !== 'number') throw new Error('missing standard claims');
  return payload;
}

/** The claims an ID token may carry without being asked (EnsureIdTokenDoesNotContainNonRequestedClaims). */
export const ID_TOKEN_STANDARD_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'acr', 'amr', 'azp', 'at_hash', 's_hash'];

/** Sends a raw token request with the client's authentication (a client assertion for the token endpoint). */
export async function tokenRequest(client: SuiteClient, body: Record<string, string>): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  const form = new URLSearchParams(body);
  const endpoint = `${testEnv().url}/token`;
  if (client.auth === 'private_key_jwt') {
    const assertion = await new SignJWT({ jti: oidc.randomState() })
      .setProtectedHeader({ alg: 'RS256', kid: client.key!.kid })
      .setIssuer(client.clientId)
      .setSubject(client.clientId)
      .setAudience(endpoint)
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(client.key!.privateKey);
    form.set('client_id', client.clientId);
    form.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    form.set('client_assertion', assertion);
  } else if (client.auth === 'client_secret_basic') {
    headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.secret!)}`).toString('base64')}`;
  } else if (client.auth === 'client_secret_post') {
    form.set('client_id', client.clientId);
    form.set('client_secret', client.secret!);
  }
  return fetch(endpoint, { method: 'POST', headers, body: form });
}

export function userinfo(accessToken: string, how: 'get' | 'post-header' | 'post-body' = 'get'): Promise<Response> {
  const endpoint = `${testEnv().url}/me`;
  if (how === 'get') return fetch(endpoint, { headers: { authorization: `Bearer ${accessToken}` } });
  if (how === 'post-header') return fetch(endpoint, { method: 'POST', headers: { authorization: `Bearer ${accessToken}` } });
  return fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ access_token: accessToken }) });
}

/** Waits until the clock is in a new second, so two sign-ins cannot share an auth_time. */
export async function nextSecond(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 20));
}

/** Moves the browser's session login back, as if `seconds` had passed since the sign-in. */
export async function sessionAges(seconds: number): Promise<void> {
  await testEnv().db.raw(
    "UPDATE oidc_payloads SET payload = jsonb_set(payload, '{loginTs}', to_jsonb((payload->>'loginTs')::bigint - ?)) WHERE model = 'Session' AND payload->>'loginTs' IS NOT NULL",
    [seconds],
  );
}

// ---------------------------------------------------------------------------------------------------
// The relying party's own web server (jwks_uri, request_uri), like the suite's per-test URLs

export interface RpServer {
  url: string;
  /** What a path serves: JSON or a JWT. */
  serve(path: string, body: unknown, contentType?: string): void;
  hits(path: string): number;
  close(): Promise<void>;
}

export async function startRpServer(): Promise<RpServer> {
  const routes = new Map<string, { body: string; type: string }>();
  const counts = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const route = routes.get(path);
    if (!route) {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.setHeader('content-type', route.type);
    res.end(route.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    serve(path, body, contentType = 'application/json') {
      routes.set(path, { body: typeof body === 'string' ? body : JSON.stringify(body), type: contentType });
    },
    hits: (path) => counts.get(path) ?? 0,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
