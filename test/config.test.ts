import { expect } from 'chai';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../src/config.js';
import { catalogueKeys } from '../src/i18n/index.js';
import { Secrets } from '../src/security/crypto.js';

describe('configuration', () => {
  it('generates development secrets once and keeps them under DATA_DIR with mode 0600', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'idp-config-'));
    const first = loadConfig({ DATA_DIR: dir });
    const second = loadConfig({ DATA_DIR: dir });
    expect(first.cookieKeys).to.deep.equal(second.cookieKeys);
    expect(first.dataEncryptionKey.equals(second.dataEncryptionKey)).to.equal(true);
    expect(statSync(path.join(dir, 'secrets.json')).mode & 0o777).to.equal(0o600);
    expect(first).to.include({ port: 3000, issuer: 'http://localhost:3000', databaseUrl: undefined });
    expect(first.pgliteDir).to.equal(path.join(dir, 'pgdata'));
    expect(JSON.parse(readFileSync(path.join(dir, 'secrets.json'), 'utf8'))).to.have.keys('cookieKeys', 'dataEncryptionKey');
  });

  it('keeps clients in memory unless CLIENT_CACHE turns it off', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'idp-config-'));
    expect(loadConfig({ DATA_DIR: dir }).clientCache).to.equal(true);
    expect(loadConfig({ DATA_DIR: dir, CLIENT_CACHE: 'on' }).clientCache).to.equal(true);
    for (const off of ['off', 'false', '0', 'no']) expect(loadConfig({ DATA_DIR: dir, CLIENT_CACHE: off }).clientCache).to.equal(false);
  });

  it('refuses to start in production without secrets and issuer', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).to.throw(ConfigError, /COOKIE_KEYS, DATA_ENCRYPTION_KEY, ISSUER/);
  });

  it('accepts production settings', () => {
    const config = loadConfig({
      NODE_ENV: 'production',
      ISSUER: 'https://id.example.com/',
      COOKIE_KEYS: 'a-very-long-cookie-key-1,a-very-long-cookie-key-0',
      DATA_ENCRYPTION_KEY: 'ab'.repeat(32),
      DATABASE_URL: 'postgres://idp@db/idp',
      TRUST_PROXY: 'true',
    });
    expect(config).to.include({ production: true, issuer: 'https://id.example.com', trustProxy: true, databaseUrl: 'postgres://idp@db/idp' });
    expect(config.cookieKeys).to.have.length(2);
  });

  it('reads the Google settings; the issuer defaults to Google and may be http:// only on this machine', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'idp-config-'));
    expect(loadConfig({ DATA_DIR: dir }).google).to.equal(undefined);
    expect(loadConfig({ DATA_DIR: dir, GOOGLE_CLIENT_ID: 'id', GOOGLE_CLIENT_SECRET: 'secret' }).google).to.deep.equal({
      clientId: 'id',
      clientSecret: 'secret',
      issuer: 'https://accounts.google.com',
    });
    const local = loadConfig({ DATA_DIR: dir, GOOGLE_CLIENT_ID: 'id', GOOGLE_CLIENT_SECRET: 'secret', GOOGLE_ISSUER: 'http://127.0.0.1:4000' });
    expect(local.google!.issuer).to.equal('http://127.0.0.1:4000');
  });

  for (const [name, env, message] of [
    ['a non-numeric port', { PORT: 'eighty' }, /PORT/],
    ['a non-URL issuer', { ISSUER: 'not a url' }, /ISSUER/],
    ['a DATABASE_URL of another kind', { DATABASE_URL: 'mysql://x' }, /DATABASE_URL/],
    ['a short encryption key', { DATA_ENCRYPTION_KEY: 'abcd', COOKIE_KEYS: 'x'.repeat(20) }, /32 bytes/],
    ['half a Google configuration', { GOOGLE_CLIENT_ID: 'id' }, /GOOGLE_CLIENT_SECRET/],
    ['a plain-http Google issuer that is not on this machine', { GOOGLE_ISSUER: 'http://accounts.example.com' }, /GOOGLE_ISSUER must be an https/],
    ['a CLIENT_CACHE that is neither on nor off', { CLIENT_CACHE: 'maybe' }, /CLIENT_CACHE/],
  ] as const) {
    it(`refuses ${name}`, () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'idp-config-'));
      expect(() => loadConfig({ DATA_DIR: dir, ...env })).to.throw(ConfigError, message);
    });
  }
});

describe('secrets at rest', () => {
  const secrets = new Secrets(Buffer.alloc(32, 7));

  it('encrypts with authentication and binds the ciphertext to its purpose', () => {
    const sealed = secrets.encrypt('private key material', 'jwk:1');
    expect(sealed).not.to.include('private');
    expect(secrets.decrypt(sealed, 'jwk:1')).to.equal('private key material');
    expect(() => secrets.decrypt(sealed, 'jwk:2')).to.throw();
    const tampered = sealed.slice(0, -2) + (sealed.endsWith('A') ? 'BB' : 'AA');
    expect(() => secrets.decrypt(tampered, 'jwk:1')).to.throw();
  });

  it('keyed hashes depend on the key and the purpose', () => {
    const other = new Secrets(Buffer.alloc(32, 8));
    expect(secrets.keyedHash('123456', 'email-code')).to.equal(secrets.keyedHash('123456', 'email-code'));
    expect(secrets.keyedHash('123456', 'email-code')).not.to.equal(secrets.keyedHash('123456', 'reset'));
    expect(secrets.keyedHash('123456', 'email-code')).not.to.equal(other.keyedHash('123456', 'email-code'));
  });
});

describe('message catalogues', () => {
  it('English and German have the same keys', () => {
    expect(catalogueKeys('de')).to.deep.equal(catalogueKeys('en'));
  });
});
