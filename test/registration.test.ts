import { storedId } from '../src/oidc/payload-ids.js';
import { expect } from 'chai';
import { eventually } from './support/eventually.js';
import * as oidc from 'openid-client';
import { resetData, testEnv } from './support/env.js';
import { makeUser, PASSWORD, REDIRECT_URI } from './support/fixtures.js';
import { idp, idpOk, relyingPartyWith, signIn } from './support/tokens.js';

const METADATA = {
  client_name: 'Partner app',
  redirect_uris: [REDIRECT_URI],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
};

async function register(metadata: Record<string, unknown>, initialAccessToken?: string) {
  return oidc.dynamicClientRegistration(new URL(testEnv().url), metadata as Partial<oidc.ClientMetadata>, undefined, {
    ...(initialAccessToken ? { initialAccessToken } : {}),
    execute: [oidc.allowInsecureRequests],
  });
}

async function failure(promise: Promise<unknown>): Promise<{ status?: number; error?: string; error_description?: string }> {
  try {
    await promise;
  } catch (e) {
    const error = e as { status?: number; error?: string; error_description?: string; cause?: unknown; response?: Response };
    // openid-client raises WWW-Authenticate challenges (401) and JSON error bodies (400) differently.
    const challenge = (e as { cause?: { parameters?: { error?: string } }[] }).cause;
    if (Array.isArray(challenge)) return { status: error.response?.status ?? error.status, error: challenge[0]?.parameters?.error };
    return error;
  }
  throw new Error('expected the registration to fail');
}

async function iat(args: string[] = []): Promise<string> {
  return (await idpOk(['client', 'iat', 'create', ...args])).initial_access_token as string;
}

