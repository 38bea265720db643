// A sign-in in progress: one record per oidc-provider interaction, in the database so the next step can
// run on another instance. It records who has been identified and which factors were passed.
import { type Db, fastQuery } from '../db/index.js';
import { type AuditEvent, auditWith } from '../security/audit.js';

export interface FlowState {
  /** Methods passed so far, as RFC 8176 amr values (pwd, mca, otp, fed, …). */
  amr: string[];
  /** Set once the user is identified: the second factors that apply were looked up. */
  factorsEvaluated?: boolean;
  /** This browser is one the user trusts (skips the email code, never TOTP). */
  trustedDeviceId?: string;
  /** Set once the user is identified when an authenticator app is active: its device name. */
  totpDevice?: string;
  /** A sign-in started from an invitation link: the token (used up at the end) and the invited user. */
  invitation?: { tokenId: string; userId: string };
  /** Support's temporary bypass is in force: email code instead of TOTP, then the re-enrolment page. */
  totpBypassUntil?: string;
  /** The re-enrolment page was answered (set up again, kept the old app, or later). */
  totpRenewAnswered?: boolean;
  /** The trust question was answered (yes or no). */
  trustAnswered?: boolean;
  /**
   * A "Sign in with Google" attempt under way: the keyed hash of the upstream `state` (the PKCE
   * verifier and nonce are derived from the state, see google-upstream.ts). Removed when the callback
   * arrives, so a callback is accepted once.
   */
  google?: { stateHash: string; startedAt: number };
}

export interface LoginFlow {
  id: string;
  user_id: string | null;
  state: FlowState;
  expires_at: Date;
}

/** The interaction's flow, created on first use. One statement: the insert, or else the existing row. */
export async function loadFlow(db: Db, interactionUid: string, expiresAt: Date): Promise<LoginFlow> {
  const [flow] = await fastQuery<LoginFlow>(
    db,
    'login_flows_load',
    `WITH created AS (
       INSERT INTO login_flows (id, state, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (id) DO NOTHING
       RETURNING id, user_id, state, expires_at
     )
     SELECT id, user_id, state, expires_at FROM created
     UNION ALL
     SELECT id, user_id, state, expires_at FROM login_flows WHERE id = $4
     LIMIT 1`,
    [interactionUid, JSON.stringify({ amr: [] }), expiresAt, interactionUid],
  );
  // A concurrent first request may have inserted the row after this statement's snapshot: read it again.
  return flow ?? (await db<LoginFlow>('login_flows').where({ id: interactionUid }).first())!;
}

export async function saveFlow(db: Db, flow: LoginFlow): Promise<void> {
  await db('login_flows').where({ id: flow.id }).update({ user_id: flow.user_id, state: JSON.stringify(flow.state) });
}

/** The flow and the email codes sent for it (one statement). */
export async function deleteFlow(db: Db, interactionUid: string): Promise<void> {
  await fastQuery(db, 'login_flows_delete', 'WITH codes AS (DELETE FROM email_codes WHERE flow_id = $1) DELETE FROM login_flows WHERE id = $1', [interactionUid]);
}

/** A finished sign-in: its audit event is written and its flow and email codes deleted, all or nothing. */
export async function endFlow(db: Db, interactionUid: string, event: AuditEvent): Promise<void> {
  await auditWith(db, 'login_flows_end', event, ['codes AS (DELETE FROM email_codes WHERE flow_id = $7)', 'flow AS (DELETE FROM login_flows WHERE id = $7)'], [interactionUid]);
}
