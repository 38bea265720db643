// Signing keys live in the database (private parts encrypted), so every instance signs with the same keys.
//
// Life cycle, recorded as timestamps so that every instance computes the same JWKS from the database:
//   next     created, published in the JWKS, not signing yet (until activates_at)
//   active   the signing key of its algorithm (activates_at ≤ now < retired_at)
//   retired  no longer signs, still published so tokens it signed keep verifying (retired_at ≤ now < expires_at)
//   expired  unpublished, deleted by the periodic clean-up (expires_at ≤ now)
// `keys rotate` adds a `next` key per algorithm and schedules the current key's retirement for the moment
// the new one activates, and its removal RETIRED_KEY_RETENTION later.
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { affectedRows, type Db } from '../db/index.js';
import { DomainError } from '../errors.js';
import type { Secrets } from '../security/crypto.js';

/** RS256 first: it is the default ID token algorithm; ES256 is offered to clients that ask for it. */
export const SIGNING_ALGS = ['RS256', 'ES256'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

/**
 * The longest lifetime of anything signed with these keys: JWT access tokens (a resource server's token
 * lifetime is capped at this), ID tokens (1 hour) and logout tokens.
 */
export const MAX_SIGNED_TOKEN_LIFETIME = 24 * 60 * 60;
/** A retired key stays published this long: every token it signed has expired by then (plus clock skew). */
export const RETIRED_KEY_RETENTION = MAX_SIGNED_TOKEN_LIFETIME + 60 * 60;
/** Default time between publishing a new key and signing with it (instances and relying parties refresh their JWKS). */
export const DEFAULT_ACTIVATION_DELAY = 60 * 60;

const ADVISORY_LOCK = 7_341_001;

export type KeyState = 'next' | 'active' | 'retired' | 'expired';

interface KeyMeta {
  kid: string;
  alg: SigningAlg;
  created_at: Date;
  activates_at: Date;
  retired_at: Date | null;
  expires_at: Date | null;
}

interface KeyRow extends KeyMeta {
  private_jwk_encrypted: string;
}

export interface KeyInfo {
  kid: string;
  alg: SigningAlg;
  state: KeyState;
  /** True for the one key per algorithm that signs now. */
  signing: boolean;
  created_at: Date;
  activates_at: Date;
  retired_at: Date | null;
  expires_at: Date | null;
}

const META_COLUMNS = ['kid', 'alg', 'created_at', 'activates_at', 'retired_at', 'expires_at'] as const;

export function keyState(key: KeyMeta, now: Date): KeyState {
  const t = now.getTime();
  if (key.expires_at && key.expires_at.getTime() <= t) return 'expired';
  if (key.retired_at && key.retired_at.getTime() <= t) return 'retired';
  if (key.activates_at.getTime() > t) return 'next';
  return 'active';
}

/**
 * The keys to publish, in the order oidc-provider needs them: the signing key of each algorithm first
 * (oidc-provider signs with the first key that fits an algorithm), then every other published key.
 */
export function publishedKeys<K extends KeyMeta>(rows: K[], now: Date): (K & { state: KeyState; signing: boolean })[] {
  const withState = rows.map((k) => ({ ...k, state: keyState(k, now), signing: false })).filter((k) => k.state !== 'expired');
  const newestFirst = (a: KeyMeta, b: KeyMeta) => b.activates_at.getTime() - a.activates_at.getTime() || a.kid.localeCompare(b.kid);
  const signers: typeof withState = [];
  for (const alg of SIGNING_ALGS) {
    const ofAlg = withState.filter((k) => k.alg === alg);
    // Normally exactly one key is active; should none be (a broken manual edit), the earliest pending key signs.
    const signer = ofAlg.filter((k) => k.state === 'active').sort(newestFirst)[0] ?? ofAlg.filter((k) => k.state === 'next').sort(newestFirst).at(-1);
    if (signer) {
      signer.signing = true;
      signers.push(signer);
    }
  }
  return [...signers, ...withState.filter((k) => !k.signing).sort(newestFirst)];
}

/** A short fingerprint of what the JWKS looks like at `now`: instances compare it to notice a change. */
export function keySetVersion(keys: { kid: string; signing: boolean }[]): string {
  return keys.map((k) => `${k.kid}${k.signing ? '*' : ''}`).join(',');
}

async function generateSigningKey(alg: SigningAlg): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, alg === 'RS256' ? { modulusLength: 2048, extractable: true } : { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: randomUUID(), alg, use: 'sig' };
}

