// Trusted devices: a browser the user chose to trust after an email code. The browser holds a random
// token in a signed cookie; the server keeps only its keyed hash, so a record can be listed and revoked.
import { type Db, fastQuery } from '../db/index.js';
import { randomToken, type Secrets } from '../security/crypto.js';
import type { RequestInfo } from '../security/audit.js';

export const TRUSTED_DEVICE_TTL_MS = 180 * 24 * 60 * 60 * 1000;

export interface TrustedDevice {
  id: string;
  user_id: string;
  ip: string | null;
  user_agent: string | null;
  created_at: Date;
  last_used_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
}

const hashToken = (secrets: Secrets, token: string) => secrets.keyedHash(token, 'trusted-device');

export async function createTrustedDevice(db: Db, secrets: Secrets, userId: string, request: RequestInfo): Promise<{ id: string; token: string }> {
  const token = randomToken(32);
  const [row] = await db('trusted_devices')
    .insert({
      user_id: userId,
      token_hash: hashToken(secrets, token),
      ip: request.ip ?? null,
      user_agent: request.userAgent?.slice(0, 512) ?? null,
      expires_at: new Date(Date.now() + TRUSTED_DEVICE_TTL_MS),
    })
    .returning('id');
  return { id: (row as { id: string }).id, token };
}

/** The user's valid (not revoked, not expired) device among the browser's tokens; marks it used. */
export async function useTrustedDevice(db: Db, secrets: Secrets, userId: string, tokens: string[], request: RequestInfo): Promise<TrustedDevice | undefined> {
  if (!tokens.length) return undefined;
  const now = new Date();
  const [device] = await fastQuery<TrustedDevice>(
    db,
    'trusted_devices_use',
    `UPDATE trusted_devices SET last_used_at = $1, ip = $2
     WHERE token_hash = ANY($3) AND user_id = $4 AND revoked_at IS NULL AND expires_at > $5
     RETURNING id, user_id, ip, user_agent, created_at, last_used_at, expires_at, revoked_at`,
    [now, request.ip ?? null, tokens.map((t) => hashToken(secrets, t)), userId, now],
  );
  return device;
}

/** True when one of the browser's tokens is a valid trusted device of this user (nothing is updated). */
export async function isTrustedDevice(db: Db, secrets: Secrets, userId: string, tokens: string[]): Promise<boolean> {
  if (!tokens.length) return false;
  // Asked at every password sign-in (the per-account delay spares trusted browsers): a prepared statement.
  const rows = await fastQuery(
    db,
    'trusted_devices_valid',
    'SELECT id FROM trusted_devices WHERE token_hash = ANY($1) AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3 LIMIT 1',
    [tokens.map((t) => hashToken(secrets, t)), userId, new Date()],
  );
  return rows.length > 0;
}

export async function listTrustedDevices(db: Db, userId: string): Promise<TrustedDevice[]> {
  return db<TrustedDevice>('trusted_devices')
    .where({ user_id: userId })
    .whereNull('revoked_at')
    .where('expires_at', '>', new Date())
    .orderBy('last_used_at', 'desc');
}

export async function revokeTrustedDevice(db: Db, userId: string, deviceId: string): Promise<boolean> {
  const rows = await db('trusted_devices').where({ id: deviceId, user_id: userId }).whereNull('revoked_at').update({ revoked_at: new Date() }).returning('id');
  return rows.length > 0;
}

export async function revokeAllTrustedDevices(db: Db, userId: string, exceptDeviceId?: string): Promise<number> {
  const q = db('trusted_devices').where({ user_id: userId }).whereNull('revoked_at');
  if (exceptDeviceId) q.whereNot({ id: exceptDeviceId });
  const rows = await q.update({ revoked_at: new Date() }).returning('id');
  return rows.length;
}
