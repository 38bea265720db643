// Turns every error into a clear page (or JSON for API callers) with the right status. No stack traces
// reach the client; unexpected errors are logged and answered with 500, database outages with 503.
import type { Context, Next } from 'koa';
import { errors as oidcErrors } from 'oidc-provider';
import { DomainError, describeError } from '../errors.js';
import { translator, type MessageKey } from '../i18n/index.js';
import type { Logger } from '../log.js';
import { Throttled } from '../security/rate-limit.js';
import { pageLocale, render } from './render.js';

const DB_UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', '57P01', '57P03', '08006', '08001', '08003']);

export function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { code?: string; name?: string } | undefined;
  return Boolean(e && ((e.code && DB_UNAVAILABLE.has(e.code)) || e.name === 'KnexTimeoutError'));
}

interface Answer {
  status: number;
  code: string;
  message: string;
}

function classify(error: unknown, t: ReturnType<typeof translator>): Answer | undefined {
  if (error instanceof Throttled) {
    return { status: 429, code: 'too_many_requests', message: t('signin.error.throttled', { minutes: Math.max(1, Math.ceil(error.retryAfterSeconds / 60)) }) };
  }
  if (error instanceof DomainError) {
    return { status: error.status, code: error.code, message: describeError(error, t) };
  }
  if (error instanceof oidcErrors.SessionNotFound) {
    return { status: 400, code: 'session_expired', message: t('error.session_expired') };
  }
  const status = (error as { status?: unknown }).status;
  const expose = (error as { expose?: unknown }).expose;
  if (typeof status === 'number' && status >= 400 && status < 500 && expose !== false) {
    const key: MessageKey = status === 413 ? 'error.too_large' : status === 404 ? 'error.not_found' : 'error.bad_request';
    return { status, code: status === 413 ? 'payload_too_large' : 'bad_request', message: t(key) };
  }
  if (isDatabaseUnavailable(error)) return { status: 503, code: 'unavailable', message: t('error.unavailable') };
  return undefined;
}

/** `json`: always answer JSON (for APIs, whatever the Accept header says). */
export function errorHandler(log: Logger, options: { json?: boolean } = {}) {
  return async function handleErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.throw(404);
      }
    } catch (error) {
      const t = translator(pageLocale(ctx));
      const answer = classify(error, t) ?? { status: 500, code: 'server_error', message: t('error.internal') };
      if (answer.status >= 500) log.error({ err: error, method: ctx.method, path: ctx.path }, 'request failed');
      if (error instanceof Throttled) ctx.set('Retry-After', String(error.retryAfterSeconds));
      if (answer.status === 503) ctx.set('Retry-After', '5');
      if (options.json || ctx.accepts('html', 'json') === 'json') {
        ctx.status = answer.status;
        ctx.body = { error: answer.code, error_description: answer.message };
        return;
      }
      await render(ctx, 'error', { message: answer.message }, answer.status);
    }
  };
}
