// The user life cycle: invitations, forgotten and changed passwords, disabling and enabling users.
// Each operation does everything the event requires (tokens, sessions, trusted devices, notices,
// audit events), so routes and CLI commands stay thin.
import type Provider from 'oidc-provider';
import type { Config } from '../config.js';
import type { Db } from '../db/index.js';
import { DomainError } from '../errors.js';
import { mailLocale } from '../i18n/index.js';
import type { Logger } from '../log.js';
import type { Mailer } from '../mail/mailer.js';
import { actionMessage } from '../mail/messages.js';
import { endUserSessions } from '../oidc/sessions.js';
import { audit, type RequestInfo } from '../security/audit.js';
import type { Secrets } from '../security/crypto.js';
import { notifyUser } from './notify.js';
import { assertAcceptablePassword } from './password-policy.js';
import type { PasswordHasher } from './passwords.js';
import { revokeAllTrustedDevices } from './trusted-devices.js';
import { consumeUserToken, issueUserToken, lookupUserToken } from './user-tokens.js';
import { findUserByEmail, findUserById, type UserWithCustomer } from './users.js';

export interface AccountDeps {
  db: Db;
  secrets: Secrets;
  hasher: PasswordHasher;
  mailer: Mailer;
  log: Logger;
  config: Pick<Config, 'issuer'>;
  /** For back-channel logout when sessions end (absent in a CLI process without a server). */
  provider?: Provider | undefined;
}

/** Mail to the user: their saved language, else the page's (the admin inviting them), else English. */
const userLocale = (user: { locale: string | null }) => mailLocale(user.locale);

/**
 * Mails an invitation with a fresh single-use link (the previous one stops working). The mail error is
 * passed on, so the caller can tell the admin; the token of an undelivered mail is revoked.
 */
export async function sendInvitation(deps: AccountDeps, user: UserWithCustomer, invitedBy: { name: string }, request: RequestInfo = {}): Promise<void> {
  if (user.status !== 'invited') throw new DomainError('not_invited', 'invite.error.accepted', 409, { email: user.email });
  const customer = await deps.db('customers').where({ id: user.customer_id }).first<{ name: string }>('name');
  const token = await issueUserToken(deps.db, deps.secrets, user.id, 'invitation');
  const message = await actionMessage(userLocale(user), {
    to: user.email,
    subject: 'mail.invite.subject',
    text: 'mail.invite.text',
    params: { admin: invitedBy.name, customer: customer?.name ?? '' },
    button: 'mail.invite.button',
    url: `${deps.config.issuer}/invite/${token}`,
  });
  try {
    await deps.mailer.send(message);
  } catch (error) {
    await deps.db('user_tokens').where({ user_id: user.id, kind: 'invitation' }).whereNull('used_at').update({ revoked_at: new Date() });
    await audit(deps.db, { type: 'invitation.failed', userId: user.id, customerId: user.customer_id, ...request });
    throw error;
  }
  await audit(deps.db, { type: 'invitation.sent', userId: user.id, customerId: user.customer_id, ...request, details: { by: invitedBy.name } });
}

/** Ends an invitation sign-in: the link is used up, the account becomes active, the address verified. */
export async function acceptInvitation(deps: Pick<AccountDeps, 'db'>, tokenId: string, userId: string, request: RequestInfo): Promise<void> {
  await deps.db.transaction(async (trx) => {
    if (!(await consumeUserToken(trx, tokenId))) throw new DomainError('invitation_used', 'invite.error.used', 400);
    await trx('users').where({ id: userId, status: 'invited' }).update({ status: 'active', email_verified: true, updated_at: new Date() });
    await audit(trx, { type: 'invitation.accepted', userId, ...request });
  });
}

/**
 * "Forgot password?": mails a reset link when an active account has this address, and otherwise does
 * nothing — the caller shows the same answer either way.
 */
export async function requestPasswordReset(deps: AccountDeps, email: string, request: RequestInfo): Promise<void> {
  const user = await findUserByEmail(deps.db, email);
  if (!user || user.status !== 'active') {
    await audit(deps.db, { type: 'password.reset_requested', ...request, details: { matched: false } });
    return;
  }
  const token = await issueUserToken(deps.db, deps.secrets, user.id, 'password_reset');
  await audit(deps.db, { type: 'password.reset_requested', userId: user.id, customerId: user.customer_id, ...request, details: { matched: true } });
  const message = await actionMessage(userLocale(user), {
    to: user.email,
    subject: 'mail.reset.subject',
    text: 'mail.reset.text',
    button: 'mail.reset.button',
    url: `${deps.config.issuer}/password/reset/${token}`,
  });
  try {
    await deps.mailer.send(message);
  } catch (error) {
    // The answer must not differ for existing accounts, so a delivery failure is only logged.
    deps.log.warn({ err: error, user_id: user.id }, 'password reset mail not delivered');
    await audit(deps.db, { type: 'mail.failed', userId: user.id, details: { notice: 'mail.reset.subject' } });
  }
}

