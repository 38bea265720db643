// The audit log: every security-relevant event with time, IP and user agent (DESIGN §6).
import { type Db, fastQuery } from '../db/index.js';

export interface RequestInfo {
  ip?: string | undefined;
  userAgent?: string | undefined;
}

export interface AuditEvent extends RequestInfo {
  type: string;
  userId?: string | null | undefined;
  customerId?: string | null | undefined;
  details?: Record<string, unknown>;
}

const AUDIT_INSERT = 'INSERT INTO audit_events (type, user_id, customer_id, ip, user_agent, details) VALUES ($1, $2, $3, $4, $5, $6)';

function auditValues(event: AuditEvent): unknown[] {
  return [event.type, event.userId ?? null, event.customerId ?? null, event.ip ?? null, event.userAgent?.slice(0, 512) ?? null, JSON.stringify(event.details ?? {})];
}

export async function audit(db: Db, event: AuditEvent): Promise<void> {
  await fastQuery(db, 'audit_insert', AUDIT_INSERT, auditValues(event));
}

/**
 * Writes the event together with other changes in one statement, so both happen or neither does, without
 * a transaction's extra round trips: `before` are data-modifying CTEs (`name AS (DELETE …)`) whose
 * parameters come after the event's six ($7, $8, …).
 */
export async function auditWith(db: Db, name: string, event: AuditEvent, before: string[], values: unknown[]): Promise<void> {
  await fastQuery(db, name, `WITH ${before.join(', ')} ${AUDIT_INSERT}`, [...auditValues(event), ...values]);
}

export interface AuditRow {
  id: number;
  at: Date;
  type: string;
  user_id: string | null;
  customer_id: string | null;
  ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown>;
}

export async function listAuditEvents(db: Db, filter: { userId?: string; type?: string } = {}, limit = 100): Promise<AuditRow[]> {
  const q = db<AuditRow>('audit_events').orderBy('id', 'desc').limit(limit);
  if (filter.userId) q.where('user_id', filter.userId);
  if (filter.type) q.where('type', filter.type);
  return q;
}
