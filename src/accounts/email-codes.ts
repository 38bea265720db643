// Six-digit email codes for the second sign-in step: from a CSPRNG, stored only as a keyed hash, valid
// 10 minutes, single use, at most 5 wrong tries, and bound to one sign-in (the flow id).
import type { Db } from '../db/index.js';
import { randomDigits, safeEqual, type Secrets } from '../security/crypto.js';

export const EMAIL_CODE_TTL_MS = 10 * 60 * 1000;
export const EMAIL_CODE_MAX_ATTEMPTS = 5;

export type EmailCodeCheck = 'ok' | 'wrong' | 'expired' | 'locked' | 'none';

interface EmailCodeRow {
  id: string;
  flow_id: string;
  user_id: string;
  code_hash: string;
  attempts: number;
  expires_at: Date;
  consumed_at: Date | null;
}

const hashCode = (secrets: Secrets, flowId: string, code: string) => secrets.keyedHash(code, `email-code:${flowId}`);

/** Creates a new code for the flow; earlier codes of the same flow stop working. */
export async function issueEmailCode(db: Db, secrets: Secrets, input: { flowId: string; userId: string }): Promise<{ id: string; code: string }> {
  const code = randomDigits(6);
  return db.transaction(async (trx) => {
    await trx('email_codes').where({ flow_id: input.flowId }).whereNull('consumed_at').update({ consumed_at: new Date() });
    const [row] = await trx('email_codes')
      .insert({ flow_id: input.flowId, user_id: input.userId, code_hash: hashCode(secrets, input.flowId, code), expires_at: new Date(Date.now() + EMAIL_CODE_TTL_MS) })
      .returning('id');
    return { id: (row as { id: string }).id, code };
  });
}

/** Removes a code whose email could not be delivered, so the next try starts clean. */
export async function discardEmailCode(db: Db, id: string): Promise<void> {
  await db('email_codes').where({ id }).delete();
}

export async function hasPendingEmailCode(db: Db, flowId: string): Promise<boolean> {
  const row = await db('email_codes').where({ flow_id: flowId }).whereNull('consumed_at').first('id');
  return Boolean(row);
}

/**
 * Checks a code against the flow's current one. Counting is atomic in the database, so parallel wrong
 * guesses each count, and no guess is accepted after the fifth wrong one.
 */
export async function checkEmailCode(db: Db, secrets: Secrets, input: { flowId: string; userId: string; code: string }): Promise<EmailCodeCheck> {
  // The flow's newest code (issuing a code retires the older ones, so only the newest can be in use).
  const row = await db<EmailCodeRow>('email_codes')
    .where({ flow_id: input.flowId, user_id: input.userId })
    .orderBy('created_at', 'desc')
    .first();
  if (!row) return 'none';
  if (row.consumed_at) {
    // Used by this very sign-in already: the same code again is the same form sent twice (a double
    // click, or a retry after the database failed before the step was recorded). It proves nothing
    // new and works only in this flow, so it is accepted rather than losing the sign-in.
    const repeated = row.expires_at.getTime() > Date.now() && safeEqual(hashCode(secrets, input.flowId, input.code), row.code_hash);
    return repeated ? 'ok' : 'none';
  }
  if (row.expires_at.getTime() <= Date.now()) return 'expired';
  if (row.attempts >= EMAIL_CODE_MAX_ATTEMPTS) return 'locked';

  if (safeEqual(hashCode(secrets, input.flowId, input.code), row.code_hash)) {
    const consumed = await db('email_codes')
      .where({ id: row.id })
      .whereNull('consumed_at')
      .where('attempts', '<', EMAIL_CODE_MAX_ATTEMPTS)
      .where('expires_at', '>', new Date())
      .update({ consumed_at: new Date() })
      .returning('id');
    return consumed.length ? 'ok' : 'locked';
  }
  const counted = await db('email_codes')
    .where({ id: row.id })
    .whereNull('consumed_at')
    .where('attempts', '<', EMAIL_CODE_MAX_ATTEMPTS)
    .increment('attempts', 1)
    .returning('attempts');
  const attempts = (counted[0] as { attempts: number } | undefined)?.attempts;
  return attempts === undefined || attempts >= EMAIL_CODE_MAX_ATTEMPTS ? 'locked' : 'wrong';
}
