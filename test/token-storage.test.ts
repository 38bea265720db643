// Tokens, codes and session cookies at rest (src/oidc/payload-ids.ts): a copy of oidc_payloads must not
// hold any value a client or browser could present, and what was stored before must keep working.
import { expect } from 'chai';
import * as oidc from 'openid-client';
import { KnexAdapter } from '../src/oidc/adapter.js';
import { rekeyLegacyPayloads } from '../src/oidc/payload-ids.js';
import { Browser } from './support/browser.js';
import { resetData, testEnv } from './support/env.js';
import { makeClient, makeUser, PASSWORD } from './support/fixtures.js';
import { relyingParty } from './support/rp.js';
import { signIn } from './support/tokens.js';

const secrets = () => testEnv().server.app.services.secrets;

async function dumpPayloads(): Promise<string> {
  return JSON.stringify(await testEnv().db('oidc_payloads').select());
}

describe('tokens at rest', () => {
  beforeEach(resetData);

  it('the table holds no access token, refresh token, code or session cookie value, and all of them work', async () => {
    const { user } = await makeUser({ email: 'rest@example.com' });
    const rp = await relyingParty(await makeClient());
    const browser = new Browser();
    const { tokens, callback } = await signIn(rp, 'rest@example.com', PASSWORD, { browser, params: { scope: 'openid email offline_access', prompt: 'consent' } });
    const refreshed = await oidc.refreshTokenGrant(rp.config, tokens!.refresh_token!);
    const cookies = await browser.jar.getCookies(testEnv().url);
    const session = cookies.find((c) => c.key === '_session')?.value;
    expect(session, 'session cookie').to.be.a('string');

    const dump = await dumpPayloads();
    const secretsInUse = {
      code: callback.searchParams.get('code')!,
      'first access token': tokens!.access_token,
      'first refresh token': tokens!.refresh_token!,
      'access token': refreshed.access_token,
      'refresh token': refreshed.refresh_token!,
      'session cookie': session!,
    };
    for (const [what, value] of Object.entries(secretsInUse)) expect(dump.includes(value), `${what} stored in clear`).to.equal(false);
    expect(dump).to.include('h1:'); // the keyed hashes

    // Still usable: userinfo, introspection and the next refresh; reuse of the old refresh token is still detected.
    expect((await oidc.fetchUserInfo(rp.config, refreshed.access_token, user.id)).email).to.equal('rest@example.com');
    expect((await oidc.tokenIntrospection(rp.config, refreshed.access_token)).active).to.equal(true);
    const again = await oidc.refreshTokenGrant(rp.config, refreshed.refresh_token!);
    expect(again.access_token).to.be.a('string');
    const reuse = await oidc.refreshTokenGrant(rp.config, tokens!.refresh_token!).catch((e: unknown) => e as { error?: string });
    expect((reuse as { error?: string }).error).to.equal('invalid_grant');
    // A signed-in user asked to sign in again: the interaction refers to the session, not in clear.
    const again2 = await browser.go((await rp.authorize({ prompt: 'login' })).url);
    expect(again2.html).to.include('name="password"');
    expect(await testEnv().db('oidc_payloads').where({ model: 'Interaction' })).to.have.length.of.at.least(1);
    expect((await dumpPayloads()).includes(session!), 'session cookie stored in clear in the interaction').to.equal(false);
    // The browser's session still signs it in without a password.
    const silent = await browser.go((await rp.authorize({ prompt: 'none' })).url);
    expect(silent.url).to.match(/[?&]code=/);
  });

  it('rows stored with clear ids by an earlier version are re-keyed at start and keep working', async () => {
    const { user } = await makeUser({ email: 'legacy@example.com' });
    const rp = await relyingParty(await makeClient());
    const { tokens } = await signIn(rp, 'legacy@example.com', PASSWORD);
    const accessToken = tokens!.access_token;
    const { db } = testEnv();
    // Turn the access token's row back into what the earlier version wrote: the token as id and jti.
    const adapter = new KnexAdapter(db, secrets(), 'AccessToken');
    const payload = (await adapter.find(accessToken))!;
    await adapter.destroy(accessToken);
    await db('oidc_payloads').insert({ model: 'AccessToken', id: accessToken, payload: JSON.stringify(payload), grant_id: payload.grantId, expires_at: new Date(Date.now() + 3600_000) });
    expect(await dumpPayloads()).to.include(accessToken);

    expect(await rekeyLegacyPayloads(db, secrets())).to.equal(1);
    expect(await dumpPayloads()).not.to.include(accessToken);
    expect(await rekeyLegacyPayloads(db, secrets())).to.equal(0);
    expect((await oidc.fetchUserInfo(rp.config, accessToken, user.id)).email).to.equal('legacy@example.com');
  });
});