async function insertKey(db: Db, secrets: Secrets, alg: SigningAlg, activatesAt: Date): Promise<KeyMeta> {
  const jwk = await generateSigningKey(alg);
  const [row] = await db('signing_keys')
    .insert({ kid: jwk.kid, alg, private_jwk_encrypted: secrets.encrypt(JSON.stringify(jwk), `jwk:${jwk.kid}`), activates_at: activatesAt })
    .returning([...META_COLUMNS]);
  return row as KeyMeta;
}

/**
 * Creates a signing key for each algorithm that has neither an active nor a pending key (first start).
 * A transaction-scoped advisory lock keeps two instances starting together from both creating keys.
 */
export async function ensureSigningKeys(db: Db, secrets: Secrets): Promise<void> {
  await db.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(?)', [ADVISORY_LOCK]);
    const now = new Date();
    const rows = await trx<KeyMeta>('signing_keys').select(...META_COLUMNS);
    for (const alg of SIGNING_ALGS) {
      const usable = rows.some((k) => k.alg === alg && ['active', 'next'].includes(keyState(k, now)));
      if (!usable) await insertKey(trx, secrets, alg, now);
    }
  });
}

/** Only the metadata (no decryption): cheap enough to poll. */
export async function currentKeySetVersion(db: Db, now = new Date()): Promise<string> {
  const rows = await db<KeyMeta>('signing_keys').select(...META_COLUMNS);
  return keySetVersion(publishedKeys(rows, now));
}

/** The private JWKS for oidc-provider (published keys, signers first) and its version. */
export async function loadKeySet(db: Db, secrets: Secrets, now = new Date()): Promise<{ version: string; jwks: JWK[] }> {
  const rows = await db<KeyRow>('signing_keys').select(...META_COLUMNS, 'private_jwk_encrypted');
  const keys = publishedKeys(rows, now);
  return {
    version: keySetVersion(keys),
    jwks: keys.map((r) => JSON.parse(secrets.decrypt(r.private_jwk_encrypted, `jwk:${r.kid}`)) as JWK),
  };
}

export function isSigningAlg(value: string): value is SigningAlg {
  return (SIGNING_ALGS as readonly string[]).includes(value);
}

/**
 * Adds a new key for each algorithm, published at once and signing after `activateInSeconds`. The keys it
 * replaces stop signing at that moment and stay published RETIRED_KEY_RETENTION longer.
 */
export async function rotateSigningKeys(
  db: Db,
  secrets: Secrets,
  options: { algs?: string[]; activateInSeconds?: number } = {},
): Promise<KeyInfo[]> {
  const algs = options.algs?.length ? [...new Set(options.algs)] : [...SIGNING_ALGS];
  for (const alg of algs) {
    if (!isSigningAlg(alg)) throw new DomainError('invalid_alg', 'keys.error.alg', 400, { alg, allowed: SIGNING_ALGS.join(', ') });
  }
  const delay = options.activateInSeconds ?? DEFAULT_ACTIVATION_DELAY;
  const added = await db.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(?)', [ADVISORY_LOCK]);
    const now = new Date();
    const activatesAt = new Date(now.getTime() + delay * 1000);
    const expiresAt = new Date(activatesAt.getTime() + RETIRED_KEY_RETENTION * 1000);
    const created: KeyMeta[] = [];
    for (const alg of algs as SigningAlg[]) {
      // Every key of this algorithm that would still sign at activatesAt stops then.
      await trx('signing_keys')
        .where({ alg })
        .andWhere((q) => q.whereNull('retired_at').orWhere('retired_at', '>', activatesAt))
        .update({ retired_at: activatesAt, expires_at: expiresAt });
      created.push(await insertKey(trx, secrets, alg, activatesAt));
    }
    return created;
  });
  const all = await listSigningKeys(db);
  return added.map((a) => all.find((k) => k.kid === a.kid)!);
}

export async function listSigningKeys(db: Db, now = new Date()): Promise<KeyInfo[]> {
  const rows = await db<KeyMeta>('signing_keys').select(...META_COLUMNS);
  const published = publishedKeys(rows, now);
  const expired = rows.filter((r) => !published.some((p) => p.kid === r.kid)).map((r) => ({ ...r, state: 'expired' as const, signing: false }));
  return [...published, ...expired].map((k) => ({
    kid: k.kid,
    alg: k.alg,
    state: k.state,
    signing: k.signing,
    created_at: k.created_at,
    activates_at: k.activates_at,
    retired_at: k.retired_at,
    expires_at: k.expires_at,
  }));
}

/** Deletes keys that are no longer published. */
export async function deleteExpiredKeys(db: Db, now = new Date()): Promise<number> {
  return affectedRows(await db('signing_keys').whereNotNull('expires_at').andWhere('expires_at', '<=', now).delete());
}
