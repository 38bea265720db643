// The user's security log: their audit events in plain words, with changes to the account marked (what
// "Secure my account" asks the user to review).
import type { Db } from '../db/index.js';
import type { MessageKey, Translate } from '../i18n/index.js';
import { listAuditEvents } from '../security/audit.js';
import { describeUserAgent } from '../security/user-agent.js';

/** Events that changed the account (highlighted; the only ones shown after "Secure my account"). */
const CHANGES = new Set([
  'email.changed',
  'password.changed',
  'password.reset',
  'password.created',
  'totp.enabled',
  'totp.disabled',
  'device.trusted',
  'device_credential.created',
  'device_credential.renewed',
  'device_credential.deleted',
  'google.linked',
  'google.unlinked',
  'google.email_set',
  'profile.updated',
  'user.created',
  'user.disabled',
  'user.enabled',
  'account.secured',
]);

export interface LogEntry {
  at: Date;
  type: string;
  label: string;
  ip: string | null;
  device: string | null;
  change: boolean;
  byAdmin: boolean;
}

export async function securityLog(db: Db, userId: string, t: Translate, options: { limit?: number; sinceDays?: number; changesOnly?: boolean } = {}): Promise<LogEntry[]> {
  const since = options.sinceDays ? Date.now() - options.sinceDays * 24 * 60 * 60 * 1000 : 0;
  const rows = await listAuditEvents(db, { userId }, options.limit ?? 500);
  return rows
    .filter((r) => r.at.getTime() >= since && (!options.changesOnly || CHANGES.has(r.type)))
    .map((r) => {
      const key = `log.event.${r.type}` as MessageKey;
      const label = t(key);
      const ua = r.user_agent ? describeUserAgent(r.user_agent) : undefined;
      return {
        at: r.at,
        type: r.type,
        label: label === key ? r.type : label,
        ip: r.ip,
        device: ua && ua.browser !== 'unknown' ? `${ua.browser} · ${ua.os}` : null,
        change: CHANGES.has(r.type),
        byAdmin: r.details.by === 'admin' || r.details.via === 'admin',
      };
    });
}
