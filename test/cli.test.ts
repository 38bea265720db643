import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { migrations } from '../migrations/index.js';
import { runCommand, type CommandContext } from '../src/cli/commands.js';
import { resetData, testEnv } from './support/env.js';

function commandContext(stdin?: string): CommandContext {
  const { services } = testEnv().server.app;
  return { ...services, stdin };
}

const run = (argv: string[], stdin?: string) => runCommand(commandContext(stdin), argv);

describe('operator CLI commands', () => {
  beforeEach(resetData);

  it('creates a customer with a generated 7-digit number, or the given one', async () => {
    const generated = await run(['customer', 'create', '--name', 'ACME GmbH']);
    expect(generated.exitCode).to.equal(0);
    expect(generated.output!.customer_number).to.match(/^\d{7}$/);
    const given = await run(['customer', 'create', '--name', 'Beta AG', '--customer-number', '100200']);
    expect(given.output).to.include({ customer_number: '100200', name: 'Beta AG' });
    const duplicate = await run(['customer', 'create', '--name', 'Gamma', '--customer-number', '100200']);
    expect(duplicate).to.deep.equal({ exitCode: 1, error: 'Customer number 100200 already exists.' });
    const bad = await run(['customer', 'create', '--name', 'Delta', '--customer-number', '12ab']);
    expect(bad.exitCode).to.equal(1);
    expect(bad.error).to.include('4 to 12 digits');
  });

  it('creates users with a password from stdin, refuses duplicates and unknown customers', async () => {
    await run(['customer', 'create', '--name', 'ACME', '--customer-number', '700001']);
    const owner = await run(['user', 'create', '--customer', '700001', '--email', 'Boss@Example.com', '--name', 'Boss', '--owner', '--password-stdin'], 'a long enough password\n');
    expect(owner.exitCode).to.equal(0);
    expect(owner.output).to.include({ email: 'boss@example.com', role: 'admin', owner: true, status: 'active', customer_number: '700001' });
    const stored = await testEnv().db('users').where({ email: 'boss@example.com' }).first();
    expect(stored.password_hash).to.match(/^\$argon2id\$/);

    const dup = await run(['user', 'create', '--customer', '700001', '--email', 'BOSS@example.com', '--name', 'Again', '--no-invite']);
    expect(dup).to.deep.equal({ exitCode: 1, error: 'A user with email boss@example.com already exists.' });
    const unknown = await run(['user', 'create', '--customer', '999999', '--email', 'x@example.com', '--name', 'X', '--no-invite']);
    expect(unknown).to.deep.equal({ exitCode: 1, error: 'No customer with number 999999.' });
    const secondOwner = await run(['user', 'create', '--customer', '700001', '--email', 'o2@example.com', '--name', 'O2', '--owner', '--no-invite']);
    expect(secondOwner.error).to.equal('Customer 700001 already has an owner.');
    const invited = await run(['user', 'create', '--customer', '700001', '--email', 'new@example.com', '--name', 'New', '--google-email', 'new@gmail.com']);
    expect(invited.output).to.include({ status: 'invited', google_email: 'new@gmail.com', invitation_sent: true });
  });

  it('refuses bad user input with a clear message and stores nothing', async () => {
    await run(['customer', 'create', '--name', 'ACME', '--customer-number', '700002']);
    const cases: [string[], string | undefined, RegExp][] = [
      [['--email', 'not-an-email', '--name', 'X'], undefined, /not a valid email/],
      [['--email', 'a@example.com', '--name', 'X', '--role', 'root'], undefined, /admin or user/],
      [['--email', 'a@example.com', '--name', '   '], undefined, /name is required/],
      [['--email', 'a@example.com', '--name', 'X', '--password-stdin'], 'short', /at least 8 characters/],
      [['--email', 'a@example.com', '--name', 'X', '--password-stdin'], '', /standard input is empty/],
      [['--email', 'a@example.com', '--name', 'X', '--google-email', 'nope'], undefined, /not a valid email/],
    ];
    for (const [args, stdin, message] of cases) {
      const result = await run(['user', 'create', '--customer', '700002', ...args], stdin);
      expect(result.exitCode, args.join(' ')).to.be.oneOf([1, 2]);
      expect(result.error).to.match(message);
    }
    expect(await testEnv().db('users').count({ n: '*' }).first()).to.deep.equal({ n: 0 });
  });

  it('registers, lists and deletes clients; refuses malformed redirect URIs and unknown grants', async () => {
    const created = await run(['client', 'create', '--name', 'Web', '--redirect-uri', 'https://app.example.com/cb', '--redirect-uri', 'http://localhost:8080/cb', '--grant', 'refresh_token', '--first-party']);
    expect(created.exitCode).to.equal(0);
    expect(created.output).to.have.keys('client_id', 'client_secret');
    const row = await testEnv().db('oidc_clients').where({ client_id: created.output!.client_id }).first();
    expect(JSON.stringify(row)).not.to.include(created.output!.client_secret as string);

    const pub = await run(['client', 'create', '--name', 'Softphone', '--redirect-uri', 'com.example.softphone:/callback', '--public']);
    expect(pub.output).to.have.keys('client_id');

    const list = await run(['client', 'list']);
    const clients = list.output!.clients as { client_id: string; first_party: boolean; grant_types: string[]; token_endpoint_auth_method: string }[];
    expect(clients.map((c) => c.client_id)).to.deep.equal([created.output!.client_id, pub.output!.client_id]);
    expect(clients[0]).to.include({ first_party: true });
    expect(clients[0]!.grant_types).to.deep.equal(['authorization_code', 'refresh_token']);
    expect(clients[1]).to.include({ token_endpoint_auth_method: 'none' });
    expect(JSON.stringify(list.output)).not.to.include('secret"');

    for (const [uri, message] of [
      ['not a url', /not an absolute URL/],
      ['https://app.example.com/cb#frag', /fragment/],
      ['http://app.example.com/cb', /must use https/],
      ['javascript:alert(1)', /must use https/],
    ] as const) {
      const bad = await run(['client', 'create', '--name', 'Bad', '--redirect-uri', uri]);
      expect(bad.exitCode, uri).to.equal(1);
      expect(bad.error).to.match(message);
    }
    expect((await run(['client', 'create', '--name', 'Bad', '--redirect-uri', 'https://a.example/cb', '--grant', 'implicit'])).error).to.match(/Unknown grant/);
    expect((await run(['client', 'create', '--name', 'No URI'])).error).to.match(/At least one --redirect-uri/);

    expect(await run(['client', 'delete', '--client-id', created.output!.client_id as string])).to.deep.equal({ exitCode: 0, output: { deleted: created.output!.client_id } });
    expect(await run(['client', 'delete', '--client-id', created.output!.client_id as string])).to.deep.equal({ exitCode: 1, error: `No client with id ${created.output!.client_id}.` });
    expect((await run(['client', 'list'])).output!.clients).to.have.length(1);
  });

  it('registers each client kind and refuses inconsistent options', async () => {
    const machine = await run(['client', 'create', '--machine', '--name', 'Sync', '--scope', 'api:read api:write', '--auth-method', 'client_secret_post']);
    expect(machine.output).to.have.keys('client_id', 'client_secret');
    const shown = await run(['client', 'show', '--client-id', machine.output!.client_id as string]);
    expect(shown.output).to.include({ kind: 'machine', token_endpoint_auth_method: 'client_secret_post' });
    expect(shown.output!.grant_types).to.deep.equal(['client_credentials']);
    expect(shown.output!.redirect_uris).to.deep.equal([]);
    expect(shown.output!.api_scopes).to.deep.equal(['api:read', 'api:write']);
    const web = await run(['client', 'create', '--name', 'Web', '--redirect-uri', 'https://app.example.com/cb', '--backchannel-logout-uri', 'https://app.example.com/bcl', '--id-token-alg', 'ES256']);
    expect((await run(['client', 'show', '--client-id', web.output!.client_id as string])).output).to.include({ kind: 'web', backchannel_logout_uri: 'https://app.example.com/bcl' });

    const cases: [string[], number, RegExp][] = [
      [['--machine', '--name', 'M', '--redirect-uri', 'https://a.example/cb', '--scope', 'x'], 2, /no --redirect-uri/],
      [['--machine', '--name', 'M'], 1, /needs the API scopes/],
      [['--name', 'W', '--redirect-uri', 'https://a.example/cb', '--scope', 'x'], 2, /--scope is for machine clients/],
      [['--name', 'W', '--redirect-uri', 'https://a.example/cb', '--auth-method', 'private_key_jwt'], 1, /needs the client's public keys/],
      [['--name', 'W', '--redirect-uri', 'https://a.example/cb', '--auth-method', 'private_key_jwt', '--jwks', '{not json'], 1, /not valid JSON/],
      [['--name', 'W', '--redirect-uri', 'https://a.example/cb', '--auth-method', 'private_key_jwt', '--jwks', '{"keys":[{"kty":"EC","d":"secret"}]}'], 1, /public keys/],
      [['--name', 'W', '--redirect-uri', 'https://a.example/cb', '--auth-method', 'client_secret_jwt'], 1, /Unknown token endpoint authentication method/],
      [['--name', 'W', '--redirect-uri', 'https://a.example/cb', '--auth-method', 'none'], 1, /Use --public/],
      [['--name', 'W', '--redirect-uri', 'https://a.example/cb', '--public', '--auth-method', 'client_secret_basic'], 1, /public client has no credentials/],
      [['--name', 'W', '--public', '--machine', '--scope', 'x'], 1, /either public or a machine/],
      [['--name', 'W', '--redirect-uri', 'https://a.example/cb', '--backchannel-logout-uri', 'http://rp.example.com/bcl'], 1, /must use https/],
      [['--name', 'W', '--redirect-uri', 'https://a.example/cb', '--id-token-alg', 'HS256'], 1, /RS256 or ES256/],
      [['--name', 'W', '--redirect-uri', 'https://a.example/cb', '--public', '--grant', 'client_credentials'], 1, /public client cannot use client_credentials/],
    ];
    for (const [args, code, message] of cases) {
      const result = await run(['client', 'create', ...args]);
      expect(result.exitCode, args.join(' ')).to.equal(code);
      expect(result.error, args.join(' ')).to.match(message);
    }
    expect((await run(['client', 'list'])).output!.clients).to.have.length(2);
  });

  it('in production allows http on loopback only for public clients', async () => {
    const production = (argv: string[]) => runCommand({ ...commandContext(), config: { ...testEnv().config, production: true } }, argv);
    const confidential = await production(['client', 'create', '--name', 'Web', '--redirect-uri', 'http://localhost:8080/cb']);
    expect(confidential.exitCode).to.equal(1);
    expect(confidential.error).to.match(/must use https/);
    const native = await production(['client', 'create', '--name', 'Desktop', '--public', '--redirect-uri', 'http://127.0.0.1:7777/cb']);
    expect(native.exitCode).to.equal(0);
    const bcl = await production(['client', 'create', '--name', 'Web', '--redirect-uri', 'https://a.example/cb', '--backchannel-logout-uri', 'http://localhost/bcl']);
    expect(bcl.error).to.match(/must use https/);
  });

  it('updates redirect URIs and rotates secrets with the same rules', async () => {
    const created = await run(['client', 'create', '--name', 'Web', '--redirect-uri', 'https://app.example.com/cb']);
    const clientId = created.output!.client_id as string;
    const updated = await run(['client', 'update', '--client-id', clientId, '--redirect-uri', 'https://new.example.com/cb', '--post-logout-redirect-uri', 'https://new.example.com/']);
    expect(updated.output).to.deep.include({ redirect_uris: ['https://new.example.com/cb'], post_logout_redirect_uris: ['https://new.example.com/'] });
    expect((await run(['client', 'update', '--client-id', clientId, '--redirect-uri', 'https://new.example.com/#x'])).error).to.match(/fragment/);
    expect((await run(['client', 'update', '--client-id', clientId])).error).to.match(/At least one redirect URI/);
    expect((await run(['client', 'update', '--client-id', 'nope', '--redirect-uri', 'https://a.example/cb'])).error).to.equal('No client with id nope.');

    const rotated = await run(['client', 'rotate-secret', '--client-id', clientId]);
    expect(rotated.output!.client_secret).to.be.a('string').and.not.equal(created.output!.client_secret);
    const pub = await run(['client', 'create', '--name', 'SPA', '--public', '--redirect-uri', 'https://spa.example.com/cb']);
    expect((await run(['client', 'rotate-secret', '--client-id', pub.output!.client_id as string])).error).to.match(/has no secret to rotate/);
  });

  it('a deleted client can no longer start a sign-in', async () => {
    const created = await run(['client', 'create', '--name', 'Gone', '--redirect-uri', 'http://127.0.0.1:9/cb']);
    const clientId = created.output!.client_id as string;
    const auth = `${testEnv().url}/auth?client_id=${clientId}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('http://127.0.0.1:9/cb')}`;
    expect((await fetch(auth, { redirect: 'manual' })).status).to.equal(303);
    await run(['client', 'delete', '--client-id', clientId]);
    expect((await fetch(auth, { redirect: 'manual' })).status).to.equal(400);
  });

  it('answers usage errors with exit code 2 and the usage text', async () => {
    for (const argv of [[], ['bogus'], ['client'], ['client', 'create', '--nme', 'x'], ['customer', 'create'], ['client', 'list', 'extra']]) {
      const result = await run(argv);
      expect(result.exitCode, argv.join(' ')).to.equal(2);
      expect(result.error).to.include('Usage: idp <command>');
    }
  });
});

interface Exec {
  code: number | null;
  stdout: string;
  stderr: string;
}

function exec(command: string, args: string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<Exec> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, cwd: process.cwd() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

const idp = (args: string[], env: NodeJS.ProcessEnv, stdin?: string) => exec(process.execPath, ['bin/idp.js', ...args], env, stdin);

describe('the idp command on embedded PGlite (separate processes)', function () {
  this.timeout(120_000);
  let dataDir: string;
  const env = () => ({ DATA_DIR: dataDir, DATABASE_URL: '', PORT: '0', LOG_LEVEL: 'warn' });

  before(() => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'idp-cli-'));
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('works with no server running: JSON on stdout, errors on stderr with a non-zero exit', async () => {
    const migrate = await idp(['migrate'], env());
    expect(migrate.code, migrate.stderr).to.equal(0);
    expect(JSON.parse(migrate.stdout).applied).to.deep.equal(Object.keys(migrations).sort());
    const customer = await idp(['customer', 'create', '--name', 'Solo', '--customer-number', '3100'], env());
    expect(JSON.parse(customer.stdout)).to.include({ customer_number: '3100' });
    const bad = await idp(['client', 'create', '--name', 'x', '--redirect-uri', 'ftp://x'], env());
    expect(bad.code).to.equal(1);
    expect(bad.stdout).to.equal('');
    expect(bad.stderr).to.match(/^error: The redirect URI "ftp:\/\/x" must use https/);
  });

  it('hands commands to a running server over its Unix socket, and the server uses the result at once', async () => {
    const server = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env: { ...process.env, ...env(), LOG_LEVEL: 'info' } });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        server.stdout.on('data', (d) => {
          out += d;
          const m = /"port":(\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        server.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
      });
      const socket = path.join(dataDir, 'idp.sock');
      // The server logs "listening" before it opens the control socket: wait for the socket.
      for (let i = 0; i < 100 && !existsSync(socket); i += 1) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(statSync(socket).mode & 0o777).to.equal(0o600);

      const user = await idp(['user', 'create', '--customer', '3100', '--email', 'solo@example.com', '--name', 'Solo', '--owner', '--password-stdin'], env(), 'lone rider 12345\n');
      expect(user.code, user.stderr).to.equal(0);
      expect(JSON.parse(user.stdout)).to.include({ email: 'solo@example.com', owner: true });
      const client = await idp(['client', 'create', '--name', 'Live', '--redirect-uri', 'http://127.0.0.1:9/cb'], env());
      const { client_id: clientId } = JSON.parse(client.stdout) as { client_id: string };
      const dup = await idp(['user', 'create', '--customer', '3100', '--email', 'solo@example.com', '--name', 'Solo', '--no-invite'], env());
      expect(dup.code).to.equal(1);
      expect(dup.stderr).to.include('already exists');

      // The running server knows the client registered through the socket.
      const auth = await fetch(`http://127.0.0.1:${port}/auth?client_id=${clientId}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('http://127.0.0.1:9/cb')}`, { redirect: 'manual' });
      expect(auth.status).to.equal(303);
      expect(auth.headers.get('location')).to.match(/^\/interaction\//);
    } finally {
      server.kill('SIGTERM');
      await new Promise((resolve) => server.once('exit', resolve));
    }
    // After a clean shutdown the socket is gone and the CLI opens the database itself again.
    const list = await idp(['client', 'list'], env());
    expect(JSON.parse(list.stdout).clients).to.have.length(1);
  });
});
