// Signing keys live in the database (private parts encrypted), so every instance signs with the same keys.
// The first key of each algorithm signs; the others are published for verification only.
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Db } from '../db/index.js';
import type { Secrets } from '../security/crypto.js';

/** RS256 first: it is the default ID token algorithm; ES256 is offered to clients that ask for it. */
export const SIGNING_ALGS = ['RS256', 'ES256'] as const;
type SigningAlg = (typeof SIGNING_ALGS)[number];

interface KeyRow {
  kid: string;
  alg: SigningAlg;
  private_jwk_encrypted: string;
  created_at: Date;
}

async function generateSigningKey(alg: SigningAlg): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, alg === 'RS256' ? { modulusLength: 2048, extractable: true } : { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: randomUUID(), alg, use: 'sig' };
}

export async function addSigningKey(db: Db, secrets: Secrets, alg: SigningAlg): Promise<string> {
  const jwk = await generateSigningKey(alg);
  await db('signing_keys').insert({ kid: jwk.kid, alg, private_jwk_encrypted: secrets.encrypt(JSON.stringify(jwk), `jwk:${jwk.kid}`) });
  return jwk.kid!;
}

/**
 * Returns the private JWKS for oidc-provider, creating a key for each algorithm that has none. A
 * transaction-scoped advisory lock keeps two instances starting together from both creating keys.
 */
export async function loadSigningKeys(db: Db, secrets: Secrets): Promise<JWK[]> {
  const rows = await db.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(?)', [7_341_001]);
    const existing = await trx<KeyRow>('signing_keys').whereNull('retired_at').orderBy('created_at', 'desc');
    for (const alg of SIGNING_ALGS) {
      if (!existing.some((k) => k.alg === alg)) {
        const jwk = await generateSigningKey(alg);
        await trx('signing_keys').insert({ kid: jwk.kid, alg, private_jwk_encrypted: secrets.encrypt(JSON.stringify(jwk), `jwk:${jwk.kid}`) });
      }
    }
    return trx<KeyRow>('signing_keys').whereNull('retired_at').orderBy('created_at', 'desc');
  });
  const order = (alg: string) => SIGNING_ALGS.indexOf(alg as SigningAlg);
  return rows
    .sort((a, b) => order(a.alg) - order(b.alg) || b.created_at.getTime() - a.created_at.getTime())
    .map((r) => JSON.parse(secrets.decrypt(r.private_jwk_encrypted, `jwk:${r.kid}`)) as JWK);
}
