// The account console is a first-party client of this provider: people sign in to it through the normal
// sign-in steps, and its pages read the provider's own session (same origin, same cookie) to know who
// is signed in and when. No second session system exists.
import { createHash } from 'node:crypto';
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import { findUserById, type UserWithCustomer } from '../accounts/users.js';
import { setPageLocale } from '../http/render.js';
import { CONSOLE_CLIENT_ID } from '../oidc/clients.js';
import { randomToken } from '../security/crypto.js';

/** Sensitive actions (2FA changes, admin actions) need a sign-in at most this old. */
export const RECENT_SIGN_IN_SECONDS = 5 * 60;
const LOGIN_COOKIE = 'idp_console_login';

export interface ConsoleState {
  user: UserWithCustomer;
  /** Epoch seconds of the last sign-in (the provider session's loginTs). */
  loginTs: number;
  /** The provider session's uid: kept when a password change ends the user's other sessions. */
  sessionUid: string;
}

export function consoleClientMetadata(issuer: string) {
  return {
    client_id: CONSOLE_CLIENT_ID,
    client_name: 'Account',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [`${issuer}/account/callback`],
  } as const;
}

/** A path inside the console to come back to after sign-in; anything else falls back to /account. */
function safeReturnPath(value: unknown): string {
  return typeof value === 'string' && /^\/account(\/[\w/-]*)?$/.test(value) ? value : '/account';
}

/** Sends the browser through the provider's sign-in (prompt=login when a fresh sign-in is needed). */
export function redirectToSignIn(ctx: Context, issuer: string, returnTo: string, fresh: boolean): void {
  const state = randomToken(16);
  const verifier = randomToken(32);
  ctx.cookies.set(LOGIN_COOKIE, JSON.stringify({ state, verifier, returnTo: safeReturnPath(returnTo) }), {
    httpOnly: true,
    sameSite: 'lax',
    signed: true,
    secure: ctx.secure,
    path: '/account',
    maxAge: 60 * 60 * 1000,
    overwrite: true,
  });
  const url = new URL(`${issuer}/auth`);
  url.search = new URLSearchParams({
    client_id: CONSOLE_CLIENT_ID,
    response_type: 'code',
    scope: 'openid',
    redirect_uri: `${issuer}/account/callback`,
    state,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...(fresh ? { prompt: 'login' } : {}),
  }).toString();
  ctx.status = 303;
  ctx.redirect(url.href);
}

/**
 * The end of the console's sign-in: checks state and PKCE and consumes the authorization code (the
 * console needs no tokens: the provider session set during sign-in is what identifies the user).
 * Returns the path to go back to, or undefined when the callback is not genuine.
 */
export async function completeSignIn(ctx: Context, provider: Provider): Promise<string | undefined> {
  const raw = ctx.cookies.get(LOGIN_COOKIE, { signed: true });
  ctx.cookies.set(LOGIN_COOKIE, null, { path: '/account', signed: true, overwrite: true });
  let saved: { state?: string; verifier?: string; returnTo?: string };
  try {
    saved = JSON.parse(raw ?? '{}') as typeof saved;
  } catch {
    return undefined;
  }
  const { state, code } = ctx.query;
  if (!saved.state || !saved.verifier || state !== saved.state || typeof code !== 'string') return undefined;
  const found = await provider.AuthorizationCode.find(code);
  if (!found || found.clientId !== CONSOLE_CLIENT_ID || (found as unknown as { consumed?: unknown }).consumed || found.isExpired) return undefined;
  if (found.codeChallenge !== createHash('sha256').update(saved.verifier).digest('base64url')) return undefined;
  await found.consume();
  return safeReturnPath(saved.returnTo);
}

/** Middleware: a signed-in, active user, or off to the sign-in page. */
export function requireConsoleUser(provider: Provider, db: Parameters<typeof findUserById>[0], issuer: string) {
  return async function consoleUser(ctx: Context, next: Next): Promise<void> {
    const session = await provider.Session.get(ctx as never);
    const user = session.accountId ? await findUserById(db, session.accountId) : undefined;
    if (!user || user.status !== 'active' || !session.loginTs) {
      redirectToSignIn(ctx, issuer, ctx.method === 'GET' ? ctx.path : '/account', false);
      return;
    }
    setPageLocale(ctx, { saved: user.locale });
    ctx.state.console = { user, loginTs: session.loginTs, sessionUid: session.uid } satisfies ConsoleState;
    await next();
  };
}

/** For sensitive actions: true when the sign-in is recent; otherwise redirects to a fresh sign-in. */
export function ensureRecentSignIn(ctx: Context, issuer: string, returnTo: string): boolean {
  const { loginTs } = ctx.state.console as ConsoleState;
  if (Date.now() / 1000 - loginTs <= RECENT_SIGN_IN_SECONDS) return true;
  redirectToSignIn(ctx, issuer, returnTo, true);
  return false;
}

export function currentConsole(ctx: Context): ConsoleState {
  return ctx.state.console as ConsoleState;
}
