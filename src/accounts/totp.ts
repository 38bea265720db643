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
  /** Support's temporary bypass: until then, sign-in uses the email code instead. */
  suspended_until: Date | null;
  /** A replacement being set up while the old credential still exists (e.g. during a bypass). */
  pending_secret_encrypted: string | null;
}

export interface TotpStatus {
  /** A credential exists (it may be suspended). */
  active: boolean;
  deviceName: string | null;
  activatedAt: Date | null;
  recoveryCodesLeft: number;
  /** Set while a temporary bypass is in force. */
  suspendedUntil: Date | null;
}

const isSuspended = (row: Pick<TotpRow, 'suspended_until'>) => Boolean(row.suspended_until && row.suspended_until.getTime() > Date.now());

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
  return {
    active: Boolean(row),
    deviceName: row?.device_name ?? null,
    activatedAt: row?.activated_at ?? null,
    recoveryCodesLeft: Number(left?.n ?? 0),
    suspendedUntil: row && isSuspended(row) ? row.suspended_until : null,
  };
}

/** What the sign-in needs to know of the user's authenticator app, read in one statement. */
export interface TotpAtSignIn {
  active: boolean;
  deviceName: string | null;
  /** A temporary bypass in force until then. */
  suspendedUntil: Date | null;
  /** A bypass whose time is up and that must be ended (expireBypasses) before the sign-in goes on. */
  bypassExpired: boolean;
}

export async function totpAtSignIn(db: Db, userId: string): Promise<TotpAtSignIn> {
  const [row] = await fastQuery<Pick<TotpRow, 'device_name' | 'suspended_until'>>(
    db,
    'totp_at_sign_in',
    "SELECT device_name, suspended_until FROM totp_credentials WHERE user_id = $1 AND status = 'active'",
    [userId],
  );
  if (!row) return { active: false, deviceName: null, suspendedUntil: null, bypassExpired: false };
  const suspended = isSuspended(row);
  return {
    active: true,
    deviceName: row.device_name ?? null,
    suspendedUntil: suspended ? row.suspended_until : null,
    bypassExpired: Boolean(row.suspended_until) && !suspended,
  };
}

export async function hasActiveTotp(db: Db, userId: string): Promise<boolean> {
  return Boolean(await db('totp_credentials').where({ user_id: userId, status: 'active' }).first('user_id'));
}

/**
 * Starts (or restarts) set-up: a new secret, generated here, kept encrypted until activation. During a
 * bypass the new secret waits beside the suspended one and replaces it on activation.
 */
export async function startTotpSetup(db: Db, secrets: Secrets, userId: string): Promise<string> {
  const active = await db<TotpRow>('totp_credentials').where({ user_id: userId, status: 'active' }).first();
  if (active && !isSuspended(active)) throw new DomainError('totp_active', 'totp.error.already_on', 409);
  const secret = generateSecret();
  if (active) {
    await db('totp_credentials').where({ user_id: userId }).update({ pending_secret_encrypted: secrets.encrypt(secret, aad(userId)) });
    return secret;
  }
  await db('totp_credentials')
    .insert({ user_id: userId, secret_encrypted: secrets.encrypt(secret, aad(userId)), status: 'pending', created_at: new Date() })
    .onConflict('user_id')
    .merge(['secret_encrypted', 'status', 'created_at']);
  return secret;
}

export async function pendingTotpSecret(db: Db, secrets: Secrets, userId: string): Promise<string | undefined> {
  const row = await db<TotpRow>('totp_credentials').where({ user_id: userId }).first();
  if (!row) return undefined;
  if (row.status === 'pending') return secrets.decrypt(row.secret_encrypted, aad(userId));
  return row.pending_secret_encrypted ? secrets.decrypt(row.pending_secret_encrypted, aad(userId)) : undefined;
}

async function matchingStep(secret: string, code: string, afterStep: number | null): Promise<number | undefined> {
  if (!/^\d{6}$/.test(code)) return undefined; // otplib throws on malformed tokens
  const result = await verify({ secret, token: code, epochTolerance: DRIFT_SECONDS, ...(afterStep === null ? {} : { afterTimeStep: afterStep }) });
  return result.valid && 'timeStep' in result ? result.timeStep : undefined;
}

/** Activates the pending credential when `code` is right; returns the recovery codes, shown once. */
export async function activateTotp(db: Db, secrets: Secrets, userId: string, code: string, deviceName: string): Promise<string[]> {
  const row = await db<TotpRow>('totp_credentials').where({ user_id: userId }).first();
  const pending = row?.status === 'pending' ? row.secret_encrypted : row?.pending_secret_encrypted;
  if (!row || !pending) throw new DomainError('totp_not_started', 'totp.error.not_started', 400);
  const step = await matchingStep(secrets.decrypt(pending, aad(userId)), code, null);
  if (step === undefined) throw new DomainError('totp_wrong_code', 'totp.error.wrong', 400);
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () => newRecoveryCode());
  await db.transaction(async (trx) => {
    // The new secret becomes the credential; a suspension (bypass) ends with it.
    const updated = await trx('totp_credentials')
      .where({ user_id: userId })
      .update({
        status: 'active',
        secret_encrypted: pending,
        pending_secret_encrypted: null,
        suspended_until: null,
        device_name: deviceName,
        last_used_step: step,
        activated_at: new Date(),
      })
      .returning('user_id');
    if (!updated.length) throw new DomainError('totp_not_started', 'totp.error.not_started', 400);
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

/** Suspends an active authenticator until `until` (support's temporary bypass). */
export async function suspendTotp(db: Db, userId: string, until: Date): Promise<boolean> {
  const rows = await db('totp_credentials').where({ user_id: userId, status: 'active' }).update({ suspended_until: until }).returning('user_id');
  return rows.length > 0;
}

/** Ends a bypass early: the old authenticator is required again (the user found it). */
export async function resumeTotp(db: Db, userId: string): Promise<boolean> {
  const rows = await db('totp_credentials')
    .where({ user_id: userId, status: 'active' })
    .whereNotNull('suspended_until')
    .update({ suspended_until: null, pending_secret_encrypted: null })
    .returning('user_id');
  return rows.length > 0;
}

/** Bypasses whose time is up: the old credential is required again. Returns the users concerned. */
export async function endExpiredBypasses(db: Db, userId?: string): Promise<string[]> {
  const q = db('totp_credentials').whereNotNull('suspended_until').where('suspended_until', '<=', new Date());
  if (userId) q.where({ user_id: userId });
  const rows = (await q.update({ suspended_until: null, pending_secret_encrypted: null }).returning('user_id')) as { user_id: string }[];
  return rows.map((r) => r.user_id);
}
