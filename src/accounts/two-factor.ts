// Turning the authenticator app on and off, with what every such change brings: an audit event, a
// notice to the user, and trusted devices revoked (so a trusted browser never becomes a way around
// the factor that was just removed, or keeps skipping codes after a new factor was set up).
import { audit, type RequestInfo } from '../security/audit.js';
import type { Secrets } from '../security/crypto.js';
import { notifyUser, type NotifyDeps } from './notify.js';
import { activateTotp, removeTotp } from './totp.js';
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