/** Everything a new password brings: other sessions and refresh tokens end, trusted devices are revoked, a notice goes out. */
async function afterPasswordChange(deps: AccountDeps, user: UserWithCustomer, type: string, request: RequestInfo, keep: { sessionUid?: string | undefined; deviceId?: string | undefined }) {
  const ended = await endUserSessions(deps, user.id, keep.sessionUid);
  const devices = await revokeAllTrustedDevices(deps.db, user.id, keep.deviceId);
  await audit(deps.db, { type, userId: user.id, customerId: user.customer_id, ...request, details: { ...ended, trusted_devices_revoked: devices } });
  await notifyUser(deps, user, { subject: 'mail.password_changed.subject', text: 'mail.password_changed.text' });
}

export async function resetPassword(deps: AccountDeps, token: string, newPassword: string, request: RequestInfo): Promise<UserWithCustomer> {
  const found = await lookupUserToken(deps.db, deps.secrets, 'password_reset', token);
  if (found.status !== 'valid') throw new DomainError(`reset_${found.status}`, found.status === 'expired' ? 'reset.error.expired' : 'reset.error.invalid', 400);
  const user = await findUserById(deps.db, found.userId);
  if (!user || user.status !== 'active') throw new DomainError('reset_invalid', 'reset.error.invalid', 400);
  assertAcceptablePassword(newPassword, { email: user.email, name: user.name });
  const hash = await deps.hasher.hash(newPassword);
  await deps.db.transaction(async (trx) => {
    if (!(await consumeUserToken(trx, found.id))) throw new DomainError('reset_used', 'reset.error.invalid', 400);
    await trx('users').where({ id: user.id }).update({ password_hash: hash, updated_at: new Date() });
  });
  await afterPasswordChange(deps, user, 'password.reset', request, {});
  return user;
}

export async function changePassword(
  deps: AccountDeps,
  user: UserWithCustomer,
  input: { currentPassword: string; newPassword: string; request: RequestInfo; keepSessionUid?: string | undefined; keepDeviceId?: string | undefined },
): Promise<void> {
  const { ok } = await deps.hasher.verify(user.password_hash, input.currentPassword);
  if (!ok) {
    await audit(deps.db, { type: 'password.change_failed', userId: user.id, customerId: user.customer_id, ...input.request });
    throw new DomainError('wrong_password', 'change.error.current', 400);
  }
  assertAcceptablePassword(input.newPassword, { email: user.email, name: user.name });
  await deps.db('users').where({ id: user.id }).update({ password_hash: await deps.hasher.hash(input.newPassword), updated_at: new Date() });
  await afterPasswordChange(deps, user, 'password.changed', input.request, { sessionUid: input.keepSessionUid, deviceId: input.keepDeviceId });
}

/** A new password without the current one, for a user who just signed in again ("Secure my account"). */
export async function changePasswordWithoutCurrent(deps: AccountDeps, user: UserWithCustomer, newPassword: string, request: RequestInfo, keep: { sessionUid?: string }): Promise<void> {
  assertAcceptablePassword(newPassword, { email: user.email, name: user.name });
  await deps.db('users').where({ id: user.id }).update({ password_hash: await deps.hasher.hash(newPassword), updated_at: new Date() });
  await afterPasswordChange(deps, user, 'password.changed', request, { sessionUid: keep.sessionUid });
}

/** Sets the password chosen during an invitation sign-in (the account becomes active when the sign-in completes). */
export async function setInitialPassword(deps: AccountDeps, user: UserWithCustomer, password: string, request: RequestInfo): Promise<void> {
  if (user.status !== 'invited') throw new DomainError('not_invited', 'invite.error.used', 400);
  assertAcceptablePassword(password, { email: user.email, name: user.name });
  await deps.db('users').where({ id: user.id }).update({ password_hash: await deps.hasher.hash(password), updated_at: new Date() });
  await audit(deps.db, { type: 'password.created', userId: user.id, customerId: user.customer_id, ...request });
}

/** Disabling ends every session, refresh token and trusted device at once; enabling lets the user sign in again. */
export async function setUserEnabled(deps: AccountDeps, target: UserWithCustomer, enabled: boolean, by: { id?: string; kind: 'admin' | 'operator' }, request: RequestInfo): Promise<void> {
  if (enabled) {
    const status = target.password_hash ? 'active' : 'invited';
    await deps.db('users').where({ id: target.id, status: 'disabled' }).update({ status, updated_at: new Date() });
    await audit(deps.db, { type: 'user.enabled', userId: target.id, customerId: target.customer_id, ...request, details: { by: by.kind, admin_id: by.id } });
    return;
  }
  await deps.db('users').where({ id: target.id }).update({ status: 'disabled', updated_at: new Date() });
  const ended = await endUserSessions(deps, target.id);
  const devices = await revokeAllTrustedDevices(deps.db, target.id);
  await audit(deps.db, {
    type: 'user.disabled',
    userId: target.id,
    customerId: target.customer_id,
    ...request,
    details: { by: by.kind, admin_id: by.id, ...ended, trusted_devices_revoked: devices },
  });
}
