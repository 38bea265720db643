import { expect } from 'chai';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import * as oidc from 'openid-client';
import { startServer, type RunningServer } from '../src/app.js';
import { createLogger } from '../src/log.js';
import { keySetVersion, publishedKeys } from '../src/oidc/keys.js';
import { resetData, testEnv } from './support/env.js';
import { makeClient, makeUser, PASSWORD } from './support/fixtures.js';
import { relyingParty } from './support/rp.js';
import { fetchJwks, idp, idpOk, jwtHeader, signIn } from './support/tokens.js';

const API = 'https://api.example.com';

/** Moves every key timestamp back, as if `seconds` had passed. */
async function timePasses(seconds: number): Promise<void> {
  const shift = `${seconds} seconds`;
  await testEnv().db.raw(
    `UPDATE signing_keys SET created_at = created_at - ?::interval, activates_at = activates_at - ?::interval,
       retired_at = retired_at - ?::interval, expires_at = expires_at - ?::interval`,
    [shift, shift, shift, shift],
  );
}

const kids = (jwks: JSONWebKeySet) => jwks.keys.map((k) => k.kid!).sort();

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i += 1) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('signing key rotation with two instances on one database', function () {
  this.timeout(30_000);
  let second: RunningServer;

  before(async () => {
    const { db, config, url } = testEnv();
    // A second instance of the provider: same database and issuer, its own port; it polls for key changes.
    second = await startServer({ ...config, port: 0 }, { db, log: createLogger(config.logLevel), issuerForPort: () => url, keyRefreshMs: 100 });
  });

  after(async () => {
    await second?.close();
  });

  beforeEach(async () => {
    await resetData();
    await testEnv().db('resource_servers').delete();
  });

  /** An openid-client configuration for the second instance (same issuer, its own endpoints). */
  async function configAtSecond(clientId: string, secret: string): Promise<oidc.Configuration> {
    const metadata = (await (await fetch(`${second.url}/.well-known/openid-configuration`)).json()) as oidc.ServerMetadata;
    expect(metadata.issuer).to.equal(testEnv().url);
    const config = new oidc.Configuration(metadata, clientId, secret);
    oidc.allowInsecureRequests(config);
    return config;
  }

  it('publishes the new key before it signs, switches every instance, keeps old tokens verifiable, then retires the old key', async () => {
    const first = testEnv().server.app;
    const { user } = await makeUser({ email: 'keys@example.com' });
    await idpOk(['resource', 'create', '--uri', API, '--scope', 'api:read']);
    const client = await makeClient();
    const rp = await relyingParty(client);
    const machine = await idpOk(['client', 'create', '--machine', '--name', 'Daemon', '--scope', 'api:read']);
    const atSecond = await configAtSecond(machine.client_id as string, machine.client_secret as string);

    const before = await fetchJwks();
    expect(kids(await fetchJwks(second.url))).to.deep.equal(kids(before));
    const { tokens: oldTokens } = await signIn(rp, 'keys@example.com', PASSWORD, { params: { scope: 'openid offline_access', prompt: 'consent' } });
    const oldIdToken = oldTokens!.id_token!;
    const oldKid = jwtHeader(oldIdToken).kid;
    const oldApiToken = (await oidc.clientCredentialsGrant(atSecond, { resource: API, scope: 'api:read' })).access_token;
    expect(jwtHeader(oldApiToken).kid).to.equal(oldKid);

    // Rotate: new keys published at once, signing in an hour.
    const rotated = await idp(['keys', 'rotate', '--activate-in', '1h']);
    expect(rotated.exitCode).to.equal(0);
    const added = rotated.output!.added as { kid: string; alg: string; state: string }[];
    expect(added.map((k) => [k.alg, k.state])).to.deep.equal([['RS256', 'next'], ['ES256', 'next']]);
    const newRsKid = added[0]!.kid;

    expect(await first.providers.refresh()).to.equal(true);
    await eventually(async () => kids(await fetchJwks(second.url)).includes(newRsKid), 'the second instance to publish the new key');
    const published = await fetchJwks();
    expect(kids(published)).to.deep.equal(kids(await fetchJwks(second.url)));
    expect(kids(published)).to.include.members([...kids(before), ...added.map((k) => k.kid)]);
    expect(published.keys.every((k) => k.d === undefined)).to.equal(true);
    // Published, not signing yet.
    const { tokens: stillOld } = await signIn(rp, 'keys@example.com', PASSWORD);
    expect(jwtHeader(stillOld!.id_token!).kid).to.equal(oldKid);
    expect(jwtHeader((await oidc.clientCredentialsGrant(atSecond, { resource: API, scope: 'api:read' })).access_token).kid).to.equal(oldKid);

    // An hour later the new key signs, on both instances, without a restart.
    await timePasses(3601);
    await first.providers.refresh();
    await eventually(async () => jwtHeader((await oidc.clientCredentialsGrant(atSecond, { resource: API, scope: 'api:read' })).access_token).kid === newRsKid, 'the second instance to sign with the new key');
    const { tokens: fresh } = await signIn(rp, 'keys@example.com', PASSWORD);
    expect(jwtHeader(fresh!.id_token!).kid).to.equal(newRsKid);
    expect(fresh!.claims()!.sub).to.equal(user.id);

    // Tokens signed before the rotation still verify against either instance's JWKS.
    for (const base of [testEnv().url, second.url]) {
      const jwks = createLocalJWKSet(await fetchJwks(base));
      await jwtVerify(oldIdToken, jwks, { issuer: testEnv().url, audience: client.client_id });
      await jwtVerify(oldApiToken, jwks, { issuer: testEnv().url, audience: API, typ: 'at+jwt' });
    }
    // The refresh token issued before the rotation keeps working (opaque tokens are not signed).
    expect((await oidc.refreshTokenGrant(rp.config, oldTokens!.refresh_token!)).access_token).to.be.a('string');

    const listed = (await idp(['keys', 'list'])).output!.keys as { kid: string; state: string; signing: boolean }[];
    expect(listed.find((k) => k.kid === oldKid)).to.include({ state: 'retired', signing: false });
    expect(listed.find((k) => k.kid === newRsKid)).to.include({ state: 'active', signing: true });

    // After the retention period (longer than any token lifetime) the old keys leave the JWKS everywhere.
    await timePasses(25 * 3600);
    await first.providers.refresh();
    await eventually(async () => !kids(await fetchJwks(second.url)).includes(oldKid), 'the second instance to drop the old key');
    expect(kids(await fetchJwks())).to.deep.equal(kids(await fetchJwks(second.url)));
    expect(kids(await fetchJwks())).not.to.include.members(kids(before));
    expect(kids(await fetchJwks())).to.have.members(added.map((k) => k.kid));
  });

  it('a second rotation before the first activates retires the pending key unused', async () => {
    const pending = ((await idpOk(['keys', 'rotate', '--alg', 'RS256', '--activate-in', '1h'])).added as { kid: string }[])[0]!.kid;
    const emergency = await idp(['keys', 'rotate', '--alg', 'RS256', '--activate-in', '0']);
    expect(emergency.notice).to.match(/sign \(almost\) at once/);
    const now = ((emergency.output!.added as { kid: string }[])[0]!).kid;
    const keys = (await idp(['keys', 'list'])).output!.keys as { kid: string; alg: string; state: string; signing: boolean }[];
    expect(keys.find((k) => k.kid === now)).to.include({ state: 'active', signing: true });
    expect(keys.find((k) => k.kid === pending)).to.include({ state: 'retired', signing: false });
    expect(keys.filter((k) => k.alg === 'RS256' && k.signing)).to.have.length(1);
    expect(keys.filter((k) => k.alg === 'ES256' && k.signing)).to.have.length(1);
    await testEnv().server.app.providers.refresh();
    await makeUser({ email: 'emergency@example.com' });
    const { tokens } = await signIn(await relyingParty(await makeClient()), 'emergency@example.com', PASSWORD);
    expect(jwtHeader(tokens!.id_token!).kid).to.equal(now);
  });

  it('keys rotate refuses bad input and changes nothing', async () => {
    const before = (await idp(['keys', 'list'])).output!.keys;
    for (const [args, message] of [
      [['--alg', 'HS256'], /Unknown signing algorithm "HS256"/],
      [['--activate-in', 'soon'], /duration/],
      [['--activate-in=-5m'], /duration/],
      [['--activate-in', '90d'], /between/],
    ] as const) {
      const result = await idp(['keys', 'rotate', ...args]);
      expect(result.exitCode, args.join(' ')).to.equal(1);
      expect(result.error).to.match(message);
    }
    expect((await idp(['keys', 'rotate', '--bogus'])).exitCode).to.equal(2);
    expect((await idp(['keys', 'list'])).output!.keys).to.deep.equal(before);
  });
});

