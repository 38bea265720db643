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

export async function audit(db: Db, event: AuditEvent): Promise<void> {
  await fastQuery(db, 'audit_insert', 'INSERT INTO audit_events (type, user_id, customer_id, ip, user_agent, details) VALUES ($1, $2, $3, $4, $5, $6)', [
    event.type,
    event.userId ?? null,
    event.customerId ?? null,
    event.ip ?? null,
    event.userAgent?.slice(0, 512) ?? null,
    JSON.stringify(event.details ?? {}),
  ]);
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
