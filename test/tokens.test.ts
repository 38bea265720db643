import { expect } from 'chai';
import { eventually } from './support/eventually.js';
import { exportJWK, generateKeyPair, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { Browser } from './support/browser.js';
import { resetData, testEnv } from './support/env.js';
import { makeClient, makeUser, PASSWORD, REDIRECT_URI } from './support/fixtures.js';
import { relyingParty } from './support/rp.js';
import { idp, idpOk, jwtHeader, localJwks, relyingPartyWith, signIn, startReceiver } from './support/tokens.js';

const API = 'https://api.example.com';

async function errorOf(promise: Promise<unknown>): Promise<{ error?: string; status?: number; code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { error?: string; status?: number };
  }
  throw new Error('expected an error');
}

describe('token profile', () => {
  beforeEach(async () => {
    await resetData();
    await testEnv().db('resource_servers').delete();
  });

  describe('ID tokens', () => {
    it('carry the claims of the granted scopes, customer_number and role only under the customer scope', async () => {
      const { user, customer } = await makeUser({ email: 'claims@example.com', owner: true });
      const rp = await relyingParty(await makeClient());
      const without = (await signIn(rp, 'claims@example.com', PASSWORD)).tokens!.claims()!;
      // email_verified: the email code of the sign-in proved the address.
      expect(without).to.include({ sub: user.id, email: 'claims@example.com', email_verified: true, name: user.name });
      // No language chosen on the profile page yet: no locale claim (absent, not a guess).
      expect(without).not.to.have.property('locale');
      expect(without).to.include.keys('amr', 'acr', 'auth_time', 'updated_at');
      expect(without).not.to.have.any.keys('customer_number', 'role');

      const withCustomer = (await signIn(rp, 'claims@example.com', PASSWORD, { params: { scope: 'openid customer' } })).tokens!.claims()!;
      expect(withCustomer).to.include({ customer_number: customer.customer_number, role: 'admin' });
      expect(withCustomer).not.to.have.any.keys('email', 'name');

      await testEnv().db('users').where({ id: user.id }).update({ locale: 'de' });
      expect((await signIn(rp, 'claims@example.com', PASSWORD)).tokens!.claims()).to.include({ locale: 'de' });
    });

    it('are signed ES256 for a client registered with it, verifiable against the JWKS', async () => {
      await makeUser({ email: 'es@example.com' });
      const client = await makeClient({ idTokenAlg: 'ES256' });
      const { tokens } = await signIn(await relyingParty(client), 'es@example.com', PASSWORD);
      expect(jwtHeader(tokens!.id_token!).alg).to.equal('ES256');
      const { payload } = await jwtVerify(tokens!.id_token!, await localJwks(), { issuer: testEnv().url, audience: client.client_id, algorithms: ['ES256'] });
      expect(payload.email).to.equal('es@example.com');
    });
  });

  describe('client kinds', () => {
    it('confidential client with client_secret_post; a wrong secret is refused', async () => {
      await makeUser({ email: 'post@example.com' });
      const client = await makeClient({ authMethod: 'client_secret_post' });
      const { tokens } = await signIn(await relyingPartyWith(client.client_id, { secret: client.client_secret, method: 'post' }), 'post@example.com', PASSWORD);
      expect(tokens!.id_token).to.be.a('string');

      const wrong = await relyingPartyWith(client.client_id, { secret: 'not-the-secret', method: 'post' });
      expect((await errorOf(signIn(wrong, 'post@example.com', PASSWORD))).error).to.equal('invalid_client');
    });

    it('confidential client with private_key_jwt (no secret at all)', async () => {
      await makeUser({ email: 'pkjwt@example.com' });
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      const jwk = { ...(await exportJWK(publicKey)), kid: 'client-key-1', alg: 'ES256', use: 'sig' };
      const created = await idpOk(['client', 'create', '--name', 'Signed', '--redirect-uri', REDIRECT_URI, '--first-party', '--auth-method', 'private_key_jwt', '--jwks', JSON.stringify({ keys: [jwk] })]);
      expect(created).not.to.have.property('client_secret');
      const rp = await relyingPartyWith(created.client_id as string, { privateKey });
      const { tokens } = await signIn(rp, 'pkjwt@example.com', PASSWORD);
      expect(tokens!.claims()!.email).to.equal('pkjwt@example.com');

      const { privateKey: otherKey } = await generateKeyPair('ES256');
      const impostor = await relyingPartyWith(created.client_id as string, { privateKey: otherKey });
      expect((await errorOf(signIn(impostor, 'pkjwt@example.com', PASSWORD))).error).to.equal('invalid_client');
    });

    it('public client: PKCE, no secret, refresh tokens rotate', async () => {
      await makeUser({ email: 'native@example.com' });
      const client = await makeClient({ public: true, grants: ['refresh_token'], redirectUris: [REDIRECT_URI] });
      const rp = await relyingPartyWith(client.client_id, {});
      const { tokens } = await signIn(rp, 'native@example.com', PASSWORD, { params: { scope: 'openid offline_access', prompt: 'consent' } });
      const refreshed = await oidc.refreshTokenGrant(rp.config, tokens!.refresh_token!);
      expect(refreshed.refresh_token).to.be.a('string').and.not.equal(tokens!.refresh_token);
    });

    it('machine client: client_credentials gives a JWT for the API with only the scopes registered on the client', async () => {
      await idpOk(['resource', 'create', '--uri', API, '--scope', 'api:read', '--scope', 'api:write', '--name', 'Telephony API', '--ttl', '15m']);
      await idpOk(['resource', 'create', '--uri', 'https://billing.example.com', '--scope', 'billing:read']);
      const machine = await idpOk(['client', 'create', '--machine', '--name', 'Nightly sync', '--scope', 'api:read']);
      const rp = await relyingPartyWith(machine.client_id as string, { secret: machine.client_secret as string });

      const response = await oidc.clientCredentialsGrant(rp.config, { resource: API, scope: 'api:read api:write' });
      expect(response.token_type.toLowerCase()).to.equal('bearer');
      expect(response.scope).to.equal('api:read');
      expect(response.expires_in).to.be.within(890, 900);
      const { payload, protectedHeader } = await jwtVerify(response.access_token, await localJwks(), { issuer: testEnv().url, audience: API, typ: 'at+jwt' });
      expect(protectedHeader.alg).to.equal('RS256');
      expect(payload).to.include({ sub: machine.client_id, client_id: machine.client_id, scope: 'api:read' });

      // No scope of the billing API is registered on the client; unknown APIs do not exist.
      expect((await errorOf(oidc.clientCredentialsGrant(rp.config, { resource: 'https://billing.example.com', scope: 'billing:read' }))).error).to.equal('invalid_target');
      expect((await errorOf(oidc.clientCredentialsGrant(rp.config, { resource: 'https://unknown.example.com', scope: 'x' }))).error).to.equal('invalid_target');
      // A machine client cannot start a user sign-in.
      const auth = await new Browser().request(`${testEnv().url}/auth?client_id=${machine.client_id as string}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT_URI)}`);
      expect(auth.status).to.be.within(400, 499);
    });
  });

  describe('JWT access tokens for registered resource servers (RFC 9068)', () => {
    it('the API verifies them offline with the JWKS; userinfo keeps working with the opaque token', async () => {
      const { user } = await makeUser({ email: 'api@example.com' });
      await idpOk(['resource', 'create', '--uri', API, '--scope', 'api:read', '--scope', 'api:write']);
      const client = await makeClient();
      const rp = await relyingParty(client);
      const { tokens } = await signIn(rp, 'api@example.com', PASSWORD, { params: { scope: 'openid email api:read offline_access', resource: API, prompt: 'consent' } });
      // The code exchange without `resource` gives the opaque token for userinfo.
      const info = await oidc.fetchUserInfo(rp.config, tokens!.access_token, user.id);
      expect(info.email).to.equal('api@example.com');

      const forApi = await oidc.refreshTokenGrant(rp.config, tokens!.refresh_token!, { resource: API });
      const { payload } = await jwtVerify(forApi.access_token, await localJwks(), { issuer: testEnv().url, audience: API, typ: 'at+jwt', algorithms: ['RS256'] });
      expect(payload).to.include({ sub: user.id, client_id: client.client_id, scope: 'api:read' });
      expect(payload.exp! - payload.iat!).to.equal(3600);
      // Another audience is refused by the API's check.
      const wrongAudience = await jwtVerify(forApi.access_token, await localJwks(), { audience: 'https://other.example.com' }).catch((e: unknown) => e);
      expect((wrongAudience as { code?: string }).code).to.equal('ERR_JWT_CLAIM_VALIDATION_FAILED');
    });

    it('can also be asked for directly at the code exchange', async () => {
      await makeUser({ email: 'direct@example.com' });
      await idpOk(['resource', 'create', '--uri', API, '--scope', 'api:read']);
      const rp = await relyingParty(await makeClient());
      const { tokens } = await signIn(rp, 'direct@example.com', PASSWORD, { params: { scope: 'openid api:read', resource: API }, tokenParams: { resource: API } });
      expect(jwtHeader(tokens!.access_token).typ).to.equal('at+jwt');
      expect(tokens!.scope).to.equal('api:read');
    });

    it('an unknown resource indicator is refused with invalid_target', async () => {
      await makeUser({ email: 'target@example.com' });
      const rp = await relyingParty(await makeClient());
      const browser = new Browser();
      const page = await browser.go((await rp.authorize({ resource: 'https://nope.example.com' })).url, {}, testEnv().url);
      expect(new URL(page.url).searchParams.get('error')).to.equal('invalid_target');
    });
  });

  describe('refresh tokens', () => {
    it('rotate on every use; reusing a rotated one revokes the grant and all its tokens', async () => {
      await makeUser({ email: 'rotate@example.com' });
      const client = await makeClient();
      const rp = await relyingParty(client);
      const { tokens } = await signIn(rp, 'rotate@example.com', PASSWORD, { params: { scope: 'openid offline_access', prompt: 'consent' } });
      const first = tokens!.refresh_token!;
      const second = await oidc.refreshTokenGrant(rp.config, first);
      expect(second.refresh_token).to.be.a('string').and.not.equal(first);
      const third = await oidc.refreshTokenGrant(rp.config, second.refresh_token!);
      expect(third.refresh_token).not.to.equal(second.refresh_token);
      expect((await oidc.tokenIntrospection(rp.config, third.access_token)).active).to.equal(true);

      // An attacker replays the first (rotated) refresh token.
      const reuse = await errorOf(oidc.refreshTokenGrant(rp.config, first));
      expect(reuse.error).to.equal('invalid_grant');
      // The whole grant is gone: the current refresh token and access token too.
      expect((await errorOf(oidc.refreshTokenGrant(rp.config, third.refresh_token!))).error).to.equal('invalid_grant');
      expect((await oidc.tokenIntrospection(rp.config, third.access_token)).active).to.equal(false);
      // The audit event is written from oidc-provider's grant.error event, next to the response.
      const events = await eventually(async () => {
        const rows: { details: Record<string, unknown> }[] = await testEnv().db('audit_events').where({ type: 'token.refresh_reuse_detected' });
        expect(rows).to.have.length(1);
        return rows;
      });
      expect(events[0]!.details).to.include({ client_id: client.client_id });
    });

    it('a refresh token of another client, or garbage, is refused', async () => {
      await makeUser({ email: 'other@example.com' });
      const rp = await relyingParty(await makeClient());
      const otherRp = await relyingParty(await makeClient({ name: 'Other' }));
      const { tokens } = await signIn(rp, 'other@example.com', PASSWORD, { params: { scope: 'openid offline_access', prompt: 'consent' } });
      expect((await errorOf(oidc.refreshTokenGrant(otherRp.config, tokens!.refresh_token!))).error).to.equal('invalid_grant');
      expect((await errorOf(oidc.refreshTokenGrant(rp.config, 'garbage'))).error).to.equal('invalid_grant');
      // The refused attempt by the other client did not consume it.
      expect((await oidc.refreshTokenGrant(rp.config, tokens!.refresh_token!)).access_token).to.be.a('string');
    });
  });

  describe('introspection and revocation', () => {
    it('introspects access and refresh tokens; revoking the refresh token ends the grant', async () => {
      const { user } = await makeUser({ email: 'intro@example.com' });
      const client = await makeClient();
      const rp = await relyingParty(client);
      const { tokens } = await signIn(rp, 'intro@example.com', PASSWORD, { params: { scope: 'openid email offline_access', prompt: 'consent' } });
      const at = await oidc.tokenIntrospection(rp.config, tokens!.access_token);
      expect(at).to.include({ active: true, sub: user.id, client_id: client.client_id, token_type: 'Bearer' });
      expect(at.scope!.split(' ')).to.include.members(['openid', 'email']);
      const rt = await oidc.tokenIntrospection(rp.config, tokens!.refresh_token!);
      expect(rt).to.include({ active: true, sub: user.id, client_id: client.client_id });
      expect((await oidc.tokenIntrospection(rp.config, 'not-a-token')).active).to.equal(false);

      // Another client can neither see nor revoke these tokens.
      const other = await relyingParty(await makeClient({ name: 'Other' }));
      await oidc.tokenRevocation(other.config, tokens!.refresh_token!);
      expect((await oidc.tokenIntrospection(rp.config, tokens!.refresh_token!)).active).to.equal(true);

      await oidc.tokenRevocation(rp.config, tokens!.refresh_token!);
      expect((await oidc.tokenIntrospection(rp.config, tokens!.refresh_token!)).active).to.equal(false);
      expect((await oidc.tokenIntrospection(rp.config, tokens!.access_token)).active).to.equal(false);
      expect((await errorOf(oidc.refreshTokenGrant(rp.config, tokens!.refresh_token!))).error).to.equal('invalid_grant');
    });

    it('revoking an access token revokes the other tokens of its grant too (oidc-provider), but keeps the consent', async () => {
      await makeUser({ email: 'revoke-at@example.com' });
      const rp = await relyingParty(await makeClient({ firstParty: false }));
      const { tokens, browser } = await signIn(rp, 'revoke-at@example.com', PASSWORD, { params: { scope: 'openid offline_access', prompt: 'consent' }, consent: 'allow' });
      await oidc.tokenRevocation(rp.config, tokens!.access_token);
      expect((await oidc.tokenIntrospection(rp.config, tokens!.access_token)).active).to.equal(false);
      expect((await oidc.tokenIntrospection(rp.config, tokens!.refresh_token!)).active).to.equal(false);
      // The grant itself stays (revokeGrantPolicy): the same browser signs in again without a new consent.
      const again = await signIn(rp, 'revoke-at@example.com', PASSWORD, { browser, params: { scope: 'openid' } });
      expect(again.consentShown).to.equal(false);
      expect(again.tokens!.access_token).to.be.a('string');
    });
  });

  describe('logout', () => {
    it('RP-initiated logout asks for confirmation, then sends a verifiable logout token to the back-channel URI', async () => {
      const receiver = await startReceiver();
      try {
        const { user } = await makeUser({ email: 'logout@example.com' });
        const client = await makeClient({ backchannelLogoutUri: receiver.url });
        const rp = await relyingParty(client);
        const { tokens, browser } = await signIn(rp, 'logout@example.com', PASSWORD);
        const idClaims = tokens!.claims()!;
        expect(idClaims.sid, 'sid in the ID token of a back-channel client').to.be.a('string');

        const endSession = oidc.buildEndSessionUrl(rp.config, {
          id_token_hint: tokens!.id_token!,
          post_logout_redirect_uri: 'http://127.0.0.1:9/logged-out',
          state: 'bye',
        });
        const confirm = await browser.go(endSession.href, {}, testEnv().url);
        expect(confirm.status).to.equal(200);
        expect(confirm.html).to.include('Do you want to sign out of');
        expect(receiver.received, 'nothing sent before confirmation').to.have.length(0);

        const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.html)![1]!;
        const action = /<form[^>]*action="([^"]+)"/.exec(confirm.html)![1]!;
        const done = await browser.submit(confirm, action, { xsrf, logout: 'yes' }, testEnv().url);
        expect(done.url).to.equal('http://127.0.0.1:9/logged-out?state=bye');

        const logoutToken = (await receiver.next()).get('logout_token')!;
        const { payload, protectedHeader } = await jwtVerify(logoutToken, await localJwks(), { issuer: testEnv().url, audience: client.client_id });
        expect(protectedHeader.typ).to.equal('logout+jwt');
        expect(payload).to.include({ sub: user.id, sid: idClaims.sid });
        expect(payload.events).to.deep.equal({ 'http://schemas.openid.net/event/backchannel-logout': {} });
        expect(payload).not.to.have.property('nonce');

        let logouts: unknown[] = [];
        for (let i = 0; i < 20 && !logouts.length; i += 1) {
          logouts = await testEnv().db('audit_events').where({ type: 'logout', user_id: user.id });
          if (!logouts.length) await new Promise((resolve) => setTimeout(resolve, 25));
        }
        expect(logouts).to.have.length(1);

        // The session is gone: the next authorization shows the sign-in page.
        const again = await browser.go((await rp.authorize()).url, {}, testEnv().url);
        expect(again.html).to.include('name="password"');
      } finally {
        await receiver.close();
      }
    });

    it('a logout confirmation without the form secret is refused', async () => {
      await makeUser({ email: 'xsrf@example.com' });
      const rp = await relyingParty(await makeClient());
      const { tokens, browser } = await signIn(rp, 'xsrf@example.com', PASSWORD);
      const confirm = await browser.go(oidc.buildEndSessionUrl(rp.config, { id_token_hint: tokens!.id_token! }).href, {}, testEnv().url);
      const action = new URL(/<form[^>]*action="([^"]+)"/.exec(confirm.html)![1]!, confirm.url).href;
      const res = await browser.request(action, { method: 'POST', body: new URLSearchParams({ xsrf: 'forged', logout: 'yes' }) });
      expect(res.status).to.equal(400);
      expect(await res.text()).not.to.match(/at .*\.(ts|js):\d+/);
    });
  });

  it('resource CLI: lists, refuses bad input, deletes', async () => {
    const created = await idp(['resource', 'create', '--uri', API, '--scope', 'api:read api:write']);
    expect(created.output).to.include({ identifier: API, name: 'api.example.com', access_token_ttl: 3600 });
    expect(created.output!.scopes).to.deep.equal(['api:read', 'api:write']);
    for (const [args, message] of [
      [['--uri', API, '--scope', 'x'], /already exists/],
      [['--uri', 'http://api.example.org', '--scope', 'x'], /must use https/],
      [['--uri', 'https://api.example.org/#x', '--scope', 'x'], /fragment/],
      [['--uri', 'https://api.example.org', '--scope', 'email'], /OpenID Connect scope/],
      [['--uri', 'https://api.example.org', '--scope', 'bad"scope'], /not a valid scope/],
      [['--uri', 'https://api.example.org', '--scope', 'x', '--ttl', '2d'], /between/],
      [['--uri', 'https://api.example.org', '--scope', 'x', '--ttl', 'soon'], /duration/],
    ] as const) {
      const result = await idp(['resource', 'create', ...args]);
      expect(result.exitCode, args.join(' ')).to.equal(1);
      expect(result.error).to.match(message);
    }
    expect((await idp(['resource', 'create', '--uri', 'https://api.example.org'])).error).to.match(/at least one scope/);
    expect((await idp(['resource', 'list'])).output!.resources).to.have.length(1);
    expect((await idp(['resource', 'delete', '--uri', API])).output).to.deep.equal({ deleted: API });
    expect((await idp(['resource', 'delete', '--uri', API])).exitCode).to.equal(1);
  });
});
