// `npm run example`: starts the example relying party on http://localhost:8080 against the provider at
// IDP_ISSUER (default http://localhost:3000). On its first run it registers itself with the operator CLI
// (a client with a back-channel logout URI) and creates a demo user, and keeps both in
// DATA_DIR/example-client.json (mode 0600). CLIENT_ID and CLIENT_SECRET use an existing client instead.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startExample } from './app.js';

const issuer = process.env.IDP_ISSUER ?? 'http://localhost:3000';
const port = Number(process.env.EXAMPLE_PORT ?? 8080);
const dataDir = path.resolve(process.env.DATA_DIR ?? './data');
const stateFile = path.join(dataDir, 'example-client.json');
const idpCli = fileURLToPath(new URL('../../bin/idp.js', import.meta.url));

interface State {
  baseUrl: string;
  clientId: string;
  clientSecret: string;
  demo?: { email: string; password: string };
}

function idp(args: string[], stdin?: string): Record<string, unknown> {
  const result = spawnSync(process.execPath, [idpCli, ...args], { input: stdin ?? '', encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`idp ${args.slice(0, 2).join(' ')} failed: ${result.stderr.trim()}`);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

function register(baseUrl: string): State {
  const client = idp([
    'client', 'create', '--name', 'Example app',
    '--redirect-uri', `${baseUrl}/cb`,
    '--post-logout-redirect-uri', `${baseUrl}/`,
    '--backchannel-logout-uri', `${baseUrl}/backchannel-logout`,
    '--grant', 'refresh_token',
  ]);
  const state: State = { baseUrl, clientId: client.client_id as string, clientSecret: client.client_secret as string };
  const email = 'demo@example.com';
  const password = randomBytes(12).toString('base64url');
  try {
    const customer = idp(['customer', 'create', '--name', 'Example customer']);
    idp(['user', 'create', '--customer', customer.customer_number as string, '--email', email, '--name', 'Demo User', '--owner', '--password-stdin', '--no-invite'], `${password}\n`);
    state.demo = { email, password };
  } catch (error) {
    process.stderr.write(`note: no demo user created (${(error as Error).message}); sign in with a user of your own.\n`);
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(stateFile, JSON.stringify(state, null, 2), { mode: 0o600 });
  return state;
}

let state: State | undefined;
const running = await startExample({
  issuer,
  port,
  host: '127.0.0.1',
  publicHost: 'localhost',
  credentials: async (baseUrl) => {
    if (process.env.CLIENT_ID && process.env.CLIENT_SECRET) return { clientId: process.env.CLIENT_ID, clientSecret: process.env.CLIENT_SECRET };
    const saved = existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, 'utf8')) as State) : undefined;
    state = saved?.baseUrl === baseUrl ? saved : register(baseUrl);
    return state;
  },
});

process.stdout.write(`Example app on ${running.url} (provider ${issuer})\n`);
if (state?.demo) process.stdout.write(`Sign in as ${state.demo.email} with the password ${state.demo.password}\n`);
process.on('SIGINT', () => void running.close().then(() => process.exit(0)));
process.on('SIGTERM', () => void running.close().then(() => process.exit(0)));
