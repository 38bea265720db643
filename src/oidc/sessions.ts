// Ending a user's sessions and tokens after a security event (password reset or change, account
// disabled). This is the one place outside provider.ts that knows how oidc-provider stores them.
import type { Db } from '../db/index.js';

const TOKEN_MODELS = ['Grant', 'AccessToken', 'RefreshToken', 'AuthorizationCode', 'DeviceCode', 'BackchannelAuthenticationRequest'];

/**
 * Deletes the user's provider sessions (all but `keepSessionUid`, the current browser's, when given)
 * and every grant, refresh token, access token and code issued for them, so apps must sign in again.
 */
export async function endUserSessions(db: Db, userId: string, keepSessionUid?: string): Promise<{ sessions: number; tokens: number }> {
  return db.transaction(async (trx) => {
    const sessions = trx('oidc_payloads').where({ model: 'Session' }).whereRaw("payload->>'accountId' = ?", [userId]);
    if (keepSessionUid) sessions.whereNot({ uid: keepSessionUid });
    const endedSessions = (await sessions.delete().returning('id')).length;
    const tokens = (
      await trx('oidc_payloads').whereIn('model', TOKEN_MODELS).whereRaw("payload->>'accountId' = ?", [userId]).delete().returning('id')
    ).length;
    return { sessions: endedSessions, tokens };
  });
}
