// Sign in with Google, the account side (DESIGN §2): which user a verified Google identity signs in.
//
// An admin enters a user's Google address (`google_email`). The first Google sign-in whose ID token
// carries that address, verified by Google, stores the Google subject on the user (`google_subject`,
// audited as google.linked). From then on only the subject counts: a Google account that changes its
// address keeps working, and whoever later gets the old address at Google signs in nowhere.
// Nothing is ever created from a Google identity.
import { z } from 'zod';
import type { Db } from '../db/index.js';
import { DomainError, isUniqueViolation } from '../errors.js';
import { audit, type RequestInfo } from '../security/audit.js';
import { parseOrThrow } from './customers.js';
import type { Actor } from './two-factor.js';
import { emailSchema, findUserByEmail, findUserById, type UserWithCustomer } from './users.js';

/** What the upstream ID token says, already validated (issuer, audience, signature, nonce, expiry). */
export interface GoogleIdentity {
  subject: string;
  email: string | undefined;
  emailVerified: boolean;
  /** Google Workspace domain (`hd`), when the account belongs to one. */
  hostedDomain: string | undefined;
}

/**
 * Why a Google identity signs nobody in. The page shows one of two messages: `email_unverified` has its
 * own; every other reason gets the same "no account is linked" page, so nobody learns whether an
 * address belongs to a user, or in which state that user is. The audit log keeps the reason.
 */
export type GoogleRefusal =
  | 'email_unverified'
  | 'no_match'
  /** The address matches a user who is linked to a different Google account. */
  | 'linked_to_other_subject'
  /** Linking lost a race: the subject was stored on another user in the meantime. */
  | 'subject_linked_elsewhere'
  | 'status_invited'
  | 'status_disabled';

export type GoogleMatch = { ok: true; user: UserWithCustomer; linked: boolean } | { ok: false; reason: GoogleRefusal; userId?: string | undefined };

const subjectSchema = z.string().min(1).max(255);

/** Finds the user a Google identity signs in, linking the subject on the first sign-in by address. */
export async function resolveGoogleIdentity(db: Db, identity: GoogleIdentity, request: RequestInfo): Promise<GoogleMatch> {
  if (!subjectSchema.safeParse(identity.subject).success) return { ok: false, reason: 'no_match' };
  // Google vouches for the address only with email_verified; without it the identity is not accepted
  // at all, even for a linked subject (DESIGN §2).
  if (identity.emailVerified !== true) return { ok: false, reason: 'email_unverified' };

  const bySubject = await db('users').where({ google_subject: identity.subject }).first('id');
  if (bySubject) return usable(await findUserById(db, bySubject.id as string), false);

  const email = identity.email?.trim().toLowerCase();
  if (!email) return { ok: false, reason: 'no_match' };
  const byEmail = await db('users').whereRaw('lower(google_email) = ?', [email]).first('id', 'google_subject', 'status');
  if (!byEmail) return { ok: false, reason: 'no_match' };
  const userId = byEmail.id as string;
  if (byEmail.google_subject) return { ok: false, reason: 'linked_to_other_subject', userId };
  if (byEmail.status !== 'active') return { ok: false, reason: `status_${byEmail.status as 'invited' | 'disabled'}`, userId };

  try {
    const linked = await db.transaction(async (trx) => {
      // Conditional update: a concurrent link or a changed address in between leaves the row alone.
      const rows = await trx('users')
        .where({ id: userId, status: 'active' })
        .whereNull('google_subject')
        .whereRaw('lower(google_email) = ?', [email])
        .update({ google_subject: identity.subject, updated_at: trx.fn.now() });
      if (!rows) return false;
      const user = await trx('users').where({ id: userId }).first('customer_id');
      await audit(trx, {
        type: 'google.linked',
        userId,
        customerId: user?.customer_id as string | undefined,
        ...request,
        details: { google_subject: identity.subject, google_email: email, hd: identity.hostedDomain ?? null },
      });
      return true;
    });
    if (!linked) {
      // Lost a race: another sign-in with the same Google account may have linked it just now.
      const now = await db('users').where({ google_subject: identity.subject }).first('id');
      if (now) return usable(await findUserById(db, now.id as string), false);
      return { ok: false, reason: 'linked_to_other_subject', userId };
    }
  } catch (error) {
    if (isUniqueViolation(error, 'users_google_subject_unique')) return { ok: false, reason: 'subject_linked_elsewhere', userId };
    throw error;
  }
  return usable(await findUserById(db, userId), true);
}

function usable(user: UserWithCustomer | undefined, linked: boolean): GoogleMatch {
  if (!user) return { ok: false, reason: 'no_match' };
  if (user.status !== 'active') return { ok: false, reason: `status_${user.status}`, userId: user.id };
  return { ok: true, user, linked };
}

async function requireUser(db: Db, email: string): Promise<UserWithCustomer> {
  const user = await findUserByEmail(db, email);
  if (!user) throw new DomainError('unknown_user', 'user.error.unknown', 404, { email });
  return user;
}

function actorDetails(actor: Actor): Record<string, unknown> {
  return { by: actor.kind, ...(actor.kind === 'admin' ? { admin_id: actor.userId } : {}) };
}

/**
 * Sets the Google address an admin entered for a user. Setting it (even to the same address) removes
 * an existing link, so the next Google sign-in with that address, verified by Google, links afresh:
 * this is how an admin moves a user to a new Google account.
 */
export async function setGoogleEmail(db: Db, userEmail: string, googleEmail: string, actor: Actor, request: RequestInfo): Promise<UserWithCustomer> {
  const address = parseOrThrow(emailSchema, googleEmail, 'invalid_google_email');
  const user = await requireUser(db, userEmail);
  try {
    await db.transaction(async (trx) => {
      await trx('users').where({ id: user.id }).update({ google_email: address, google_subject: null, updated_at: trx.fn.now() });
      if (user.google_subject) {
        await audit(trx, {
          type: 'google.unlinked',
          userId: user.id,
          customerId: user.customer_id,
          ...request,
          details: { ...actorDetails(actor), reason: 'google_email_set', google_subject: user.google_subject, google_email: user.google_email },
        });
      }
      await audit(trx, {
        type: 'google.email_set',
        userId: user.id,
        customerId: user.customer_id,
        ...request,
        details: { ...actorDetails(actor), google_email: address, previous_google_email: user.google_email },
      });
    });
  } catch (error) {
    if (isUniqueViolation(error, 'users_google_email_unique')) {
      throw new DomainError('google_email_taken', 'user.error.google_email_taken', 409, { google_email: address });
    }
    throw error;
  }
  return (await findUserById(db, user.id))!;
}

/** Removes the Google address and the link: the user can no longer sign in with Google. */
export async function unlinkGoogle(db: Db, userEmail: string, actor: Actor, request: RequestInfo): Promise<UserWithCustomer> {
  const user = await requireUser(db, userEmail);
  if (!user.google_email && !user.google_subject) {
    throw new DomainError('google_not_set', 'user.error.google_not_set', 409, { email: user.email });
  }
  await db.transaction(async (trx) => {
    await trx('users').where({ id: user.id }).update({ google_email: null, google_subject: null, updated_at: trx.fn.now() });
    await audit(trx, {
      type: 'google.unlinked',
      userId: user.id,
      customerId: user.customer_id,
      ...request,
      details: { ...actorDetails(actor), reason: 'unlinked', google_subject: user.google_subject, google_email: user.google_email },
    });
  });
  return (await findUserById(db, user.id))!;
}