describe('signing key states (computed from timestamps)', () => {
  const t0 = new Date('2026-01-01T00:00:00Z');
  const at = (hours: number) => new Date(t0.getTime() + hours * 3600_000);
  const key = (kid: string, alg: 'RS256' | 'ES256', activates: number, retired?: number, expires?: number) => ({
    kid,
    alg,
    created_at: at(activates - 1),
    activates_at: at(activates),
    retired_at: retired === undefined ? null : at(retired),
    expires_at: expires === undefined ? null : at(expires),
  });
  const rows = [key('rs-old', 'RS256', -10, 1, 26), key('rs-new', 'RS256', 1), key('es', 'ES256', -10)];

  it('orders the signer of each algorithm first and follows the schedule', () => {
    const view = (hours: number) => publishedKeys(rows, at(hours)).map((k) => `${k.kid}:${k.state}${k.signing ? '*' : ''}`);
    expect(view(0)).to.deep.equal(['rs-old:active*', 'es:active*', 'rs-new:next']);
    expect(view(1)).to.deep.equal(['rs-new:active*', 'es:active*', 'rs-old:retired']);
    expect(view(26)).to.deep.equal(['rs-new:active*', 'es:active*']);
    expect(keySetVersion(publishedKeys(rows, at(0)))).not.to.equal(keySetVersion(publishedKeys(rows, at(1))));
    expect(keySetVersion(publishedKeys(rows, at(2)))).to.equal(keySetVersion(publishedKeys(rows, at(3))));
  });

  it('falls back to the earliest pending key when an algorithm has no active one', () => {
    const odd = [key('es-later', 'ES256', 5), key('es-soon', 'ES256', 2)];
    expect(publishedKeys(odd, at(0)).map((k) => [k.kid, k.signing])).to.deep.equal([
      ['es-soon', true],
      ['es-later', false],
    ]);
  });
});
