// One test per module of the OpenID Foundation certification plans (Config, Basic, Form Post, Dynamic OP):
// each makes the requests the suite's module makes, through the real sign-in pages, and asserts what the
// module checks (including the conditions it only warns about). The module lists and what the suite
// reports for each are in test/support/conformance.ts; docs/conformance.md is written from this run.
import { storedId } from '../src/oidc/payload-ids.js';
import { expect } from 'chai';
import { createLocalJWKSet, decodeJwt, jwtVerify, SignJWT, UnsecuredJWT, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { Browser, inputValue } from './support/browser.js';
import {
  authorize,
  authRequest,
  authResponse,
  authUrl,
  conformanceMarkdown,
  discoveryDocument,
  dynamicClient,
  enrolTotp,
  exchange,
  followProviderForms,
  forgetInitialAccessToken,
  ID_TOKEN_STANDARD_CLAIMS,
  isSignInPage,
  makeTester,
  newClientKey,
  nextSecond,
  PLANS,
  register,
  sessionAges,
  startRpServer,
  staticClient,
  suiteInitialAccessToken,
  tokenRequest,
  useTester,
  userinfo,
  verifyIdToken,
  withClientAuth,
  withPkce,
  writeConformanceDoc,
  type AuthRequest,
  type AuthResponse,
  type Plan,
  type RpServer,
  type SuiteClient,
  type Tester,
  type TestResult,
} from './support/conformance.js';
import { resetData, testEnv } from './support/env.js';
import { makeUser, PASSWORD, REDIRECT_URI } from './support/fixtures.js';
import { completeSignIn, submitPassword } from './support/rp.js';
import { idpOk } from './support/tokens.js';

type Mode = 'query' | 'form_post';
const registered: { plan: Plan; module: string; test: Mocha.Test }[] = [];

/** it() for one module of a plan: the title starts with the module's name. */
function moduleTest(plan: Plan, module: string, description: string, fn: () => Promise<void>): void {
  if (!plan.modules.some((m) => m.module === module)) throw new Error(`${module} is not a module of ${plan.name}`);
  registered.push({ plan, module, test: it(`${module}: ${description}`, fn) });
}

/** The response came back the way the plan asks for: a redirect with the query, or a form posted to the redirect_uri. */
function expectResponseMode(response: AuthResponse, mode: Mode, client: SuiteClient): URLSearchParams {
  if (mode === 'form_post') {
    expect(response.kind, 'a form_post page').to.equal('form_post');
    if (response.kind !== 'form_post') throw new Error('unreachable');
    expect(response.action).to.equal(client.redirectUri);
    return response.params;
  }
  expect(response.kind, response.kind === 'page' ? response.page.html.slice(0, 300) : '').to.equal('redirect');
  if (response.kind !== 'redirect') throw new Error('unreachable');
  expect(response.via).to.equal('query');
  return response.params;
}

/** An error response to the client (OIDCC 3.1.2.6) with only the parameters the suite expects. */
function expectErrorResponse(response: AuthResponse, mode: Mode, client: SuiteClient, request: AuthRequest): URLSearchParams {
  const params = expectResponseMode(response, mode, client);
  expect(params.get('error')).to.be.a('string');
  expect(params.get('state')).to.equal(request.state ?? null);
  expect(params.get('iss')).to.equal(testEnv().url);
  expect(params.has('code')).to.equal(false);
  expect([...params.keys()].filter((k) => !['error', 'error_description', 'error_uri', 'state', 'session_state', 'iss'].includes(k))).to.deep.equal([]);
  expect(params.get('error_description') ?? '').not.to.match(/[\r\n\t]/);
  return params;
}

/** An error page of the provider, never a redirect (RFC 6749 3.1.2.4). */
async function expectErrorPage(url: string, text: RegExp): Promise<void> {
  const response = await new Browser().request(url);
  expect(response.status).to.equal(400);
  expect(response.headers.get('location')).to.equal(null);
  expect(await response.text()).to.match(text);
}

describe('OpenID Foundation certification plans', function () {
  this.timeout(30_000);
  let tester: Tester;
  let basic: SuiteClient;
  let secretPost: SuiteClient;
  let client2: SuiteClient;
  let rp: RpServer;

  before(async function () {
    this.timeout(60_000);
    await resetData();
    forgetInitialAccessToken();
    basic = await staticClient('client_secret_basic');
    // The suite's static client: one registration for the whole plan, client_secret_post included.
    secretPost = await withClientAuth(basic, 'client_secret_post');
    client2 = await staticClient('client_secret_basic');
    tester = await makeTester('tester@example.com', basic);
    useTester(tester);
    rp = await startRpServer();
  });

  beforeEach(async () => {
    // Many sign-ins of one user: the limits on codes and passwords are tested elsewhere.
    await testEnv().db('rate_limits').delete();
  });

  after(async () => {
    useTester(undefined);
    await rp?.close();
    const results: TestResult[] = registered.map(({ plan, module, test }) => ({
      plan: plan.name,
      module,
      title: test.title,
      state: test.state === 'passed' ? 'passed' : test.state === 'failed' ? 'failed' : 'not run',
    }));
    // A filtered run (--grep) leaves the table of the last full run alone.
    if (results.some((r) => r.state === 'not run')) return;
    writeConformanceDoc(conformanceMarkdown(Object.values(PLANS), results));
  });

  /** The happy flow every module starts with: authorize (signed in), exchange, the ID token checks. */
  async function flow(client: SuiteClient, mode: Mode, overrides: Record<string, string | undefined> = {}, options: { browser?: Browser; post?: boolean; request?: AuthRequest } = {}) {
    const browser = options.browser ?? (await tester.trustedBrowser());
    const request = options.request ?? authRequest(client, overrides, mode);
    const response = await authorize(browser, request, { post: options.post });
    const params = expectResponseMode(response, mode, client);
    expect(params.get('error'), params.get('error_description') ?? '').to.equal(null);
    expect(params.get('state')).to.equal(request.state ?? null);
    expect(params.get('iss')).to.equal(testEnv().url);
    const tokens = await exchange(client, response, request);
    const claims = await verifyIdToken(tokens.id_token!, client.clientId, request.nonce);
    return { browser, request, response, params, tokens, claims };
  }

  async function userinfoJson(accessToken: string, how: 'get' | 'post-header' | 'post-body' = 'get'): Promise<Record<string, unknown>> {
    const response = await userinfo(accessToken, how);
    expect(response.status).to.equal(200);
    expect(response.headers.get('content-type')).to.match(/^application\/json/);
    return (await response.json()) as Record<string, unknown>;
  }

  function unsignedRequestObject(request: AuthRequest, extra: Record<string, unknown> = {}): string {
    return new UnsecuredJWT({ ...Object.fromEntries(request.params), ...extra }).encode();
  }

  async function expectRefreshTokenFlow(client: SuiteClient, mode: Mode, browser?: Browser) {
    const { tokens, claims } = await flow(client, mode, { scope: 'openid offline_access', prompt: 'consent' }, { browser });
    const refreshToken = tokens.refresh_token!;
    expect(refreshToken, 'a refresh token for offline_access').to.match(/^[\x20-\x7e]+$/);
    const refreshed = await oidc.refreshTokenGrant(client.config, refreshToken);
    const second = await verifyIdToken(refreshed.id_token!, client.clientId);
    // RefreshTokenRequestSteps: the new ID token is about the same sign-in.
    expect(second).to.include({ sub: claims.sub, iss: claims.iss, auth_time: claims.auth_time });
    const info = await userinfoJson(refreshed.access_token);
    expect(info.sub).to.equal(claims.sub);
    return { refreshToken: refreshed.refresh_token ?? refreshToken };
  }

  // -------------------------------------------------------------------------------------------------
  describe(PLANS.config.name, () => {
    moduleTest(PLANS.config, 'oidcc-discovery-endpoint-verification', 'the discovery document has the values Discovery 1.0 and the suite require', async () => {
      const response = await fetch(`${testEnv().url}/.well-known/openid-configuration`);
      expect(response.status).to.equal(200);
      expect(response.headers.get('content-type')).to.match(/^application\/json/);
      const d = (await response.json()) as Record<string, unknown>;
      const { url } = testEnv();
      expect(d.issuer).to.equal(url);
      for (const endpoint of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'registration_endpoint']) {
        // https in a deployment (ISSUER is https there, CheckDiscEndpointAllEndpointsAreHttps): here the issuer's scheme.
        expect(d[endpoint], endpoint).to.be.a('string').and.satisfy((u: string) => u.startsWith(`${url}/`));
      }
      expect(d.response_types_supported).to.include('code');
      expect(d.subject_types_supported).to.deep.equal(['public']);
      expect(d.id_token_signing_alg_values_supported).to.include('RS256').and.not.include('none');
      expect(d.userinfo_signing_alg_values_supported).to.include('RS256').and.not.include('none');
      expect(d.scopes_supported).to.include('openid');
      for (const scope of d.scopes_supported as string[]) expect(scope).to.match(/^[\x21\x23-\x5b\x5d-\x7e]+$/);
      expect(d.claims_parameter_supported).to.equal(true);
      expect(d.claims_supported).to.include.members(['sub', 'email', 'email_verified', 'name', 'locale', 'updated_at']);
      expect(d.grant_types_supported).to.include.members(['authorization_code', 'refresh_token']);
      expect(d.token_endpoint_auth_methods_supported).to.include.members(['client_secret_basic', 'client_secret_post', 'private_key_jwt']);
      expect(d.request_parameter_supported).to.equal(true);
      expect(d.request_uri_parameter_supported).to.equal(true);
      expect(d.require_request_uri_registration).to.equal(true);
      expect(d.request_object_signing_alg_values_supported).to.include.members(['RS256', 'none']);
      expect(d.code_challenge_methods_supported).to.deep.equal(['S256']);
      expect(d.ui_locales_supported).to.deep.equal(['en', 'de']);
      expect(d.authorization_response_iss_parameter_supported).to.equal(true);
      expect(d.response_modes_supported).to.include.members(['query', 'form_post']);

      const jwksResponse = await fetch(d.jwks_uri as string);
      expect(jwksResponse.status).to.equal(200);
      const jwks = (await jwksResponse.json()) as { keys: JWK[] };
      const kids = jwks.keys.map((k) => k.kid);
      expect(kids.every(Boolean), 'every key has a kid').to.equal(true);
      expect(new Set(kids).size, 'distinct kids').to.equal(kids.length);
      for (const key of jwks.keys) {
        expect(key, 'public parts only').not.to.have.any.keys('d', 'p', 'q', 'dp', 'dq', 'qi', 'k');
        expect(key.use ?? 'sig').to.equal('sig');
      }
    });
  });

  // -------------------------------------------------------------------------------------------------
  for (const [plan, mode] of [
    [PLANS.basic, 'query'],
    [PLANS.formPost, 'form_post'],
  ] as const) {
    describe(plan.name, () => {
      moduleTest(plan, 'oidcc-server', 'password, email code and trust question; code, ID token and userinfo as the suite checks them', async () => {
        const browser = new Browser(); // a browser not yet trusted: the email code is asked
        const { params, tokens, claims } = await flow(basic, mode, {}, { browser });
        const code = params.get('code')!;
        expect(code.length, 'EnsureMinimumAuthorizationCodeLength').to.be.at.least(22);
        expect(code).to.match(/^[A-Za-z0-9_-]+$/);
        expect(tokens.token_type.toLowerCase()).to.equal('bearer');
        expect(tokens.expires_in).to.be.a('number').and.above(0);
        expect(claims).to.include({ sub: tester.userId, acr: 'urn:telephony-idp:acr:2fa' });
        expect(claims.amr).to.deep.equal(['pwd', 'mca', 'mfa']);
        expect(claims.auth_time).to.be.a('number');
        expect(Object.keys(claims).filter((c) => !ID_TOKEN_STANDARD_CLAIMS.includes(c)), 'no claims that were not requested').to.deep.equal([]);
        expect(claims).not.to.have.property('name');
        expect((await userinfoJson(tokens.access_token)).sub).to.equal(claims.sub);
      });

      moduleTest(plan, 'oidcc-response-type-missing', 'no response_type: an error to the client (invalid_request), no code', async () => {
        const request = authRequest(basic, { response_type: undefined }, mode);
        const response = await authorize(await tester.trustedBrowser(), request, { signIn: false });
        // The suite also accepts an error page (with a screenshot); the error goes to the client here.
        const params = expectErrorResponse(response, mode, basic, request);
        expect(params.get('error')).to.equal('invalid_request');
        expect(params.get('error_description')).to.include('response_type');
      });

      moduleTest(plan, 'oidcc-idtoken-signature', 'the ID token is signed (RS256) with a key of the JWKS named by its kid', async () => {
        const { tokens } = await flow(basic, mode);
        const header = JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString()) as { alg: string; kid: string };
        expect(header.alg).to.equal('RS256');
        expect(header.kid).to.be.a('string');
      });

      moduleTest(plan, 'oidcc-idtoken-unsigned', 'unsigned ID tokens are neither advertised nor registrable', async () => {
        expect((await discoveryDocument()).id_token_signing_alg_values_supported).not.to.include('none');
        const key = await newClientKey();
        const refused = await register(
          { redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [key.publicJwk] }, id_token_signed_response_alg: 'none' },
          await suiteInitialAccessToken(),
        );
        expect(refused.status).to.equal(400);
        expect(((await refused.json()) as { error: string }).error).to.equal('invalid_client_metadata');
      });

      moduleTest(plan, 'oidcc-userinfo-get', 'userinfo by GET with the bearer token', async () => {
        const { tokens, claims } = await flow(basic, mode);
        expect((await userinfoJson(tokens.access_token, 'get')).sub).to.equal(claims.sub);
      });

      moduleTest(plan, 'oidcc-userinfo-post-header', 'userinfo by POST with the token in the Authorization header', async () => {
        const { tokens, claims } = await flow(basic, mode);
        expect((await userinfoJson(tokens.access_token, 'post-header')).sub).to.equal(claims.sub);
      });

      moduleTest(plan, 'oidcc-userinfo-post-body', 'userinfo by POST with the token in the form body', async () => {
        const { tokens, claims } = await flow(basic, mode);
        expect((await userinfoJson(tokens.access_token, 'post-body')).sub).to.equal(claims.sub);
      });

      moduleTest(plan, 'oidcc-ensure-request-without-nonce-succeeds-for-code-flow', 'no nonce in a code flow is fine; the ID token then has none', async () => {
        const { claims } = await flow(basic, mode, { nonce: undefined });
        expect(claims).not.to.have.property('nonce');
      });

      moduleTest(plan, 'oidcc-scope-profile', 'userinfo returns the profile claims we hold, and nothing made up for the rest', async () => {
        expect((await discoveryDocument()).scopes_supported).to.include('profile');
        const { tokens, claims } = await flow(basic, mode, { scope: 'openid profile' });
        const info = await userinfoJson(tokens.access_token);
        expect(info).to.include({ sub: claims.sub });
        // The tester never chose a language on the profile page: we do not know it, so no locale claim.
        expect(info).not.to.have.property('locale');
        expect(info.name).to.be.a('string');
        expect(info.updated_at).to.be.a('number');
        // The suite's WARNING (VerifyScopesReturnedInUserInfoClaims): these we do not have, so they are absent, not null.
        expect(info).not.to.have.any.keys('given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username', 'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo');
      });

      moduleTest(plan, 'oidcc-scope-email', 'userinfo returns email and email_verified', async () => {
        const { tokens } = await flow(basic, mode, { scope: 'openid email' });
        expect(await userinfoJson(tokens.access_token)).to.include({ email: tester.email, email_verified: true });
      });

      moduleTest(plan, 'oidcc-scope-address', 'address is not offered (so the suite skips); asking for it is no error and returns nothing', async () => {
        expect((await discoveryDocument()).scopes_supported).not.to.include('address');
        const { tokens } = await flow(basic, mode, { scope: 'openid address' });
        expect(await userinfoJson(tokens.access_token)).to.have.all.keys('sub');
      });

      moduleTest(plan, 'oidcc-scope-phone', 'phone is not offered (so the suite skips); asking for it is no error and returns nothing', async () => {
        expect((await discoveryDocument()).scopes_supported).not.to.include('phone');
        const { tokens } = await flow(basic, mode, { scope: 'openid phone' });
        expect(await userinfoJson(tokens.access_token)).to.have.all.keys('sub');
      });

      moduleTest(plan, 'oidcc-scope-all', 'all four scopes: the profile and email claims, nothing for address and phone', async () => {
        const { tokens } = await flow(basic, mode, { scope: 'openid profile email address phone' });
        const info = await userinfoJson(tokens.access_token);
        expect(info).to.include.keys('name', 'email', 'email_verified');
        expect(info).not.to.have.any.keys('address', 'phone_number', 'phone_number_verified');
      });

      moduleTest(plan, 'oidcc-ensure-other-scope-order-succeeds', 'scope "email openid" works like "openid email"', async () => {
        const { tokens } = await flow(basic, mode, { scope: 'email openid' });
        expect(await userinfoJson(tokens.access_token)).to.include({ email: tester.email });
      });

      moduleTest(plan, 'oidcc-display-page', 'display=page shows the normal sign-in page', async () => {
        const request = authRequest(basic, { display: 'page' }, mode);
        const browser = new Browser();
        expect(isSignInPage(await browser.go(authUrl(request), {}, testEnv().url))).to.equal(true);
        await flow(basic, mode, {}, { request });
      });

      moduleTest(plan, 'oidcc-display-popup', 'display=popup is accepted', async () => {
        await flow(basic, mode, { display: 'popup' });
      });

      moduleTest(plan, 'oidcc-prompt-login', 'prompt=login asks again (here: password and authenticator app); auth_time changes', async () => {
        const email = `prompt-login-${mode}@example.com`;
        const { user } = await makeUser({ email });
        const code = await enrolTotp(user.id);
        const browser = new Browser();
        const first = authRequest(basic, {}, mode);
        const firstResponse = await authorize(browser, first, { email, signIn: { totp: code } });
        const firstClaims = decodeJwt((await exchange(basic, firstResponse, first)).id_token!);
        expect(firstClaims.amr).to.deep.equal(['pwd', 'otp', 'mfa']);
        await nextSecond();
        const second = authRequest(basic, { prompt: 'login' }, mode);
        const page = await browser.go(authUrl(second), {}, testEnv().url);
        expect(isSignInPage(page), 'the sign-in page again (the screenshot the suite asks for)').to.equal(true);
        const done = authResponse(await completeSignIn(browser, page, email, PASSWORD, { totp: code }));
        const secondClaims = await verifyIdToken((await exchange(basic, done, second)).id_token!, basic.clientId, second.nonce);
        expect(secondClaims.sub).to.equal(firstClaims.sub);
        expect(secondClaims.auth_time).to.be.above(firstClaims.auth_time as number);
      });

      moduleTest(plan, 'oidcc-prompt-none-not-logged-in', 'prompt=none without a session: login_required, the long state intact', async () => {
        // A 128-character state, to see that it comes back intact.
        const request = authRequest(basic, { prompt: 'none', state: [1, 2, 3].map(() => oidc.randomState()).join('').slice(0, 128) }, mode);
        const response = await authorize(new Browser(), request, { signIn: false });
        const params = expectErrorResponse(response, mode, basic, request);
        expect(['login_required', 'interaction_required', 'consent_required', 'account_selection_required']).to.include(params.get('error'));
        expect(params.get('error')).to.equal('login_required');
      });

      moduleTest(plan, 'oidcc-prompt-none-logged-in', 'prompt=none with a session returns at once: same sub and auth_time', async () => {
        const first = await flow(basic, mode);
        const { claims } = await flow(basic, mode, { prompt: 'none' }, { browser: first.browser });
        expect(claims).to.include({ sub: first.claims.sub, auth_time: first.claims.auth_time });
      });

      moduleTest(plan, 'oidcc-max-age-1', 'max_age=1 after two seconds: the sign-in page again and a later auth_time', async () => {
        const first = await flow(basic, mode);
        await sessionAges(2); // the suite waits two seconds
        await nextSecond();
        const second = authRequest(basic, { max_age: '1' }, mode);
        const page = await first.browser.go(authUrl(second), {}, testEnv().url);
        expect(isSignInPage(page), 'the sign-in page again (the screenshot the suite asks for)').to.equal(true);
        const done = authResponse(await completeSignIn(first.browser, page, tester.email, PASSWORD));
        const claims = await verifyIdToken((await exchange(basic, done, second)).id_token!, basic.clientId, second.nonce);
        expect(claims.auth_time, 'CheckIdTokenAuthTimeClaimPresentDueToMaxAge').to.be.a('number');
        expect(claims.auth_time).to.be.above(first.claims.auth_time as number);
        expect(Math.abs(Date.now() / 1000 - (claims.auth_time as number))).to.be.below(60);
      });

      moduleTest(plan, 'oidcc-max-age-10000', 'max_age=10000 with a recent sign-in returns at once with auth_time', async () => {
        const first = await flow(basic, mode);
        const { claims } = await flow(basic, mode, { max_age: '10000' }, { browser: first.browser });
        expect(claims.auth_time).to.equal(first.claims.auth_time);
        expect(claims.sub).to.equal(first.claims.sub);
      });

      moduleTest(plan, 'oidcc-ensure-request-with-unknown-parameter-succeeds', 'an unknown parameter is ignored', async () => {
        await flow(basic, mode, { extra: 'foobar', another_unknown: 'x' });
      });

      moduleTest(plan, 'oidcc-id-token-hint', 'prompt=none with the first ID token as id_token_hint returns at once; another account is not signed in', async () => {
        const first = await flow(basic, mode);
        const { claims } = await flow(basic, mode, { prompt: 'none', id_token_hint: first.tokens.id_token! }, { browser: first.browser });
        expect(claims).to.include({ sub: first.claims.sub, auth_time: first.claims.auth_time });

        // Not in the suite: a hint naming another account never ends in a sign-in as this one.
        const other = (await makeUser({ email: `other-${mode}@example.com` })).user;
        const otherRequest = authRequest(basic, {}, mode);
        const otherResponse = await authorize(new Browser(), otherRequest, { email: other.email });
        const otherIdToken = (await exchange(basic, otherResponse, otherRequest)).id_token!;
        const silent = authRequest(basic, { prompt: 'none', id_token_hint: otherIdToken }, mode);
        expect(expectErrorResponse(await authorize(first.browser, silent, { signIn: false }), mode, basic, silent).get('error')).to.equal('login_required');
        const hinted = authRequest(basic, { id_token_hint: otherIdToken }, mode);
        const page = await first.browser.go(authUrl(hinted), {}, testEnv().url);
        expect(isSignInPage(page)).to.equal(true);
        const wrongAccount = await submitPassword(first.browser, page, tester.email, PASSWORD);
        expect(wrongAccount.status).to.equal(403);
        expect(wrongAccount.html).to.include('This app asked you to sign in with a different account.');
        // The session changes hands: oidc-provider ends the tester's session first (a self-submitting form).
        const done = authResponse(await followProviderForms(first.browser, await completeSignIn(first.browser, wrongAccount, other.email, PASSWORD)));
        expect((await verifyIdToken((await exchange(basic, done, hinted)).id_token!, basic.clientId, hinted.nonce)).sub).to.equal(other.id);
      });

      moduleTest(plan, 'oidcc-login-hint', 'login_hint fills in the identifier on the sign-in page', async () => {
        const request = authRequest(basic, { login_hint: tester.email }, mode);
        const page = await new Browser().go(authUrl(request), {}, testEnv().url);
        expect(inputValue(page.html, 'identifier')).to.equal(tester.email);
        await flow(basic, mode, {}, { request });
      });

      moduleTest(plan, 'oidcc-ui-locales', 'ui_locales picks the page language; an unsupported one falls back to English', async () => {
        const german = await new Browser().go(authUrl(authRequest(basic, { ui_locales: 'de-DE en' }, mode)), {}, testEnv().url);
        expect(german.html).to.include('<html lang="de">').and.include('E-Mail-Adresse oder Kundennummer');
        const swedish = authRequest(basic, { ui_locales: 'se' }, mode);
        expect((await new Browser().go(authUrl(swedish), {}, testEnv().url)).html).to.include('<html lang="en">');
        await flow(basic, mode, {}, { request: swedish });
      });

      moduleTest(plan, 'oidcc-claims-locales', 'claims_locales is accepted (our claims have no localised values)', async () => {
        const { tokens } = await flow(basic, mode, { claims_locales: 'se de', scope: 'openid profile' });
        expect((await userinfoJson(tokens.access_token)).name).to.be.a('string');
      });

      moduleTest(plan, 'oidcc-ensure-request-with-acr-values-succeeds', 'acr_values with the advertised values: the acr returned is one of them', async () => {
        const acrs = (await discoveryDocument()).acr_values_supported as string[];
        expect(acrs).to.deep.equal(['urn:telephony-idp:acr:1fa', 'urn:telephony-idp:acr:2fa']);
        // Asking for two factors sends the email code even to a trusted browser.
        const { claims } = await flow(basic, mode, { acr_values: acrs.join(' ') });
        expect(acrs).to.include(claims.acr);
        expect(claims.acr).to.equal('urn:telephony-idp:acr:2fa');
        // Not in this module: two factors asked as an essential acr claim get the same second step.
        const essential = JSON.stringify({ id_token: { acr: { essential: true, values: ['urn:telephony-idp:acr:2fa'] } } });
        const strict = await flow(basic, mode, { claims: essential });
        expect(strict.claims).to.include({ acr: 'urn:telephony-idp:acr:2fa' });
        expect(strict.claims.amr).to.include('mca');
      });

      for (const [module, what] of [
        ['oidcc-codereuse', 'a code used twice gives invalid_grant and revokes the tokens issued from it'],
        ['oidcc-codereuse-30seconds', 'a code lives long enough to be reused 30 s later; then invalid_grant and the access token is revoked'],
      ] as const) {
        moduleTest(plan, module, what, async () => {
          const { params, tokens } = await flow(basic, mode);
          const code = params.get('code')!;
          if (module === 'oidcc-codereuse-30seconds') {
            const row = await testEnv().db('oidc_payloads').where({ model: 'AuthorizationCode', id: storedId(testEnv().server.app.services.secrets, 'AuthorizationCode', code) }).first();
            expect(row.payload.exp - row.payload.iat, 'still there (consumed) after the suite waits 30 s').to.be.at.least(45);
            expect(row.consumed_at).to.be.instanceOf(Date);
          }
          const reuse = await tokenRequest(basic, { grant_type: 'authorization_code', code, redirect_uri: basic.redirectUri });
          expect(reuse.status).to.equal(400);
          expect(reuse.headers.get('content-type')).to.match(/^application\/json/);
          const body = (await reuse.json()) as { error: string; error_description?: string };
          expect(body.error).to.equal('invalid_grant');
          expect(body.error_description ?? '').not.to.match(/[\r\n\t]/);
          const revoked = await userinfo(tokens.access_token);
          expect(revoked.status, 'the access token from the first use is revoked').to.equal(401);
          expect(revoked.headers.get('www-authenticate')).to.match(/invalid_token/);
        });
      }

      moduleTest(plan, 'oidcc-ensure-registered-redirect-uri', 'an unregistered redirect_uri gets an error page, never a redirect', async () => {
        const request = authRequest(basic, { redirect_uri: 'https://attacker.example/cb' }, mode);
        await expectErrorPage(authUrl(request), /redirect_uri/);
      });

      moduleTest(plan, 'oidcc-ensure-post-request-succeeds', 'the authorization request by POST (form) works, with the session', async () => {
        const request = authRequest(basic, {}, mode);
        const browser = await tester.trustedBrowser();
        const raw = await browser.request(`${testEnv().url}/auth`, { method: 'POST', body: request.params, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
        expect(raw.status).to.equal(303);
        expect(raw.headers.get('location')).to.equal(`/auth?${request.params.toString()}`);
        const first = await flow(basic, mode, {}, { browser, request: authRequest(basic, {}, mode), post: true });
        // The session is there for a POST too (prompt=none by POST).
        await flow(basic, mode, { prompt: 'none' }, { browser: first.browser, post: true });
      });

      moduleTest(plan, 'oidcc-server-client-secret-post', 'the code exchange with client_secret_post (the same client as the other modules)', async () => {
        expect((await discoveryDocument()).token_endpoint_auth_methods_supported).to.include('client_secret_post');
        const { claims } = await flow(secretPost, mode);
        expect(claims.aud).to.equal(secretPost.clientId);
        const wrong = await tokenRequest({ ...secretPost, secret: 'not the secret' }, { grant_type: 'authorization_code', code: 'x', redirect_uri: REDIRECT_URI });
        expect(((await wrong.json()) as { error: string }).error).to.equal('invalid_client');
      });

      moduleTest(plan, 'oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported', 'an unsigned request object by reference is used (dynamic client with request_uris)', async () => {
        const path = `/request/${mode}-basic.jwt`;
        const client = await dynamicClient({ metadata: { request_uris: [`${rp.url}${path}`] } });
        const request = authRequest(client, {}, mode);
        rp.serve(path, unsignedRequestObject(request), 'application/oauth-authz-req+jwt');
        const query = new URLSearchParams({ client_id: client.clientId, response_type: 'code', scope: 'openid', request_uri: `${rp.url}${path}` });
        const response = await authorize(await tester.trustedBrowser(), query);
        expectResponseMode(response, mode, client);
        await exchange(client, response, request);
        expect(rp.hits(path)).to.equal(1);
      });

      moduleTest(plan, 'oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported', 'an unsigned request object by value is used', async () => {
        const request = authRequest(basic, {}, mode);
        const query = new URLSearchParams({ client_id: basic.clientId, response_type: 'code', scope: 'openid', request: unsignedRequestObject(request) });
        const response = await authorize(await tester.trustedBrowser(), query);
        expect(expectResponseMode(response, mode, basic).get('state')).to.equal(request.state);
        await exchange(basic, response, request);
      });

      moduleTest(plan, 'oidcc-claims-essential', 'name asked as an essential userinfo claim: in userinfo, not in the ID token', async () => {
        const claimsRequest = JSON.stringify({ userinfo: { name: { essential: true } } });
        const { tokens, claims } = await flow(basic, mode, { claims: claimsRequest });
        expect((await userinfoJson(tokens.access_token)).name).to.be.a('string');
        expect(claims).not.to.have.property('name');
      });

      moduleTest(plan, 'oidcc-ensure-request-object-with-redirect-uri', "the request object's redirect_uri wins over an invalid one in the query", async () => {
        const request = authRequest(basic, {}, mode);
        const query = new URLSearchParams({
          client_id: basic.clientId,
          response_type: 'code',
          scope: 'openid',
          redirect_uri: 'https://invalid.example/cb',
          request: unsignedRequestObject(request),
        });
        const response = await authorize(await tester.trustedBrowser(), query);
        expectResponseMode(response, mode, basic);
        await exchange(basic, response, request);
      });

      moduleTest(plan, 'oidcc-refresh-token', 'refresh tokens work and are bound to their client (invalid_grant for another)', async () => {
        await expectRefreshTokenFlow(basic, mode);
        const { refreshToken } = await expectRefreshTokenFlow(client2, mode);
        const stolen = await tokenRequest(basic, { grant_type: 'refresh_token', refresh_token: refreshToken });
        expect(stolen.status).to.equal(400);
        expect(((await stolen.json()) as { error: string }).error).to.equal('invalid_grant');
        // The rightful client can still use it.
        expect((await oidc.refreshTokenGrant(client2.config, refreshToken)).access_token).to.be.a('string');
      });

      moduleTest(plan, 'oidcc-ensure-request-with-valid-pkce-succeeds', 'PKCE S256 with a confidential client', async () => {
        const request = await withPkce(authRequest(basic, {}, mode));
        await flow(basic, mode, {}, { request });
      });
    });
  }

  // -------------------------------------------------------------------------------------------------
  describe(PLANS.dynamic.name, () => {
    const plan = PLANS.dynamic;
    const mode: Mode = 'query';

    moduleTest(plan, 'oidcc-idtoken-rs256', 'a client registered for RS256 ID tokens gets them', async () => {
      const client = await dynamicClient({ metadata: { id_token_signed_response_alg: 'RS256' } });
      const { tokens } = await flow(client, mode);
      expect(JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString()).alg).to.equal('RS256');
    });

    moduleTest(plan, 'oidcc-idtoken-unsigned', 'registering for unsigned ID tokens is refused', async () => {
      const key = await newClientKey();
      const refused = await register(
        { redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [key.publicJwk] }, id_token_signed_response_alg: 'none' },
        await suiteInitialAccessToken(),
      );
      expect(refused.status).to.equal(400);
      expect((await discoveryDocument()).id_token_signing_alg_values_supported).not.to.include('none');
    });

    moduleTest(plan, 'oidcc-userinfo-rs256', 'a client registered for signed userinfo gets an RS256 JWT', async () => {
      const client = await dynamicClient({ metadata: { userinfo_signed_response_alg: 'RS256' } });
      const { tokens, claims } = await flow(client, mode);
      const response = await userinfo(tokens.access_token);
      expect(response.status).to.equal(200);
      expect(response.headers.get('content-type')).to.match(/^application\/jwt/);
      const jwks = createLocalJWKSet((await (await fetch(`${testEnv().url}/jwks`)).json()) as { keys: JWK[] });
      const { payload, protectedHeader } = await jwtVerify(await response.text(), jwks, { issuer: testEnv().url, audience: client.clientId });
      expect(protectedHeader.alg).to.equal('RS256');
      expect(payload.sub).to.equal(claims.sub);
    });

    moduleTest(plan, 'oidcc-ensure-redirect-uri-in-authorization-request', 'no redirect_uri: an error page, although only one is registered', async () => {
      const client = await dynamicClient();
      await expectErrorPage(authUrl(authRequest(client, { redirect_uri: undefined })), /redirect_uri/);
    });

    const withQuery = `${REDIRECT_URI}?foo=bar`;
    moduleTest(plan, 'oidcc-redirect-uri-query-OK', 'a registered redirect_uri with a query works and keeps its query', async () => {
      const client = await dynamicClient({ metadata: { redirect_uris: [withQuery] } });
      const request = authRequest(client);
      const response = await authorize(await tester.trustedBrowser(), request);
      const params = expectResponseMode(response, mode, client);
      expect(params.get('foo')).to.equal('bar');
      expect(params.get('state')).to.equal(request.state);
      // The token request names the registered redirect_uri, query included (openid-client would drop the query).
      const token = await tokenRequest(client, { grant_type: 'authorization_code', code: params.get('code')!, redirect_uri: withQuery });
      expect(token.status).to.equal(200);
      await verifyIdToken(((await token.json()) as { id_token: string }).id_token, client.clientId, request.nonce);
    });

    moduleTest(plan, 'oidcc-redirect-uri-query-mismatch', 'a different query than registered: an error page', async () => {
      const client = await dynamicClient({ metadata: { redirect_uris: [withQuery] } });
      await expectErrorPage(authUrl(authRequest(client, { redirect_uri: `${REDIRECT_URI}?foo=zot` })), /redirect_uri/);
    });

    moduleTest(plan, 'oidcc-redirect-uri-query-added', 'a query added to the registered redirect_uri: an error page', async () => {
      const client = await dynamicClient();
      await expectErrorPage(authUrl(authRequest(client, { redirect_uri: `${REDIRECT_URI}?foo=bar` })), /redirect_uri/);
    });

    moduleTest(plan, 'oidcc-redirect-uri-regfrag', 'registering a redirect_uri with a fragment is refused', async () => {
      const key = await newClientKey();
      const refused = await register(
        { redirect_uris: [`${REDIRECT_URI}#fragment`], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [key.publicJwk] } },
        await suiteInitialAccessToken(),
      );
      expect(refused.status).to.equal(400);
      expect(refused.headers.get('content-type')).to.match(/^application\/json/);
      expect(['invalid_redirect_uri', 'invalid_client_metadata']).to.include(((await refused.json()) as { error: string }).error);
    });

    moduleTest(plan, 'oidcc-discovery-endpoint-verification', 'the Dynamic OP values: code, id_token and "id_token token"; implicit; registration (and they work)', async () => {
      const d = await discoveryDocument();
      const normalise = (t: string) => t.split(' ').sort().join(' ');
      expect((d.response_types_supported as string[]).map(normalise)).to.include.members(['code', 'id_token', 'id_token token']);
      expect(d.grant_types_supported).to.include.members(['authorization_code', 'implicit']);
      expect(d.registration_endpoint).to.equal(`${testEnv().url}/reg`);
      // The implicit response types do what they say for a client that registered them.
      // oidc-provider lets web clients use the implicit flow only with https redirect URIs.
      const implicitRedirect = 'https://rp.example.com/implicit-cb';
      const client = await dynamicClient({ metadata: { response_types: ['id_token token', 'id_token'], grant_types: ['implicit'], redirect_uris: [implicitRedirect] } });
      const request = authRequest(client, { response_type: 'id_token token' });
      const response = await authorize(await tester.trustedBrowser(), request, { redirectPrefix: implicitRedirect });
      expect(response.kind === 'redirect' && response.via).to.equal('fragment');
      const params = response.kind === 'redirect' ? response.params : new URLSearchParams();
      expect(params.get('state')).to.equal(request.state);
      const claims = await verifyIdToken(params.get('id_token')!, client.clientId, request.nonce);
      expect(claims.at_hash).to.be.a('string');
      expect((await userinfoJson(params.get('access_token')!)).sub).to.equal(claims.sub);
      // A code client cannot switch to implicit.
      const codeOnly = authRequest(basic, { response_type: 'id_token token' });
      const refused = await authorize(await tester.trustedBrowser(), codeOnly);
      expect(refused.kind === 'redirect' && refused.params.get('error')).to.be.oneOf(['unauthorized_client', 'invalid_request']);
    });

    moduleTest(plan, 'oidcc-server', 'registration with the initial access token, the code flow with private_key_jwt, unregistration', async () => {
      const client = await dynamicClient();
      const registration = client.registered!;
      expect(registration).to.include.keys('client_id', 'registration_access_token', 'registration_client_uri');
      expect(registration.token_endpoint_auth_method).to.equal('private_key_jwt');
      const { claims, tokens } = await flow(client, mode);
      expect(claims.aud).to.equal(client.clientId);
      expect((await userinfoJson(tokens.access_token)).sub).to.equal(claims.sub);
      const deleted = await fetch(registration.registration_client_uri as string, { method: 'DELETE', headers: { authorization: `Bearer ${registration.registration_access_token as string}` } });
      expect(deleted.status).to.equal(204);
      // Without the initial access token there is no registration at all.
      expect((await register({ redirect_uris: [REDIRECT_URI] })).status).to.equal(401);
    });

    for (const [module, field, check] of [
      ['oidcc-registration-logo-uri', 'logo_uri', (html: string, uri: string) => html.includes(`<img class="client-logo" src="${uri}"`)],
      ['oidcc-registration-policy-uri', 'policy_uri', (html: string, uri: string) => html.includes(`<a href="${uri}"`) && html.includes('Privacy policy of')],
      ['oidcc-registration-tos-uri', 'tos_uri', (html: string, uri: string) => html.includes(`<a href="${uri}"`) && html.includes('Terms of service of')],
    ] as const) {
      moduleTest(plan, module, `the sign-in page shows the registered ${field}`, async () => {
        const uri = `https://rp.example.com/${field}.${field === 'logo_uri' ? 'png' : 'html'}`;
        const client = await dynamicClient({ metadata: { [field]: uri, client_name: 'Suite RP' } });
        expect(client.registered![field]).to.equal(uri);
        const request = authRequest(client);
        const page = await new Browser().go(authUrl(request), {}, testEnv().url);
        expect(isSignInPage(page)).to.equal(true);
        expect(check(page.html, uri), page.html).to.equal(true);
        if (field === 'logo_uri') expect(page.headers.get('content-security-policy')).to.include("img-src 'self' data: https://rp.example.com;");
        await flow(client, mode, {}, { request });
      });
    }

    moduleTest(plan, 'oidcc-registration-jwks-uri', 'a client that publishes its keys at a jwks_uri authenticates with them', async () => {
      const key = await newClientKey();
      rp.serve('/jwks/registration', { keys: [key.publicJwk] });
      const client = await dynamicClient({ key, jwksUri: `${rp.url}/jwks/registration` });
      expect(client.registered!.jwks_uri).to.equal(`${rp.url}/jwks/registration`);
      await flow(client, mode);
      expect(rp.hits('/jwks/registration')).to.be.at.least(1);
    });

    for (const module of ['oidcc-registration-sector-uri', 'oidcc-registration-sector-bad'] as const) {
      moduleTest(plan, module, 'pairwise subjects are not offered, and a pairwise registration is refused', async () => {
        expect((await discoveryDocument()).subject_types_supported).to.deep.equal(['public']);
        const key = await newClientKey();
        const refused = await register(
          { redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [key.publicJwk] }, subject_type: 'pairwise', sector_identifier_uri: `${rp.url}/sector.json` },
          await suiteInitialAccessToken(),
        );
        expect(refused.status).to.equal(400);
        expect(((await refused.json()) as { error: string }).error).to.equal('invalid_client_metadata');
      });
    }

    moduleTest(plan, 'oidcc-server-rotate-keys', 'after `idp keys rotate --activate-in 0` the JWKS has a new signing key and still the old one', async () => {
      const before = (await (await fetch(`${testEnv().url}/jwks`)).json()) as { keys: JWK[] };
      await idpOk(['keys', 'rotate', '--activate-in', '0']);
      expect(await testEnv().server.app.providers.refresh()).to.equal(true);
      const after = (await (await fetch(`${testEnv().url}/jwks`)).json()) as { keys: JWK[] };
      const oldKids = before.keys.map((k) => k.kid);
      const newKids = after.keys.map((k) => k.kid).filter((kid) => !oldKids.includes(kid));
      expect(newKids, 'VerifyNewJwksHasNewSigningKey').to.have.length.at.least(1);
      expect(after.keys.map((k) => k.kid), 'VerifyNewJwksStillHasOldSigningKey').to.include.members(oldKids);
      const client = await dynamicClient();
      const { tokens } = await flow(client, mode);
      expect(newKids).to.include(JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString()).kid);
    });

    moduleTest(plan, 'oidcc-refresh-token-rp-key-rotation', 'after the client rotates the keys at its jwks_uri, a refresh with the new key works', async () => {
      const key = await newClientKey();
      rp.serve('/jwks/rotating', { keys: [key.publicJwk] });
      const client = await dynamicClient({ key, jwksUri: `${rp.url}/jwks/rotating`, metadata: { grant_types: ['authorization_code', 'refresh_token'] } });
      const { tokens, claims } = await flow(client, mode, { scope: 'openid offline_access', prompt: 'consent' });
      expect(tokens.refresh_token).to.be.a('string');

      const next = await newClientKey();
      rp.serve('/jwks/rotating', { keys: [next.publicJwk] });
      // The suite waits 60 s so that oidc-provider may fetch the jwks_uri again; here that minute passes at once.
      const cached = (await testEnv().server.app.provider.Client.find(client.clientId)) as unknown as { asymmetricKeyStore: { freshUntil?: number } };
      cached.asymmetricKeyStore.freshUntil = 0;
      const rotated = { ...client, key: { privateKey: next.privateKey, kid: next.kid } };
      const metadata = (await discoveryDocument()) as unknown as oidc.ServerMetadata;
      const config = new oidc.Configuration(metadata, client.clientId, undefined, oidc.PrivateKeyJwt({ key: next.privateKey, kid: next.kid }, {
        [oidc.modifyAssertion]: (_h, payload) => void (payload.aud = metadata.token_endpoint),
      }));
      oidc.allowInsecureRequests(config);
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      const second = await verifyIdToken(refreshed.id_token!, rotated.clientId);
      expect(second.sub).to.equal(claims.sub);
      expect((await userinfoJson(refreshed.access_token)).sub).to.equal(claims.sub);
    });

    moduleTest(plan, 'oidcc-request-uri-unsigned', 'an unsigned request object fetched from a registered request_uri is used', async () => {
      const path = '/request/dynamic-unsigned.jwt';
      const client = await dynamicClient({ metadata: { request_uris: [`${rp.url}${path}`] } });
      const request = authRequest(client);
      rp.serve(path, unsignedRequestObject(request), 'application/oauth-authz-req+jwt');
      const response = await authorize(await tester.trustedBrowser(), new URLSearchParams({ client_id: client.clientId, response_type: 'code', scope: 'openid', request_uri: `${rp.url}${path}` }));
      expect(expectResponseMode(response, mode, client).get('state')).to.equal(request.state);
      await exchange(client, response, request);
    });

    moduleTest(plan, 'oidcc-request-uri-signed-rs256', 'a request object signed RS256 by the client, by reference; an unregistered request_uri is refused', async () => {
      const key = await newClientKey();
      const path = '/request/dynamic-signed.jwt';
      const client = await dynamicClient({ key, metadata: { request_uris: [`${rp.url}${path}#sha256-of-content`] } });
      const request = authRequest(client);
      const jwt = await new SignJWT({ ...Object.fromEntries(request.params) })
        .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'oauth-authz-req+jwt' })
        .setIssuer(client.clientId)
        .setAudience(testEnv().url)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(key.privateKey);
      rp.serve(path, jwt, 'application/oauth-authz-req+jwt');
      const query = { client_id: client.clientId, response_type: 'code', scope: 'openid' };
      const response = await authorize(await tester.trustedBrowser(), new URLSearchParams({ ...query, request_uri: `${rp.url}${path}` }));
      expect(expectResponseMode(response, mode, client).get('state')).to.equal(request.state);
      await exchange(client, response, request);

      // Only registered request_uris are fetched.
      const hits = rp.hits('/request/elsewhere.jwt');
      const refused = await authorize(await tester.trustedBrowser(), new URLSearchParams({ ...query, redirect_uri: REDIRECT_URI, state: 's1', request_uri: `${rp.url}/request/elsewhere.jwt` }));
      expect(refused.kind === 'redirect' && refused.params.get('error')).to.equal('invalid_request_uri');
      expect(rp.hits('/request/elsewhere.jwt')).to.equal(hits);
    });

    moduleTest(plan, 'oidcc-ensure-request-object-with-redirect-uri', "the request object's redirect_uri wins over an invalid one in the query", async () => {
      const client = await dynamicClient();
      const request = authRequest(client);
      const query = new URLSearchParams({ client_id: client.clientId, response_type: 'code', scope: 'openid', redirect_uri: 'https://invalid.example/cb', request: unsignedRequestObject(request) });
      const response = await authorize(await tester.trustedBrowser(), query);
      expectResponseMode(response, mode, client);
      await exchange(client, response, request);
    });

    moduleTest(plan, 'oidcc-refresh-token', 'refresh tokens of two registered clients are bound to their client', async () => {
      const grants = { metadata: { grant_types: ['authorization_code', 'refresh_token'] } };
      const first = await dynamicClient(grants);
      const second = await dynamicClient(grants);
      await expectRefreshTokenFlow(first, mode);
      const { refreshToken } = await expectRefreshTokenFlow(second, mode);
      const stolen = await oidc.refreshTokenGrant(first.config, refreshToken).catch((e: unknown) => e as { error?: string });
      expect((stolen as { error?: string }).error).to.equal('invalid_grant');
    });

    moduleTest(plan, 'oidcc-ensure-client-assertion-with-iss-aud-succeeds', 'a client assertion with the issuer as its audience is accepted', async () => {
      const client = await dynamicClient({ aud: 'issuer' });
      await flow(client, mode);
    });
  });
});
