// Registered clients are cached in memory (src/oidc/client-cache.ts); a change to oidc_clients must still
// apply at once, whoever makes it: this instance, another instance, the CLI or psql.
import { expect } from 'chai';
import * as oidc from 'openid-client';
import { startServer, type RunningServer } from '../src/app.js';
import { createDb, type Db } from '../src/db/index.js';
import { createLogger } from '../src/log.js';
import { ClientCache } from '../src/oidc/client-cache.js';
import { resetData, testEnv } from './support/env.js';
import { eventually } from './support/eventually.js';
import { relyingPartyWith } from './support/rp.js';
import { idpOk } from './support/tokens.js';

const API = 'https://api.example.com';

async function machineClient(): Promise<{ clientId: string; secret: string }> {
  await idpOk(['resource', 'create', '--uri', API, '--scope', 'api:read']);
  const machine = await idpOk(['client', 'create', '--machine', '--name', 'Daemon', '--scope', 'api:read']);
  return { clientId: machine.client_id as string, secret: machine.client_secret as string };
}

/** The token endpoint's answer to a client_credentials grant: 'ok' or the OAuth error code. */
async function grant(clientId: string, secret: string, baseUrl = testEnv().url): Promise<string> {
  try {
    const rp = await relyingPartyWith(clientId, { secret }, baseUrl);
    await oidc.clientCredentialsGrant(rp.config, { resource: API, scope: 'api:read' });
    return 'ok';
  } catch (error) {
    const e = error as { error?: string; cause?: { parameters?: { error?: string } }[] };
    return e.error ?? e.cause?.[0]?.parameters?.error ?? String(error);
  }
}

/** Sets a client's secret the way another instance (or psql) would: straight in the table. */
async function setSecretInDatabase(clientId: string, secret: string): Promise<void> {
  const { secrets } = testEnv().server.app.services;
  await testEnv().db('oidc_clients').where({ client_id: clientId }).update({ secret_encrypted: secrets.encrypt(secret, `client:${clientId}`) });
}

describe('client cache', function () {
  this.timeout(30_000);
  beforeEach(async () => {
    await resetData();
    // Only this file's API: the device-credential API is registered at start-up and other files use it.
    await testEnv().db('resource_servers').where({ identifier: API }).delete();
  });

  it('a secret changed straight in the database works at once and the old one stops; a deleted client is unknown at once', async () => {
    const { clientId, secret } = await machineClient();
    expect(await grant(clientId, secret)).to.equal('ok'); // looked up, so cached

    await setSecretInDatabase(clientId, 'a new secret set by another instance');
    // PostgreSQL delivers the notification just after the commit; PGlite at the commit.
    await eventually(async () => expect(await grant(clientId, secret)).to.equal('invalid_client'), 2000);
    expect(await grant(clientId, 'a new secret set by another instance')).to.equal('ok');

    await testEnv().db('oidc_clients').where({ client_id: clientId }).delete();
    await eventually(async () => expect(await grant(clientId, 'a new secret set by another instance')).to.equal('invalid_client'), 2000);
  });

  it('a secret rotated with the CLI stops working at once', async () => {
    const { clientId, secret } = await machineClient();
    expect(await grant(clientId, secret)).to.equal('ok');
    const rotated = await idpOk(['client', 'rotate-secret', '--client-id', clientId]);
    // The CLI's change is made by this instance: no waiting for the notification.
    expect(await grant(clientId, secret)).to.equal('invalid_client');
    expect(await grant(clientId, rotated.client_secret as string)).to.equal('ok');
  });

  describe('on PostgreSQL, across instances', () => {
    const databaseUrl = process.env.TEST_DATABASE_URL;
    let otherDb: Db;
    let other: RunningServer;

    before(async function () {
      if (!databaseUrl) {
        console.log('      (skipped: needs a PostgreSQL server, TEST_DATABASE_URL; an embedded PGlite has one process only)');
        this.skip();
      }
      const { config } = testEnv();
      // Another instance with its own connection pool and its own listener, like a second machine (its own
      // issuer URL, so openid-client's discovery talks to it).
      otherDb = createDb({ databaseUrl });
      other = await startServer({ ...config, port: 0 }, { db: otherDb, log: createLogger(config.logLevel), issuerForPort: (port) => `http://127.0.0.1:${port}`, keyRefreshMs: 0 });
    });

    after(async () => {
      await other?.close();
      await otherDb?.destroy();
    });

    /** PostgreSQL backends listening for client changes (one per running instance). */
    async function listeners(): Promise<number[]> {
      const { rows } = (await testEnv().db.raw("SELECT pid FROM pg_stat_activity WHERE query = 'LISTEN oidc_clients_changed'")) as { rows: { pid: number }[] };
      return rows.map((r) => r.pid);
    }

    it('a secret rotated on one instance stops working on the other at once', async () => {
      const { clientId, secret } = await machineClient();
      expect(await grant(clientId, secret, other.url)).to.equal('ok');
      const rotated = await idpOk(['client', 'rotate-secret', '--client-id', clientId]); // on the first instance
      await eventually(async () => expect(await grant(clientId, secret, other.url)).to.equal('invalid_client'), 2000);
      expect(await grant(clientId, rotated.client_secret as string, other.url)).to.equal('ok');
    });

    it('a dropped notification connection is reopened, and changes are heard again', async () => {
      const { clientId, secret } = await machineClient();
      const before = await listeners();
      expect(before).to.have.length.of.at.least(2);
      await testEnv().db.raw('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(?)', [before]);
      // Both instances reconnect by themselves (backoff from 0.5 s) with new backends.
      await eventually(async () => {
        const now = await listeners();
        expect(now.filter((pid) => !before.includes(pid))).to.have.length.of.at.least(2);
      }, 10_000);

      expect(await grant(clientId, secret, other.url)).to.equal('ok');
      await setSecretInDatabase(clientId, 'changed after the reconnection');
      await eventually(async () => expect(await grant(clientId, secret, other.url)).to.equal('invalid_client'), 2000);
      expect(await grant(clientId, 'changed after the reconnection', other.url)).to.equal('ok');
    });
  });

  describe('the cache itself', () => {
    it('reads the database every time while changes are not heard, and stores nothing then', async () => {
      const cache = new ClientCache<string>();
      let loads = 0;
      const load = async () => `value ${++loads}`;
      expect(await cache.get('c', load)).to.equal('value 1');
      expect(await cache.get('c', load)).to.equal('value 2');
      expect(cache.size).to.equal(0);
      cache.setListening(true);
      expect(await cache.get('c', load)).to.equal('value 3');
      expect(await cache.get('c', load)).to.equal('value 3');
      cache.setListening(false); // the listener dropped: empty and off
      expect(cache.size).to.equal(0);
      expect(await cache.get('c', load)).to.equal('value 4');
    });

    it('does not store a value read while a change to it was announced, nor unknown clients', async () => {
      const cache = new ClientCache<string>();
      cache.setListening(true);
      // The row is read before a change commits; the notification arrives before the read returns.
      const raced = await cache.get('c', async () => {
        cache.changed('c');
        return 'old';
      });
      expect(raced).to.equal('old');
      expect(await cache.get('c', async () => 'new')).to.equal('new');
      expect(await cache.get('c', async () => 'newer')).to.equal('new');
      cache.changed('*');
      expect(await cache.get('c', async () => 'newest')).to.equal('newest');
      expect(await cache.get('unknown', async () => undefined)).to.equal(undefined);
      expect(cache.size).to.equal(1);
    });
  });
});
