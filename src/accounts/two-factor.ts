// Turning the authenticator app on and off, with what every such change brings: an audit event, a
// notice to the user, and trusted devices revoked (so a trusted browser never becomes a way around
// the factor that was just removed, or keeps skipping codes after a new factor was set up).
import { audit, type RequestInfo } from '../security/audit.js';
import type { Secrets } from '../security/crypto.js';
import { notifyUser, type NotifyDeps } from './notify.js';
import { activateTotp, endExpiredBypasses, removeTotp, resumeTotp, suspendTotp } from './totp.js';
import { DomainError } from '../errors.js';
import { revokeAllTrustedDevices } from './trusted-devices.js';
import type { UserWithCustomer } from './users.js';

export type Actor = { kind: 'user' } | { kind: 'admin'; userId: string; email: string } | { kind: 'operator' };

interface Deps extends NotifyDeps {
  secrets: Secrets;
}

export async function enableTotp(
  deps: Deps,
  user: UserWithCustomer,
  input: { code: string; deviceName: string; request: RequestInfo; currentDeviceId?: string | undefined },
): Promise<string[]> {
  const recoveryCodes = await activateTotp(deps.db, deps.secrets, user.id, input.code, input.deviceName);
  const revoked = await revokeAllTrustedDevices(deps.db, user.id, input.currentDeviceId);
  await audit(deps.db, {
    type: 'totp.enabled',
    userId: user.id,
    customerId: user.customer_id,
    ...input.request,
    details: { device_name: input.deviceName, trusted_devices_revoked: revoked },
  });
  await notifyUser(deps, user, { subject: 'mail.totp_on.subject', text: 'mail.totp_on.text', params: { device: input.deviceName } });
  return recoveryCodes;
}

/** Returns false when the user had no active authenticator. */
export async function disableTotp(
  deps: NotifyDeps,
  user: UserWithCustomer,
  actor: Actor,
  request: RequestInfo,
  currentDeviceId?: string,
): Promise<boolean> {
  if (!(await removeTotp(deps.db, user.id))) return false;
  const revoked = await revokeAllTrustedDevices(deps.db, user.id, actor.kind === 'user' ? currentDeviceId : undefined);
  await audit(deps.db, {
    type: 'totp.disabled',
    userId: user.id,
    customerId: user.customer_id,
    ...request,
    details: { by: actor.kind, ...(actor.kind === 'admin' ? { admin_id: actor.userId } : {}), trusted_devices_revoked: revoked },
  });
  const text = actor.kind === 'admin' ? 'mail.totp_off.text.admin' : actor.kind === 'operator' ? 'mail.totp_off.text.operator' : 'mail.totp_off.text.user';
  await notifyUser(deps, user, { subject: 'mail.totp_off.subject', text, params: actor.kind === 'admin' ? { admin: actor.email } : {} });
  return true;
}

/** Support's temporary bypass lasts 24 hours unless said otherwise, and at most 7 days. */
export const BYPASS_DEFAULT_HOURS = 24;
export const BYPASS_MAX_HOURS = 7 * 24;

/**
 * Suspends the user's authenticator for `hours`: until then they sign in with password and email code
 * and are asked to set the app up again; afterwards the old app is required again.
 */
export async function suspendTotpTemporarily(deps: NotifyDeps, user: UserWithCustomer, actor: Actor, hours: number, request: RequestInfo): Promise<Date> {
  if (!Number.isFinite(hours) || hours <= 0 || hours > BYPASS_MAX_HOURS) {
    throw new DomainError('invalid_duration', 'totp.error.bypass_duration', 400, { hours: BYPASS_MAX_HOURS });
  }
  const until = new Date(Date.now() + hours * 60 * 60 * 1000);
  if (!(await suspendTotp(deps.db, user.id, until))) throw new DomainError('totp_not_active', 'totp.error.not_active', 409, { email: user.email });
  const revoked = await revokeAllTrustedDevices(deps.db, user.id);
  await audit(deps.db, {
    type: 'totp.bypass_started',
    userId: user.id,
    customerId: user.customer_id,
    ...request,
    details: { by: actor.kind, ...(actor.kind === 'admin' ? { admin_id: actor.userId } : {}), until: until.toISOString(), trusted_devices_revoked: revoked },
  });
  await notifyUser(deps, user, { subject: 'mail.totp_bypass.subject', text: 'mail.totp_bypass.text', params: { until: `${until.toISOString().slice(0, 16).replace('T', ' ')} UTC` } });
  return until;
}

/** The user found the old phone: the bypass ends and the old app is required again. */
export async function keepOldTotp(deps: NotifyDeps, user: UserWithCustomer, request: RequestInfo): Promise<void> {
  if (await resumeTotp(deps.db, user.id)) {
    await audit(deps.db, { type: 'totp.bypass_ended', userId: user.id, customerId: user.customer_id, ...request, details: { reason: 'kept_old_app' } });
  }
}

/** Ends bypasses whose time is up (for one user at sign-in, or all in the periodic clean-up), with an audit event each. */
export async function expireBypasses(deps: Pick<NotifyDeps, 'db'>, userId?: string): Promise<number> {
  const ended = await endExpiredBypasses(deps.db, userId);
  for (const id of ended) await audit(deps.db, { type: 'totp.bypass_ended', userId: id, details: { reason: 'expired' } });
  return ended.length;
}
