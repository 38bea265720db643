// The trusted-device cookie: signed, HttpOnly, SameSite=Lax, holding only random tokens (up to five, so
// several people sharing a browser can each trust it). What a token means lives in trusted_devices.
import type { Context } from 'koa';
import { TRUSTED_DEVICE_TTL_MS } from '../accounts/trusted-devices.js';

const COOKIE = 'idp_trust';
const MAX_TOKENS = 5;
const TOKEN = /^[\w-]{43}$/;

export function readTrustTokens(ctx: Context): string[] {
  const raw = ctx.cookies.get(COOKIE, { signed: true }) ?? '';
  return raw.split('.').filter((t) => TOKEN.test(t)).slice(0, MAX_TOKENS);
}

export function addTrustToken(ctx: Context, token: string): void {
  const tokens = [token, ...readTrustTokens(ctx).filter((t) => t !== token)].slice(0, MAX_TOKENS);
  ctx.cookies.set(COOKIE, tokens.join('.'), {
    httpOnly: true,
    sameSite: 'lax',
    signed: true,
    secure: ctx.secure,
    maxAge: TRUSTED_DEVICE_TTL_MS,
    overwrite: true,
  });
}
