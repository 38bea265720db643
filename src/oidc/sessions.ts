// Ending a user's sessions and tokens after a security event (password reset or change, account
// disabled, "sign out everywhere"). This is the one place outside provider.ts that knows how
// oidc-provider stores them. Apps that registered a back-channel logout URI are told.
import type Provider from 'oidc-provider';
import type { Db } from '../db/index.js';
import type { Logger } from '../log.js';

const TOKEN_MODELS = ['Grant', 'AccessToken', 'RefreshToken', 'AuthorizationCode', 'DeviceCode', 'BackchannelAuthenticationRequest'];

export interface SessionDeps {
  db: Db;
  log: Logger;
  /** When present, apps with a back-channel logout URI get a logout token for each ended session. */
  provider?: Provider | undefined;
}

interface SessionRow {
  id: string;
  uid: string | null;
  payload: { accountId?: string; loginTs?: number; authorizations?: Record<string, { sid?: string; grantId?: string }> };
}

export interface UserSession {
  uid: string;
  loginTs: number | undefined;
  clientIds: string[];
}

export async function listUserSessions(db: Db, userId: string): Promise<UserSession[]> {
  const rows: SessionRow[] = await db('oidc_payloads')
    .where({ model: 'Session' })
    .whereRaw("payload->>'accountId' = ?", [userId])
    .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', new Date()))
    .select('id', 'uid', 'payload');
  return rows
    .filter((r) => r.uid)
    .map((r) => ({ uid: r.uid!, loginTs: r.payload.loginTs, clientIds: Object.keys(r.payload.authorizations ?? {}) }))
    .sort((a, b) => (b.loginTs ?? 0) - (a.loginTs ?? 0));
}

async function notifyApps(deps: SessionDeps, userId: string, sessions: SessionRow[]): Promise<void> {
  if (!deps.provider) return;
  for (const session of sessions) {
    for (const [clientId, authorization] of Object.entries(session.payload.authorizations ?? {})) {
      const client = (await deps.provider.Client.find(clientId).catch(() => undefined)) as
        | { backchannelLogoutUri?: string; backchannelLogout(sub: string, sid: string): Promise<void> }
        | undefined;
      if (!client?.backchannelLogoutUri) continue;
      await client.backchannelLogout(userId, authorization.sid ?? '').catch((err: unknown) => deps.log.warn({ err, client_id: clientId }, 'back-channel logout failed'));
    }
  }
}

/**
 * Deletes the user's provider sessions (all but `keepSessionUid`, the current browser's, when given)
 * and every grant, refresh token, access token and code issued for them, so apps must sign in again.
 */
export async function endUserSessions(deps: SessionDeps, userId: string, keepSessionUid?: string): Promise<{ sessions: number; tokens: number }> {
  const { ended, tokens } = await deps.db.transaction(async (trx) => {
    const sessions = trx('oidc_payloads').where({ model: 'Session' }).whereRaw("payload->>'accountId' = ?", [userId]);
    if (keepSessionUid) sessions.where((q) => q.whereNot({ uid: keepSessionUid }).orWhereNull('uid'));
    const endedRows = (await sessions.delete().returning(['id', 'uid', 'payload'])) as SessionRow[];
    const tokenRows = await trx('oidc_payloads').whereIn('model', TOKEN_MODELS).whereRaw("payload->>'accountId' = ?", [userId]).delete().returning('id');
    return { ended: endedRows, tokens: tokenRows.length };
  });
  await notifyApps(deps, userId, ended);
  return { sessions: ended.length, tokens };
}

/** Ends one of the user's sessions (sign out of one browser). */
export async function endUserSession(deps: SessionDeps, userId: string, sessionUid: string): Promise<boolean> {
  const ended = (await deps.db('oidc_payloads')
    .where({ model: 'Session', uid: sessionUid })
    .whereRaw("payload->>'accountId' = ?", [userId])
    .delete()
    .returning(['id', 'uid', 'payload'])) as SessionRow[];
  await notifyApps(deps, userId, ended);
  return ended.length > 0;
}

/** The apps (clients) that hold a grant for the user: what "apps with access" lists. */
export async function listUserApps(db: Db, userId: string): Promise<string[]> {
  const rows = await db('oidc_payloads')
    .where({ model: 'Grant' })
    .whereRaw("payload->>'accountId' = ?", [userId])
    .distinct(db.raw("payload->>'clientId' as client_id"));
  return (rows as { client_id: string }[]).map((r) => r.client_id).sort();
}

/** Removes an app's access: its grants, their tokens and the remembered consent. */
export async function revokeAppAccess(db: Db, userId: string, clientId: string): Promise<number> {
  return db.transaction(async (trx) => {
    const grants = await trx('oidc_payloads')
      .where({ model: 'Grant' })
      .whereRaw("payload->>'accountId' = ? AND payload->>'clientId' = ?", [userId, clientId])
      .pluck<string[]>('id');
    if (grants.length) {
      await trx('oidc_payloads').whereIn('grant_id', grants).delete();
      await trx('oidc_payloads').where({ model: 'Grant' }).whereIn('id', grants).delete();
    }
    await trx('consents').where({ user_id: userId, client_id: clientId }).delete();
    return grants.length;
  });
}
