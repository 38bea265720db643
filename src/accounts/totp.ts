// Authenticator apps (TOTP, RFC 6238: SHA-1, 6 digits, 30 s, as Google Authenticator expects) and the
// ten single-use recovery codes handed out at activation. Secrets are encrypted at rest; recovery codes
// are stored as keyed hashes.
import { generateSecret, generateURI, verify } from 'otplib';
import { type Db, fastQuery } from '../db/index.js';
import { DomainError } from '../errors.js';
import { randomToken, type Secrets } from '../security/crypto.js';

export const RECOVERY_CODE_COUNT = 10;
/** One 30-second step of clock drift either way. */
const DRIFT_SECONDS = 30;

interface TotpRow {
  user_id: string;
  secret_encrypted: string;
  status: 'pending' | 'active';
  device_name: string | null;
  last_used_step: number | null;
  created_at: Date;
  activated_at: Date | null;
}

export interface TotpStatus {
  active: boolean;
  deviceName: string | null;
  activatedAt: Date | null;
  recoveryCodesLeft: number;
}

const aad = (userId: string) => `totp:${userId}`;

export function otpauthUri(issuer: string, account: string, secret: string): string {
  const uri = new URL(generateURI({ issuer, label: account, secret }));
  // Spell out the parameters authenticator apps assume, so none has to guess.
  uri.searchParams.set('algorithm', 'SHA1');
  uri.searchParams.set('digits', '6');
  uri.searchParams.set('period', '30');
  return uri.href;
}

export async function totpStatus(db: Db, userId: string): Promise<TotpStatus> {
  const row = await db<TotpRow>('totp_credentials').where({ user_id: userId, status: 'active' }).first();
  const left = await db('recovery_codes').where({ user_id: userId }).whereNull('used_at').count({ n: '*' }).first();
  return { active: Boolean(row), deviceName: row?.device_name ?? null, activatedAt: row?.activated_at ?? null, recoveryCodesLeft: Number(left?.n ?? 0) };
}

/** The device name of the user's active authenticator app (null when unnamed), or undefined when there is none. */
export async function activeTotpDevice(db: Db, userId: string): Promise<string | null | undefined> {
  const [row] = await fastQuery<{ device_name: string | null }>(
    db,
    'totp_active_device',
    "SELECT device_name FROM totp_credentials WHERE user_id = $1 AND status = 'active'",
    [userId],
  );
  return row ? (row.device_name ?? null) : undefined;
}

export async function hasActiveTotp(db: Db, userId: string): Promise<boolean> {
  return Boolean(await db('totp_credentials').where({ user_id: userId, status: 'active' }).first('user_id'));
}

/** Starts (or restarts) set-up: a new secret, generated here, kept encrypted until activation. */
export async function startTotpSetup(db: Db, secrets: Secrets, userId: string): Promise<string> {
  if (await hasActiveTotp(db, userId)) throw new DomainError('totp_active', 'Two-factor authentication is already on.', 409);
  const secret = generateSecret();
  await db('totp_credentials')
    .insert({ user_id: userId, secret_encrypted: secrets.encrypt(secret, aad(userId)), status: 'pending', created_at: new Date() })
    .onConflict('user_id')
    .merge(['secret_encrypted', 'status', 'created_at']);
  return secret;
}

export async function pendingTotpSecret(db: Db, secrets: Secrets, userId: string): Promise<string | undefined> {
  const row = await db<TotpRow>('totp_credentials').where({ user_id: userId, status: 'pending' }).first();
  return row ? secrets.decrypt(row.secret_encrypted, aad(userId)) : undefined;
}

async function matchingStep(secret: string, code: string, afterStep: number | null): Promise<number | undefined> {
  if (!/^\d{6}$/.test(code)) return undefined; // otplib throws on malformed tokens
  const result = await verify({ secret, token: code, epochTolerance: DRIFT_SECONDS, ...(afterStep === null ? {} : { afterTimeStep: afterStep }) });
  return result.valid && 'timeStep' in result ? result.timeStep : undefined;
}

