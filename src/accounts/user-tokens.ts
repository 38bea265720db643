// Single-use tokens in mailed links: invitations (valid 7 days) and password resets (valid 1 hour).
// Only a keyed hash is stored; issuing a new token revokes the user's earlier unused ones of that kind.
import type { Db } from '../db/index.js';
import { randomToken, type Secrets } from '../security/crypto.js';

export type UserTokenKind = 'invitation' | 'password_reset';

export const USER_TOKEN_TTL_MS: Record<UserTokenKind, number> = {
  invitation: 7 * 24 * 60 * 60 * 1000,
  password_reset: 60 * 60 * 1000,
};

export type UserTokenLookup = { status: 'valid'; id: string; userId: string } | { status: 'invalid' | 'expired' | 'used' };

const hashToken = (secrets: Secrets, kind: UserTokenKind, token: string) => secrets.keyedHash(token, `user-token:${kind}`);
const TOKEN_SHAPE = /^[\w-]{43}$/;

export async function issueUserToken(db: Db, secrets: Secrets, userId: string, kind: UserTokenKind): Promise<string> {
  const token = randomToken(32);
  await db.transaction(async (trx) => {
    await trx('user_tokens').where({ user_id: userId, kind }).whereNull('used_at').whereNull('revoked_at').update({ revoked_at: new Date() });
    await trx('user_tokens').insert({ user_id: userId, kind, token_hash: hashToken(secrets, kind, token), expires_at: new Date(Date.now() + USER_TOKEN_TTL_MS[kind]) });
  });
  return token;
}

export async function lookupUserToken(db: Db, secrets: Secrets, kind: UserTokenKind, token: string): Promise<UserTokenLookup> {
  if (!TOKEN_SHAPE.test(token)) return { status: 'invalid' };
  const row = await db('user_tokens').where({ kind, token_hash: hashToken(secrets, kind, token) }).first<{
    id: string;
    user_id: string;
    expires_at: Date;
    used_at: Date | null;
    revoked_at: Date | null;
  } | undefined>();
  if (!row || row.revoked_at) return { status: 'invalid' };
  if (row.used_at) return { status: 'used' };
  if (row.expires_at.getTime() <= Date.now()) return { status: 'expired' };
  return { status: 'valid', id: row.id, userId: row.user_id };
}

/** Marks the token used; false when it was used (or revoked) meanwhile, so it works exactly once. */
export async function consumeUserToken(db: Db, id: string): Promise<boolean> {
  const rows = await db('user_tokens').where({ id }).whereNull('used_at').whereNull('revoked_at').where('expires_at', '>', new Date()).update({ used_at: new Date() }).returning('id');
  return rows.length > 0;
}
