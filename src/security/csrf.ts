// CSRF protection for every state-changing form: a random value in a signed, HttpOnly, SameSite cookie
// and, in each form, a token derived from it with a server key. A cross-site page can neither read the
// cookie nor compute the token.
import type { Context, Next } from 'koa';
import { DomainError } from '../errors.js';
import { randomToken, safeEqual, type Secrets } from './crypto.js';

const COOKIE = 'idp_csrf';

export function csrf(secrets: Secrets) {
  return async function csrfMiddleware(ctx: Context, next: Next): Promise<void> {
    let seed = ctx.cookies.get(COOKIE, { signed: true });
    if (!seed || !/^[\w-]{43}$/.test(seed)) {
      seed = randomToken(32);
      ctx.cookies.set(COOKIE, seed, { httpOnly: true, sameSite: 'lax', signed: true, secure: ctx.secure, overwrite: true });
    }
    const expected = secrets.csrfToken(seed);
    ctx.state.csrfToken = expected;
    if (!['GET', 'HEAD', 'OPTIONS'].includes(ctx.method)) {
      const body = ctx.request.body as Record<string, unknown> | undefined;
      const sent = typeof body?._csrf === 'string' ? body._csrf : ctx.get('x-csrf-token');
      if (!sent || !safeEqual(sent, expected)) throw new DomainError('csrf', 'error.csrf', 403);
    }
    await next();
  };
}
