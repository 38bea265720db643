// The user's own profile: name and language, and a new email address confirmed with a code sent to it.
// Changing the address notifies the old one and revokes trusted browsers (the address is a factor).
import { z } from 'zod';
import type { Db } from '../db/index.js';
import { DomainError, isUniqueViolation } from '../errors.js';
import { LOCALES, mailLocale } from '../i18n/index.js';
import { actionlessCodeMessage } from '../mail/messages.js';
import { audit, type RequestInfo } from '../security/audit.js';
import { randomDigits, safeEqual, type Secrets } from '../security/crypto.js';
import { notifyUser, type NotifyDeps } from './notify.js';
import { revokeAllTrustedDevices } from './trusted-devices.js';
import { emailSchema, type UserWithCustomer } from './users.js';

const CODE_TTL_MS = 10 * 60 * 1000;
const MAX_ATTEMPTS = 5;

/** `locale` '' means "no choice": pages follow the app and the browser. */
export async function updateProfile(db: Db, user: UserWithCustomer, input: { name: string; locale: string }, request: RequestInfo): Promise<void> {
  const name = z.string().trim().min(1).max(200).safeParse(input.name);
  if (!name.success) throw new DomainError('invalid_name', 'profile.error.name');
  if (input.locale !== '' && !(LOCALES as readonly string[]).includes(input.locale)) throw new DomainError('invalid_locale', 'profile.error.locale');
  const locale = input.locale || null;
  await db('users').where({ id: user.id }).update({ name: name.data, locale, updated_at: new Date() });
  await audit(db, { type: 'profile.updated', userId: user.id, customerId: user.customer_id, ...request, details: { name_changed: name.data !== user.name, locale } });
}

interface Deps extends NotifyDeps {
  secrets: Secrets;
}

const hashCode = (secrets: Secrets, userId: string, email: string, code: string) => secrets.keyedHash(`${email}\0${code}`, `email-change:${userId}`);

/**
 * Sends a code to the new address. Whether the address is taken by another account is only checked at
 * confirmation, and answered vaguely, so this form reveals nothing about other accounts.
 */
export async function startEmailChange(deps: Deps, user: UserWithCustomer, newEmail: string, request: RequestInfo): Promise<string> {
  const parsed = emailSchema.safeParse(newEmail);
  if (!parsed.success) throw new DomainError('invalid_email', 'profile.error.email');
  const email = parsed.data;
  if (email === user.email.toLowerCase()) throw new DomainError('same_email', 'profile.error.same_email');
  const code = randomDigits(6);
  await deps.db('email_changes')
    .insert({ user_id: user.id, new_email: email, code_hash: hashCode(deps.secrets, user.id, email, code), attempts: 0, expires_at: new Date(Date.now() + CODE_TTL_MS), created_at: new Date() })
    .onConflict('user_id')
    .merge();
  await deps.mailer.send(await actionlessCodeMessage(mailLocale(user.locale), { to: email, code }));
  await audit(deps.db, { type: 'email.change_requested', userId: user.id, customerId: user.customer_id, ...request });
  return email;
}

export async function pendingEmailChange(db: Db, userId: string): Promise<string | undefined> {
  const row = await db('email_changes').where({ user_id: userId }).where('expires_at', '>', new Date()).first<{ new_email: string } | undefined>('new_email');
  return row?.new_email;
}

export async function confirmEmailChange(deps: Deps, user: UserWithCustomer, code: string, request: RequestInfo, keepDeviceId?: string): Promise<string> {
  const row = await deps.db('email_changes').where({ user_id: user.id }).first<{ new_email: string; code_hash: string; attempts: number; expires_at: Date } | undefined>();
  if (!row || row.expires_at.getTime() <= Date.now()) throw new DomainError('no_change', 'code.error.expired');
  if (row.attempts >= MAX_ATTEMPTS) throw new DomainError('locked', 'code.error.locked');
  if (!/^\d{6}$/.test(code) || !safeEqual(hashCode(deps.secrets, user.id, row.new_email, code), row.code_hash)) {
    const counted = await deps.db('email_changes').where({ user_id: user.id }).where('attempts', '<', MAX_ATTEMPTS).increment('attempts', 1).returning('attempts');
    const attempts = (counted[0] as { attempts: number } | undefined)?.attempts ?? MAX_ATTEMPTS;
    throw new DomainError(attempts >= MAX_ATTEMPTS ? 'locked' : 'wrong_code', attempts >= MAX_ATTEMPTS ? 'code.error.locked' : 'code.error.wrong');
  }
  const oldEmail = user.email;
  try {
    await deps.db.transaction(async (trx) => {
      await trx('users').where({ id: user.id }).update({ email: row.new_email, email_verified: true, updated_at: new Date() });
      await trx('email_changes').where({ user_id: user.id }).delete();
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw new DomainError('email_unavailable', 'profile.error.unavailable', 409);
    throw error;
  }
  const revoked = await revokeAllTrustedDevices(deps.db, user.id, keepDeviceId);
  await audit(deps.db, { type: 'email.changed', userId: user.id, customerId: user.customer_id, ...request, details: { trusted_devices_revoked: revoked } });
  // The old address hears of it, so a takeover cannot silently move the account away.
  await notifyUser(deps, { ...user, email: oldEmail }, { subject: 'mail.email_changed.subject', text: 'mail.email_changed.text', params: { email: row.new_email } });
  return row.new_email;
}
