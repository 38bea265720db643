// `node --import tsx bench/queries.ts`: the SQL statements one complete sign-in and each token operation
// send to the database (in-process server on an in-memory PGlite, or DATABASE_URL). A diagnostic for the
// benchmark: every statement is a round trip and CPU in the provider and in PostgreSQL.
import { randomBytes } from 'node:crypto';
import { startServer } from '../src/app.js';
import { createCustomer } from '../src/accounts/customers.js';
import { PasswordHasher } from '../src/accounts/passwords.js';
import type { Config } from '../src/config.js';
import { createDb } from '../src/db/index.js';
import { createLogger } from '../src/log.js';
import { createClient } from '../src/oidc/clients.js';
import { createResourceServer } from '../src/oidc/resources.js';
import { clientCredentials, type ClientCreds, introspect, refresh, signIn } from './flows.js';
import { Browser } from './http.js';
import { BenchMailbox } from './mailbox.js';

const verbose = process.argv.includes('--sql');
const mailbox = new BenchMailbox();
await mailbox.start();
const argon2 = { memoryCost: 19456, timeCost: 2, parallelism: 1 };
const config: Config = {
  production: true,
  port: 0,
  host: '127.0.0.1',
  issuer: 'http://127.0.0.1',
  dataDir: '/nonexistent',
  databaseUrl: process.env.DATABASE_URL || undefined,
  pgliteDir: 'memory',
  smtpUrl: mailbox.url,
  mailFrom: 'Sign-in <no-reply@bench.example.com>',
  cookieKeys: [randomBytes(32).toString('base64url')],
  dataEncryptionKey: randomBytes(32),
  google: undefined,
  trustProxy: false,
  argon2,
  logLevel: 'warn',
  brandName: 'Bench IdP',
};
const db = createDb({ databaseUrl: config.databaseUrl, pgliteDir: 'memory' });
const server = await startServer(config, { db, log: createLogger('warn'), issuerForPort: (port) => `http://127.0.0.1:${port}`, keyRefreshMs: 0 });
const { secrets } = server.app.services;

const run = randomBytes(4).toString('hex');
const customer = await createCustomer(db, { name: `Bench ${run}` });
const password = 'bench password: correct horse battery staple';
const email = `q.${run}@bench.example.com`;
await db('users').insert({ customer_id: customer.id, email, name: 'Query Count', status: 'active', password_hash: await new PasswordHasher(argon2).hash(password) });
const web = (await createClient(db, secrets, { name: 'Bench app', redirectUris: ['https://app.bench.invalid/cb'], grants: ['refresh_token'], firstParty: true }, { production: true })) as ClientCreds;
const api = `https://api.bench.invalid/${run}`;
await createResourceServer(db, { identifier: api, scopes: ['api:read'] }, { production: true });
const machine = (await createClient(db, secrets, { name: 'Bench machine', machine: true, scope: 'api:read' }, { production: true })) as ClientCreds;

let statements: string[] = [];
db.on("query", (q: { sql: string; bindings?: unknown[] }) => statements.push(`${q.sql} ${q.sql.includes("oidc_payloads") ? JSON.stringify(q.bindings?.slice(0, 1)) : ""}`));
async function count(label: string, fn: () => Promise<unknown>): Promise<void> {
  statements = [];
  await fn();
  process.stdout.write(`${String(statements.length).padStart(3)}  ${label}\n`);
  if (verbose) for (const s of statements) process.stdout.write(`       ${s.slice(0, 160)}\n`);
}

const user = { email, password };
let first: Awaited<ReturnType<typeof signIn>> | undefined;
await count('first sign-in (email code, trust: yes, offline_access)', async () => {
  first = await signIn(server.url, web, user, { mailbox, scope: 'openid email profile offline_access', prompt: 'consent', trust: 'yes' });
});
await count('repeat sign-in on the trusted device', async () => {
  const browser = new Browser();
  for (const c of first!.trustCookies) browser.jar.set(c);
  await signIn(server.url, web, user, { browser, mailbox, scope: 'openid email profile' });
});
let rt = first!.refreshToken!;
let at = first!.accessToken;
await count('refresh_token grant', async () => {
  ({ refreshToken: rt, accessToken: at } = await refresh(server.url, web, rt));
});
await count('client_credentials grant', () => clientCredentials(server.url, machine, api));
await count('introspection', () => introspect(server.url, web, at));

await server.close();
await db.destroy();
await mailbox.stop();