describe('dynamic client registration (RFC 7591) and management (RFC 7592)', () => {
  beforeEach(resetData);

  it('is refused without an initial access token', async () => {
    const error = await failure(register(METADATA));
    expect(error.status).to.equal(401);
    const raw = await fetch(`${testEnv().url}/reg`, { method: 'POST', body: JSON.stringify(METADATA), headers: { 'content-type': 'application/json' } });
    expect(raw.status).to.equal(401);
    expect(raw.headers.get('www-authenticate')).to.match(/^Bearer realm=/);
    expect(((await raw.json()) as { error: string }).error).to.equal('invalid_token');
    expect(await testEnv().db('oidc_clients')).to.have.length(0);
  });

  it('is refused with a wrong or an expired initial access token', async () => {
    expect((await failure(register(METADATA, 'made-up-token'))).status).to.equal(401);
    const token = await iat(['--expires-in', '60s']);
    await testEnv().db('oidc_payloads').where({ model: 'InitialAccessToken', id: storedId(testEnv().server.app.services.secrets, 'InitialAccessToken', token) }).update({ expires_at: new Date(Date.now() - 60_000) });
    const expired = await failure(register(METADATA, token));
    expect(expired.status).to.equal(401);
    expect(expired.error).to.equal('invalid_token');
    // A plain POST without JSON does not reach registration either.
    const res = await fetch(`${testEnv().url}/reg`, { method: 'POST', body: 'x=1', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${await iat()}` } });
    expect(res.status).to.equal(400);
    expect(await testEnv().db('oidc_clients')).to.have.length(0);
  });

  it('registers a client with a valid token; the client is third-party (consent page) and its secret encrypted at rest', async () => {
    const { user } = await makeUser({ email: 'dcr@example.com' });
    const token = await iat();
    const config = await register(METADATA, token);
    const metadata = config.clientMetadata();
    expect(metadata.client_id).to.be.a('string');
    expect(metadata.client_secret).to.be.a('string');
    expect(metadata.registration_access_token).to.be.a('string');
    expect(metadata.registration_client_uri).to.equal(`${testEnv().url}/reg/${metadata.client_id}`);

    const row = await testEnv().db('oidc_clients').where({ client_id: metadata.client_id }).first();
    expect(row).to.include({ registered_via: 'dcr', first_party: false });
    expect(JSON.stringify(row)).not.to.include(metadata.client_secret as string);
    // Written by oidc-provider's event listener, next to the response.
    await eventually(async () => {
      const events = await testEnv().db('audit_events').where({ type: 'client.registered' });
      expect(events.map((e) => e.details)).to.deep.include({ via: 'dcr', client_id: metadata.client_id });
    });

    const rp = await relyingPartyWith(metadata.client_id, { secret: metadata.client_secret as string });
    const { tokens, consentShown } = await signIn(rp, 'dcr@example.com', PASSWORD, { consent: 'allow' });
    expect(consentShown).to.equal(true);
    expect(tokens!.claims()!.sub).to.equal(user.id);

    // The token was single-use.
    expect((await failure(register({ ...METADATA, client_name: 'Second' }, token))).status).to.equal(401);
  });

  it('a reusable token registers several clients', async () => {
    const token = await iat(['--reusable', '--expires-in', '1h']);
    await register(METADATA, token);
    await register({ ...METADATA, client_name: 'Another' }, token);
    expect(await testEnv().db('oidc_clients')).to.have.length(2);
  });

  it('applies the same rules as the CLI; a refused registration does not use up the token', async () => {
    const token = await iat();
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ redirect_uris: ['https://app.example.com/cb#frag'] }, 'invalid_redirect_uri', /fragment/],
      [{ redirect_uris: ['http://app.example.com/cb'] }, 'invalid_redirect_uri', /must use https/],
      [{ redirect_uris: [] }, 'invalid_redirect_uri', /redirect URI is required/],
      [{ grant_types: ['authorization_code', 'password'] }, 'invalid_client_metadata', /password/],
      [{ token_endpoint_auth_method: 'client_secret_jwt' }, 'invalid_client_metadata', /client_secret_jwt/],
      [{ token_endpoint_auth_method: 'none', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] }, 'invalid_client_metadata', /public client cannot use client_credentials/],
      [{ backchannel_logout_uri: 'http://rp.example.com/logout' }, 'invalid_client_metadata', /must use https/],
      [{ id_token_signed_response_alg: 'HS256' }, 'invalid_client_metadata', /HS256/],
      [{ redirect_uris: 'https://not-an-array.example.com' }, 'invalid_client_metadata', /array/],
    ];
    for (const [change, error, description] of cases) {
      const refused = await failure(register({ ...METADATA, ...change }, token));
      expect(refused.status, JSON.stringify(change)).to.equal(400);
      expect(refused.error, JSON.stringify(change)).to.equal(error);
      expect(refused.error_description, JSON.stringify(change)).to.match(description);
    }
    // Values of the wrong type: 400, never a server error.
    for (const change of [
      { client_name: 5 },
      { grant_types: 'authorization_code' },
      { backchannel_logout_uri: 5 },
      { token_endpoint_auth_method: 'private_key_jwt', jwks: 'x' },
      { token_endpoint_auth_method: ['none'] },
      { redirect_uris: [5] },
      { post_logout_redirect_uris: ['javascript:alert(1)'] },
      { jwks_uri: 'http://keys.example.com/jwks', token_endpoint_auth_method: 'private_key_jwt' },
    ]) {
      const refused = await failure(register({ ...METADATA, ...change }, token));
      expect(refused.status, JSON.stringify(change)).to.equal(400);
      expect(refused.error, JSON.stringify(change)).to.match(/^invalid_(client_metadata|redirect_uri)$/);
    }
    expect(await testEnv().db('oidc_clients')).to.have.length(0);
    // Still unused: a good registration works.
    await register(METADATA, token);
    expect(await testEnv().db('oidc_clients')).to.have.length(1);
  });

  it('registers public and machine clients', async () => {
    const token = await iat(['--reusable']);
    const pub = (await register({ client_name: 'SPA', redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none' }, token)).clientMetadata();
    expect(pub).not.to.have.property('client_secret');
    const machine = (await register({ client_name: 'Daemon', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] }, token)).clientMetadata();
    expect(machine.client_secret).to.be.a('string');
    const list = (await idp(['client', 'list'])).output!.clients as { client_id: string; kind: string }[];
    expect(list.map((c) => [c.client_id, c.kind])).to.deep.equal([
      [pub.client_id, 'public'],
      [machine.client_id, 'machine'],
    ]);
  });

  it('manages the registration with its access token: read, update (same rules), delete', async () => {
    const metadata = (await register(METADATA, await iat())).clientMetadata();
    const uri = metadata.registration_client_uri as string;
    let rat = metadata.registration_access_token as string;
    const call = (method: string, body?: unknown, token = rat) =>
      fetch(uri, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });

    const read = await call('GET');
    expect(read.status).to.equal(200);
    expect(await read.json()).to.include({ client_id: metadata.client_id, client_name: 'Partner app' });
    expect((await call('GET', undefined, 'wrong-token')).status).to.equal(401);

    const update = { ...METADATA, client_id: metadata.client_id, client_secret: metadata.client_secret };
    const bad = await call('PUT', { ...update, redirect_uris: ['http://evil.example.com/cb'] });
    expect(bad.status).to.equal(400);
    expect(((await bad.json()) as { error: string }).error).to.equal('invalid_redirect_uri');

    const good = await call('PUT', { ...update, redirect_uris: ['https://partner.example.com/cb'] });
    expect(good.status).to.equal(200);
    const updated = (await good.json()) as { redirect_uris: string[]; registration_access_token: string };
    expect(updated.redirect_uris).to.deep.equal(['https://partner.example.com/cb']);
    expect(updated.registration_access_token, 'rotated').not.to.equal(rat);
    expect((await call('GET')).status, 'the old token is gone').to.equal(401);
    rat = updated.registration_access_token;

    expect((await call('DELETE')).status).to.equal(204);
    expect(await testEnv().db('oidc_clients').where({ client_id: metadata.client_id })).to.have.length(0);
    await eventually(async () => {
      const types = (await testEnv().db('audit_events').orderBy('id')).map((e) => e.type);
      expect(types).to.include.members(['client.registered', 'client.updated', 'client.deleted']);
    });
  });

  it('client iat create refuses bad durations', async () => {
    for (const value of ['soon', '0', '40d']) {
      const result = await idp(['client', 'iat', 'create', '--expires-in', value]);
      expect(result.exitCode, value).to.equal(1);
      expect(result.error).to.match(/duration|between/);
    }
    const created = await idp(['client', 'iat', 'create']);
    expect(created.output).to.include({ single_use: true });
    expect(created.output!.initial_access_token).to.be.a('string').with.length.above(40);
    // The token never reaches the audit log.
    expect(JSON.stringify(await testEnv().db('audit_events'))).not.to.include(created.output!.initial_access_token as string);
  });
});
