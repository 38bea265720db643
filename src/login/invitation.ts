// An invitation link (/invite/<token>) starts a sign-in to the account console; the token travels to
// that sign-in in a short-lived signed, HttpOnly cookie and is bound to the login flow there.
import type { Context } from 'koa';
import { lookupUserToken } from '../accounts/user-tokens.js';
import type { Services } from '../services.js';
import type { LoginFlow } from './flow.js';

const COOKIE = 'idp_invite';
const cookieOptions = { httpOnly: true, sameSite: 'lax' as const, signed: true, path: '/interaction', overwrite: true };

export function setInvitationCookie(ctx: Context, token: string): void {
  ctx.cookies.set(COOKIE, token, { ...cookieOptions, secure: ctx.secure, maxAge: 60 * 60 * 1000 });
}

/** On a fresh sign-in, binds a valid invitation from the cookie to the flow (and clears the cookie). */
export async function takeInvitation(ctx: Context, services: Services, flow: LoginFlow): Promise<boolean> {
  const token = ctx.cookies.get(COOKIE, { signed: true });
  if (!token) return false;
  ctx.cookies.set(COOKIE, null, cookieOptions);
  if (flow.user_id || flow.state.invitation) return false;
  const found = await lookupUserToken(services.db, services.secrets, 'invitation', token);
  if (found.status !== 'valid') return false;
  flow.state.invitation = { tokenId: found.id, userId: found.userId };
  return true;
}
