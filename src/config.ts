// All settings come from the environment, are validated once here, and are passed around typed.
// In development, missing secrets are generated and kept under DATA_DIR; in production they are required.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { contrastRatio, MIN_CONTRAST, normalizeHexColor, readBrandLogo } from './http/brand.js';

export interface Config {
  production: boolean;
  port: number;
  host: string;
  issuer: string;
  dataDir: string;
  /** PostgreSQL connection string; undefined means embedded PGlite. */
  databaseUrl: string | undefined;
  /** For embedded PGlite: a directory, or 'memory' for an in-memory database (tests). */
  pgliteDir: string;
  smtpUrl: string | undefined;
  mailFrom: string;
  /** Keys for signed cookies, newest first (the first signs, all verify). */
  cookieKeys: string[];
  /** 32-byte key that encrypts secrets at rest and keys the hashes of codes and tokens. */
  dataEncryptionKey: Buffer;
  google: { clientId: string; clientSecret: string; issuer: string } | undefined;
  trustProxy: boolean;
  /** argon2id cost; OWASP's minimum by default. */
  argon2: { memoryCost: number; timeCost: number; parallelism: number };
  logLevel: 'silent' | 'error' | 'warn' | 'info' | 'debug';
  /** Name shown in authenticator apps, mail and the page header (when there is no logo). */
  brandName: string;
  /** Main colour of the pages (#rrggbb, at least 4.5:1 against white); unset = the default blue. */
  brandColor?: string | undefined;
  /** A PNG or SVG file shown at the top of every page, served at /static/logo. */
  brandLogoPath?: string | undefined;
  /** Enables the operator pages under /ops (at least 32 characters); unset = no operator pages. */
  opsToken?: string | undefined;
  /** Serves GET /metrics on the main port to callers presenting this bearer token; unset = no /metrics there. */
  metricsToken?: string | undefined;
  /** Serves GET /metrics without a token on this separate port (bound to HOST); unset = no metrics listener. */
  metricsPort?: number | undefined;
  /**
   * Keep registered clients in memory, dropped on every change through PostgreSQL's LISTEN/NOTIFY
   * (default on). Turn off where notifications do not reach the instances (PgBouncer in transaction mode).
   */
  clientCache?: boolean | undefined;
}

export class ConfigError extends Error {}

const optionalString = z
  .string()
  .transform((s) => s.trim())
  .optional()
  .transform((s) => (s ? s : undefined));

const booleanFlag = z
  .enum(['', '0', '1', 'true', 'false', 'yes', 'no'])
  .optional()
  .transform((v) => v === '1' || v === 'true' || v === 'yes');

