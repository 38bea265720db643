// Mails a security notice to a user. A notice that cannot be delivered does not undo the change it
// reports; the failure is logged and audited instead.
import type { Db } from '../db/index.js';
import { mailLocale } from '../i18n/index.js';
import type { Logger } from '../log.js';
import type { Mailer } from '../mail/mailer.js';
import { securityNoticeMessage, type SecurityNotice } from '../mail/messages.js';
import { audit } from '../security/audit.js';

export interface NotifyDeps {
  db: Db;
  mailer: Mailer;
  log: Logger;
}

export async function notifyUser(deps: NotifyDeps, user: { id: string; email: string; locale: string | null }, notice: Omit<SecurityNotice, 'to'>): Promise<boolean> {
  try {
    await deps.mailer.send(await securityNoticeMessage(mailLocale(user.locale), { ...notice, to: user.email }));
    return true;
  } catch (error) {
    deps.log.warn({ err: error, user_id: user.id, notice: notice.subject }, 'security notice not delivered');
    await audit(deps.db, { type: 'mail.failed', userId: user.id, details: { notice: notice.subject } });
    return false;
  }
}
