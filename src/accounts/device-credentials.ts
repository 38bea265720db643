// Device credentials: the SIP username and password of a user's phone or softphone. The secret is
// generated here (120 random bits), shown once, and stored as a keyed HMAC-SHA256. A slow hash such as
// argon2 protects guessable human passwords; a random 120-bit secret cannot be guessed from its HMAC, and
// a fast hash keeps every SIP registration check cheap. The HMAC key comes from DATA_ENCRYPTION_KEY, so a
// leaked table alone verifies nothing.
import { randomInt } from 'node:crypto';
import { z } from 'zod';
import type { Db } from '../db/index.js';
import { DomainError, isUniqueViolation } from '../errors.js';
import { safeEqual, type Secrets } from '../security/crypto.js';

export interface DeviceCredential {
  id: string;
  user_id: string;
  label: string;
  username: string;
  created_at: Date;
  renewed_at: Date;
  last_verified_at: Date | null;
}

export interface IssuedCredential {
  id: string;
  label: string;
  username: string;
  /** Shown once. */
  secret: string;
}

const SECRET_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789';
const labelSchema = z.string().trim().min(1, 'device.error.label').max(64, 'device.error.label');

/** 21 characters from a 56-letter alphabet ≈ 122 bits. */
function newSecret(): string {
  let out = '';
  for (let i = 0; i < 21; i += 1) out += SECRET_ALPHABET[randomInt(SECRET_ALPHABET.length)];
  return out;
}

const hashSecret = (secrets: Secrets, username: string, secret: string) => secrets.keyedHash(`${username}\0${secret}`, 'device-credential');

export async function listDeviceCredentials(db: Db, userId: string): Promise<DeviceCredential[]> {
  return db<DeviceCredential>('device_credentials').where({ user_id: userId }).orderBy('created_at').select('id', 'user_id', 'label', 'username', 'created_at', 'renewed_at', 'last_verified_at');
}

export async function createDeviceCredential(db: Db, secrets: Secrets, user: { id: string; customer_number: string }, label: string): Promise<IssuedCredential> {
  const parsed = labelSchema.safeParse(label);
  if (!parsed.success) throw new DomainError('invalid_label', 'device.error.label');
  const count = await db('device_credentials').where({ user_id: user.id }).count({ n: '*' }).first();
  if (Number(count?.n ?? 0) >= 50) throw new DomainError('too_many_devices', 'device.error.too_many', 409);
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const username = `${user.customer_number}-${String(randomInt(100000, 1000000))}`;
    const secret = newSecret();
    try {
      const [row] = await db('device_credentials')
        .insert({ user_id: user.id, label: parsed.data, username, secret_hash: hashSecret(secrets, username, secret) })
        .returning(['id', 'label', 'username']);
      return { ...(row as { id: string; label: string; username: string }), secret };
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
    }
  }
  throw new DomainError('username_exhausted', 'device.error.username_exhausted', 503);
}

/** A new secret for one credential (the old one stops working at once). */
export async function renewDeviceCredential(db: Db, secrets: Secrets, userId: string, id: string): Promise<IssuedCredential> {
  const row = await db<DeviceCredential>('device_credentials').where({ id, user_id: userId }).first();
  if (!row) throw new DomainError('not_found', 'device.error.not_found', 404);
  const secret = newSecret();
  await db('device_credentials').where({ id }).update({ secret_hash: hashSecret(secrets, row.username, secret), renewed_at: new Date() });
  return { id: row.id, label: row.label, username: row.username, secret };
}

export async function renewAllDeviceCredentials(db: Db, secrets: Secrets, userId: string): Promise<IssuedCredential[]> {
  const rows = await listDeviceCredentials(db, userId);
  return db.transaction(async (trx) => {
    const issued: IssuedCredential[] = [];
    for (const row of rows) {
      const secret = newSecret();
      await trx('device_credentials').where({ id: row.id }).update({ secret_hash: hashSecret(secrets, row.username, secret), renewed_at: new Date() });
      issued.push({ id: row.id, label: row.label, username: row.username, secret });
    }
    return issued;
  });
}

export async function deleteDeviceCredential(db: Db, userId: string, id: string): Promise<DeviceCredential> {
  const [row] = (await db('device_credentials').where({ id, user_id: userId }).delete().returning('*')) as DeviceCredential[];
  if (!row) throw new DomainError('not_found', 'device.error.not_found', 404);
  return row;
}

/** For the telephony side: is this the current secret of this username, for an active user? */
export async function verifyDeviceCredential(db: Db, secrets: Secrets, username: string, secret: string): Promise<{ valid: false } | { valid: true; userId: string; deviceId: string }> {
  if (username.length > 64 || secret.length > 128) return { valid: false };
  const row = await db('device_credentials')
    .join('users', 'users.id', 'device_credentials.user_id')
    .where({ 'device_credentials.username': username, 'users.status': 'active' })
    .first<{ id: string; user_id: string; secret_hash: string } | undefined>('device_credentials.id', 'device_credentials.user_id', 'device_credentials.secret_hash');
  const expected = row?.secret_hash ?? '';
  const ok = safeEqual(hashSecret(secrets, username, secret), expected) && Boolean(row);
  if (!ok || !row) return { valid: false };
  await db('device_credentials').where({ id: row.id }).update({ last_verified_at: new Date() });
  return { valid: true, userId: row.user_id, deviceId: row.id };
}