/** Activates the pending credential when `code` is right; returns the recovery codes, shown once. */
export async function activateTotp(db: Db, secrets: Secrets, userId: string, code: string, deviceName: string): Promise<string[]> {
  const row = await db<TotpRow>('totp_credentials').where({ user_id: userId, status: 'pending' }).first();
  if (!row) throw new DomainError('totp_not_started', 'Set-up has not been started or has expired.', 400);
  const step = await matchingStep(secrets.decrypt(row.secret_encrypted, aad(userId)), code, null);
  if (step === undefined) throw new DomainError('totp_wrong_code', 'totp.error.wrong', 400);
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () => newRecoveryCode());
  await db.transaction(async (trx) => {
    const updated = await trx('totp_credentials')
      .where({ user_id: userId, status: 'pending' })
      .update({ status: 'active', device_name: deviceName, last_used_step: step, activated_at: new Date() })
      .returning('user_id');
    if (!updated.length) throw new DomainError('totp_not_started', 'Set-up has not been started or has expired.', 400);
    await trx('recovery_codes').where({ user_id: userId }).delete();
    await trx('recovery_codes').insert(codes.map((c) => ({ user_id: userId, code_hash: hashRecoveryCode(secrets, userId, c) })));
  });
  return codes;
}

export type TotpCheck = 'ok' | 'wrong' | 'replay';

/**
 * Checks a code from the app. The accepted time step is stored with a conditional update, so the same
 * code (or an older one) is accepted once, even by parallel requests.
 */
export async function verifyTotp(db: Db, secrets: Secrets, userId: string, code: string): Promise<TotpCheck> {
  const row = await db<TotpRow>('totp_credentials').where({ user_id: userId, status: 'active' }).first();
  if (!row) return 'wrong';
  const secret = secrets.decrypt(row.secret_encrypted, aad(userId));
  const step = await matchingStep(secret, code, null);
  if (step === undefined) return 'wrong';
  const claimed = await db('totp_credentials')
    .where({ user_id: userId, status: 'active' })
    .andWhere((q) => q.whereNull('last_used_step').orWhere('last_used_step', '<', step))
    .update({ last_used_step: step })
    .returning('user_id');
  return claimed.length ? 'ok' : 'replay';
}

/** Recovery codes look like `abcd-efgh-jkmn` (Crockford-style letters and digits, no look-alikes). */
const RECOVERY_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

function newRecoveryCode(): string {
  const raw = randomToken(24);
  let out = '';
  for (const ch of Buffer.from(raw, 'base64url')) {
    out += RECOVERY_ALPHABET[ch % RECOVERY_ALPHABET.length];
    if (out.length === 12) break;
  }
  return `${out.slice(0, 4)}-${out.slice(4, 8)}-${out.slice(8, 12)}`;
}

export function normalizeRecoveryCode(input: string): string | undefined {
  const compact = input.toLowerCase().replace(/[\s-]/g, '');
  if (!/^[a-z0-9]{12}$/.test(compact)) return undefined;
  return `${compact.slice(0, 4)}-${compact.slice(4, 8)}-${compact.slice(8, 12)}`;
}

const hashRecoveryCode = (secrets: Secrets, userId: string, code: string) => secrets.keyedHash(code, `recovery:${userId}`);

/** Uses a recovery code once (atomically). */
export async function useRecoveryCode(db: Db, secrets: Secrets, userId: string, input: string): Promise<boolean> {
  const code = normalizeRecoveryCode(input);
  if (!code) return false;
  const used = await db('recovery_codes')
    .where({ user_id: userId, code_hash: hashRecoveryCode(secrets, userId, code) })
    .whereNull('used_at')
    .update({ used_at: new Date() })
    .returning('id');
  return used.length > 0;
}

/** Removes the authenticator and the recovery codes. Returns false when none was active. */
export async function removeTotp(db: Db, userId: string): Promise<boolean> {
  return db.transaction(async (trx) => {
    const removed = await trx('totp_credentials').where({ user_id: userId }).delete().returning('status');
    await trx('recovery_codes').where({ user_id: userId }).delete();
    return (removed as { status: string }[]).some((r) => r.status === 'active');
  });
}
