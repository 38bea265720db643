// One database and one running server for the whole test run (an in-memory PGlite takes seconds and
// ~700 MiB to create). TEST_DATABASE_URL switches to a real PostgreSQL server: its schema is wiped first.
import { randomBytes } from 'node:crypto';
import type { RunningServer, StartOptions } from '../../src/app.js';
import { startServer } from '../../src/app.js';
import type { Config } from '../../src/config.js';
import { createDb, type Db } from '../../src/db/index.js';
import { createLogger } from '../../src/log.js';
import { mailbox } from './smtp.js';

export interface TestEnv {
  db: Db;
  server: RunningServer;
  url: string;
  config: Config;
}

let env: TestEnv | undefined;

export function testConfig(overrides: Partial<Config> = {}): Config {
  return {
    production: false,
    port: 0,
    host: '127.0.0.1',
    issuer: 'http://127.0.0.1',
    dataDir: '/nonexistent',
    databaseUrl: process.env.TEST_DATABASE_URL || undefined,
    pgliteDir: 'memory',
    smtpUrl: undefined,
    mailFrom: 'Sign-in <no-reply@idp.test>',
    cookieKeys: [randomBytes(32).toString('base64url')],
    dataEncryptionKey: randomBytes(32),
    google: undefined,
    trustProxy: false,
    // Cheaper hashing keeps the suite fast; production uses the configured (OWASP) cost.
    argon2: { memoryCost: 8192, timeCost: 1, parallelism: 1 },
    logLevel: (process.env.TEST_LOG_LEVEL as Config['logLevel']) ?? 'silent',
    brandName: 'Test IdP',
    ...overrides,
  };
}

export async function startTestEnv(): Promise<TestEnv> {
  await mailbox.start();
  const config = testConfig({ smtpUrl: mailbox.url });
  const db = createDb({ databaseUrl: config.databaseUrl, pgliteDir: 'memory' });
  if (config.databaseUrl) await db.raw('DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;');
  const server = await startServer(config, { db, log: createLogger(config.logLevel), issuerForPort: (port) => `http://127.0.0.1:${port}` });
  env = { db, server, url: server.url, config: server.app.services.config };
  return env;
}

/**
 * Another provider instance on the shared test database, with the same secrets (so it is one more
 * instance of the same deployment). It is its own issuer unless `sameIssuer` is set.
 */
export async function startInstance(overrides: Partial<Config> = {}, options: StartOptions & { sameIssuer?: boolean } = {}): Promise<RunningServer> {
  const { db, config, url } = testEnv();
  return startServer(
    { ...config, port: 0, ...overrides },
    {
      db,
      log: createLogger(config.logLevel),
      issuerForPort: options.sameIssuer ? () => url : (port) => `http://127.0.0.1:${port}`,
      keyRefreshMs: 0,
      ...options,
    },
  );
}

export function testEnv(): TestEnv {
  if (!env) throw new Error('test environment not started (test/support/hooks.ts)');
  return env;
}

export async function stopTestEnv(): Promise<void> {
  if (!env) return;
  await env.server.close();
  await env.db.destroy();
  await mailbox.stop();
  env = undefined;
}

/** Empties the data tables between tests (keeps signing keys and the migration bookkeeping). */
export async function resetData(): Promise<void> {
  const { db } = testEnv();
  await db.raw(
    'TRUNCATE audit_events, login_flows, email_codes, trusted_devices, totp_credentials, recovery_codes, user_tokens, device_credentials, email_changes, oidc_payloads, oidc_clients, rate_limits, users, customers CASCADE',
  );
  mailbox.clear();
}
