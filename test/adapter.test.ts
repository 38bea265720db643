import { expect } from 'chai';
import type { AdapterPayload } from 'oidc-provider';
import { ClientAdapter, deleteExpiredPayloads, KnexAdapter } from '../src/oidc/adapter.js';
import { storedId } from '../src/oidc/payload-ids.js';
import { resetData, testEnv } from './support/env.js';

const secrets = () => testEnv().server.app.services.secrets;

// Every model oidc-provider 9 stores through the adapter (besides Client, tested below).
const MODELS = [
  'Session',
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'ClientCredentials',
  'InitialAccessToken',
  'RegistrationAccessToken',
  'Interaction',
  'ReplayDetection',
  'PushedAuthorizationRequest',
  'Grant',
  'BackchannelAuthenticationRequest',
];

describe('knex adapter contract', () => {
  beforeEach(resetData);

  for (const model of MODELS) {
    describe(model, () => {
      const adapter = () => new KnexAdapter(testEnv().db, secrets(), model);

      it('upserts, finds, updates, consumes and destroys', async () => {
        const a = adapter();
        const payload: AdapterPayload = { jti: 'id-1', kind: model, grantId: 'g-1', exp: 1, extra: { nested: [1, 'two'] } };
        await a.upsert('id-1', payload, 60);
        expect(await a.find('id-1')).to.deep.equal(payload);
        await a.upsert('id-1', { ...payload, extra: { changed: true } }, 60);
        expect((await a.find('id-1'))!.extra).to.deep.equal({ changed: true });
        await a.consume('id-1');
        const consumed = await a.find('id-1');
        expect(consumed!.consumed).to.be.a('number').and.greaterThan(0);
        await a.destroy('id-1');
        expect(await a.find('id-1')).to.equal(undefined);
      });

      it('returns nothing for an unknown id and keeps models apart', async () => {
        const a = adapter();
        expect(await a.find('missing')).to.equal(undefined);
        await a.upsert('shared-id', { kind: model }, 60);
        const other = new KnexAdapter(testEnv().db, secrets(), model === 'Session' ? 'Grant' : 'Session');
        expect(await other.find('shared-id')).to.equal(undefined);
      });

      it('stops returning a record once it has expired (after the clock tolerance)', async () => {
        const a = adapter();
        await a.upsert('old', { kind: model }, 1);
        await testEnv().db('oidc_payloads').where({ model, id: storedId(secrets(), model, 'old') }).update({ expires_at: new Date(Date.now() - 20_000) });
        expect(await a.find('old')).to.equal(undefined);
        expect(await deleteExpiredPayloads(testEnv().db)).to.equal(1);
      });

      it('revokes by grant id only the rows of that grant', async () => {
        const a = adapter();
        await a.upsert('t1', { kind: model, grantId: 'grant-a' }, 60);
        await a.upsert('t2', { kind: model, grantId: 'grant-a' }, 60);
        await a.upsert('t3', { kind: model, grantId: 'grant-b' }, 60);
        await a.revokeByGrantId('grant-a');
        expect(await a.find('t1')).to.equal(undefined);
        expect(await a.find('t2')).to.equal(undefined);
        expect(await a.find('t3')).to.include({ grantId: 'grant-b' });
      });
    });
  }

  it('Session: finds by uid (with its id, kept encrypted)', async () => {
    const a = new KnexAdapter(testEnv().db, secrets(), 'Session');
    await a.upsert('sess-1', { kind: 'Session', jti: 'sess-1', uid: 'uid-1', accountId: 'acc' }, 60);
    expect(await a.findByUid('uid-1')).to.include({ accountId: 'acc', jti: 'sess-1' });
    expect(await a.findByUid('uid-2')).to.equal(undefined);
  });

  it('DeviceCode: finds by user code', async () => {
    const a = new KnexAdapter(testEnv().db, secrets(), 'DeviceCode');
    await a.upsert('dc-1', { kind: 'DeviceCode', userCode: 'ABCD-EFGH' }, 60);
    expect(await a.findByUserCode('ABCD-EFGH')).to.include({ kind: 'DeviceCode' });
    expect(await a.findByUserCode('ZZZZ-ZZZZ')).to.equal(undefined);
  });

  it('records with no expiry are kept', async () => {
    const a = new KnexAdapter(testEnv().db, secrets(), 'ReplayDetection');
    await a.upsert('forever', { kind: 'ReplayDetection' }, 0);
    expect(await a.find('forever')).to.deep.equal({ kind: 'ReplayDetection' });
  });

  describe('Client', () => {
    it('stores metadata with the secret encrypted at rest and returns it decrypted', async () => {
      const { db, server } = testEnv();
      const a = new ClientAdapter(db, server.app.services.secrets);
      const metadata = { client_id: 'dyn-1', client_secret: 'super-secret-value', redirect_uris: ['https://app.example/cb'] };
      await a.upsert('dyn-1', metadata);
      expect(await a.find('dyn-1')).to.deep.equal(metadata);
      const row = await db('oidc_clients').where({ client_id: 'dyn-1' }).first();
      expect(JSON.stringify(row)).not.to.include('super-secret-value');
      await a.destroy('dyn-1');
      expect(await a.find('dyn-1')).to.equal(undefined);
    });
  });
});