const envSchema = z.object({
  NODE_ENV: optionalString,
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: optionalString,
  ISSUER: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  DATA_DIR: optionalString,
  DATABASE_URL: optionalString.pipe(z.string().regex(/^postgres(ql)?:\/\//, 'must start with postgres://').optional()),
  SMTP_URL: optionalString.pipe(z.string().regex(/^smtps?:\/\//, 'must start with smtp:// or smtps://').optional()),
  MAIL_FROM: optionalString,
  COOKIE_KEYS: optionalString,
  DATA_ENCRYPTION_KEY: optionalString,
  GOOGLE_CLIENT_ID: optionalString,
  GOOGLE_CLIENT_SECRET: optionalString,
  GOOGLE_ISSUER: optionalString.pipe(z.url().optional()),
  TRUST_PROXY: booleanFlag,
  ARGON2_MEMORY_KIB: z.coerce.number().int().min(8192).max(1048576).default(19456),
  ARGON2_TIME_COST: z.coerce.number().int().min(1).max(20).default(2),
  ARGON2_PARALLELISM: z.coerce.number().int().min(1).max(16).default(1),
  LOG_LEVEL: z.enum(['silent', 'error', 'warn', 'info', 'debug']).default('info'),
  BRAND_NAME: optionalString.pipe(z.string().max(60, 'at most 60 characters').optional()),
  BRAND_COLOR: optionalString,
  BRAND_LOGO_PATH: optionalString,
  OPS_TOKEN: optionalString.pipe(z.string().min(32, 'must be at least 32 characters').optional()),
  METRICS_TOKEN: optionalString.pipe(z.string().min(32, 'must be at least 32 characters').optional()),
  METRICS_PORT: optionalString.pipe(z.string().regex(/^\d{1,5}$/, 'must be a port number').transform(Number).pipe(z.number().int().min(1).max(65535)).optional()),
  CLIENT_CACHE: z
    .enum(['', '0', '1', 'true', 'false', 'yes', 'no', 'on', 'off'])
    .optional()
    .transform((v) => !(v === '0' || v === 'false' || v === 'no' || v === 'off')),
});

interface DevSecrets {
  cookieKeys: string[];
  dataEncryptionKey: string;
}

/** Reads (or, in development, creates) the secrets kept in DATA_DIR/secrets.json with mode 0600. */
function devSecrets(dataDir: string): DevSecrets {
  const file = path.join(dataDir, 'secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as DevSecrets;
  const secrets: DevSecrets = {
    cookieKeys: [randomBytes(32).toString('base64url')],
    dataEncryptionKey: randomBytes(32).toString('base64url'),
  };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600, flag: 'wx' });
  return secrets;
}

export function parseEncryptionKey(value: string): Buffer {
  const key = /^[0-9a-f]{64}$/i.test(value) ? Buffer.from(value, 'hex') : Buffer.from(value, 'base64url');
  if (key.length !== 32) {
    throw new ConfigError('DATA_ENCRYPTION_KEY must be 32 bytes, as 64 hex characters or base64url');
  }
  return key;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`Invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  const dataDir = path.resolve(e.DATA_DIR ?? './data');

  let cookieKeys = e.COOKIE_KEYS?.split(',').map((k) => k.trim()).filter(Boolean);
  let encryptionKey = e.DATA_ENCRYPTION_KEY;
  if (production) {
    const missing = [
      !cookieKeys?.length && 'COOKIE_KEYS',
      !encryptionKey && 'DATA_ENCRYPTION_KEY',
      !e.ISSUER && 'ISSUER',
    ].filter(Boolean);
    if (missing.length) throw new ConfigError(`NODE_ENV=production requires ${missing.join(', ')} to be set`);
  } else if (!cookieKeys?.length || !encryptionKey) {
    const generated = devSecrets(dataDir);
    cookieKeys = cookieKeys?.length ? cookieKeys : generated.cookieKeys;
    encryptionKey ??= generated.dataEncryptionKey;
  }
  if (cookieKeys!.some((k) => k.length < 16)) throw new ConfigError('each of COOKIE_KEYS must be at least 16 characters');

  const googleParts = [e.GOOGLE_CLIENT_ID, e.GOOGLE_CLIENT_SECRET];
  if (googleParts.some(Boolean) && !googleParts.every(Boolean)) {
    throw new ConfigError('GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET must be set together');
  }
  if (e.GOOGLE_ISSUER) {
    const issuer = new URL(e.GOOGLE_ISSUER);
    const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(issuer.hostname);
    if (issuer.protocol !== 'https:' && !(issuer.protocol === 'http:' && loopback)) {
      throw new ConfigError('GOOGLE_ISSUER must be an https:// URL (http:// only on 127.0.0.1 or localhost)');
    }
  }

  let brandColor: string | undefined;
  if (e.BRAND_COLOR) {
    brandColor = normalizeHexColor(e.BRAND_COLOR);
    if (!brandColor) throw new ConfigError('BRAND_COLOR must be a hex colour such as #0b5cad');
    const contrast = contrastRatio(brandColor, '#ffffff');
    if (contrast < MIN_CONTRAST) {
      throw new ConfigError(`BRAND_COLOR ${brandColor} has a contrast of ${contrast.toFixed(1)}:1 against white; buttons and links need at least ${MIN_CONTRAST}:1 (choose a darker shade)`);
    }
  }
  const brandLogoPath = e.BRAND_LOGO_PATH ? path.resolve(e.BRAND_LOGO_PATH) : undefined;
  if (brandLogoPath) {
    try {
      readBrandLogo(brandLogoPath);
    } catch (error) {
      throw new ConfigError(`BRAND_LOGO_PATH: ${(error as Error).message}`);
    }
  }

  return {
    production,
    port: e.PORT,
    host: e.HOST ?? '0.0.0.0',
    issuer: (e.ISSUER ?? `http://localhost:${e.PORT}`).replace(/\/+$/, ''),
    dataDir,
    databaseUrl: e.DATABASE_URL,
    pgliteDir: path.join(dataDir, 'pgdata'),
    smtpUrl: e.SMTP_URL,
    mailFrom: e.MAIL_FROM ?? 'Sign-in <no-reply@localhost>',
    cookieKeys: cookieKeys!,
    dataEncryptionKey: parseEncryptionKey(encryptionKey!),
    google: e.GOOGLE_CLIENT_ID
      ? { clientId: e.GOOGLE_CLIENT_ID, clientSecret: e.GOOGLE_CLIENT_SECRET!, issuer: e.GOOGLE_ISSUER ?? 'https://accounts.google.com' }
      : undefined,
    trustProxy: e.TRUST_PROXY,
    argon2: { memoryCost: e.ARGON2_MEMORY_KIB, timeCost: e.ARGON2_TIME_COST, parallelism: e.ARGON2_PARALLELISM },
    logLevel: e.LOG_LEVEL,
    brandName: e.BRAND_NAME ?? 'Telephony IdP',
    brandColor,
    brandLogoPath,
    opsToken: e.OPS_TOKEN,
    metricsToken: e.METRICS_TOKEN,
    metricsPort: e.METRICS_PORT,
    clientCache: e.CLIENT_CACHE,
  };
}
