// Dynamic client registration (RFC 7591) is open only to holders of an initial access token, which an
// operator creates with `idp client iat create`. Tokens are single-use unless created reusable; either
// way they expire. Stored like oidc-provider's own InitialAccessToken model, so its registration endpoint
// finds them; the policies named here run on every registration and update (see provider.ts).
import type { Db } from '../db/index.js';
import { affectedRows } from '../db/index.js';
import { randomToken, type Secrets } from '../security/crypto.js';
import { KnexAdapter } from './adapter.js';
import { storedId } from './payload-ids.js';

/** Applies our client rules (checkClientMetadata) to registrations and updates. */
export const REGISTRATION_POLICY = 'idp-client-rules';
/** Consumes the initial access token on the first successful registration. */
export const SINGLE_USE_POLICY = 'idp-single-use';

export const DEFAULT_IAT_TTL = 24 * 60 * 60;

export interface InitialAccessToken {
  initial_access_token: string;
  expires_at: Date;
  single_use: boolean;
}

export async function createInitialAccessToken(db: Db, secrets: Secrets, options: { expiresInSeconds?: number; reusable?: boolean } = {}): Promise<InitialAccessToken> {
  const ttl = options.expiresInSeconds ?? DEFAULT_IAT_TTL;
  const token = randomToken(32);
  const iat = Math.floor(Date.now() / 1000);
  const policies = options.reusable ? [REGISTRATION_POLICY] : [REGISTRATION_POLICY, SINGLE_USE_POLICY];
  const expiresAt = new Date((iat + ttl) * 1000);
  // Through the adapter, so it is stored exactly as oidc-provider's own records (id as a keyed hash).
  await new KnexAdapter(db, secrets, 'InitialAccessToken').upsert(token, { iat, exp: iat + ttl, jti: token, kind: 'InitialAccessToken', policies }, ttl);
  return { initial_access_token: token, expires_at: expiresAt, single_use: !options.reusable };
}

/** Marks a single-use token used; false when it already was (two registrations racing with one token). */
export async function consumeInitialAccessToken(db: Db, secrets: Secrets, token: string): Promise<boolean> {
  const updated = await db('oidc_payloads')
    .where({ model: 'InitialAccessToken', id: storedId(secrets, 'InitialAccessToken', token) })
    .whereNull('consumed_at')
    .update({ consumed_at: new Date() });
  return affectedRows(updated) > 0;
}
