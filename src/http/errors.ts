// Turns every error into a clear page (or JSON for API callers) with the right status. No stack traces
// reach the client; unexpected errors are logged and answered with 500, database outages with 503.
import type { Context, Next } from 'koa';
import { errors as oidcErrors } from 'oidc-provider';
import { DomainError, describeError } from '../errors.js';
import { translator, type MessageKey } from '../i18n/index.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { Throttled } from '../security/rate-limit.js';
import { pageLocale, render } from './render.js';
import { routeLabel } from './request.js';

const DB_UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN', '57P01', '57P02', '57P03', '08006', '08001', '08003', '08004']);
// node-postgres reports a connection lost mid-query without a code, only with these messages.
const DB_CONNECTION_LOST = /Connection terminated|connection timeout|Client has encountered a connection error|Connection ended unexpectedly|Client was closed and is not queryable/i;

/** True for errors that mean "the database cannot be reached now" (answered with 503, not 500). */
export function isDatabaseUnavailable(error: unknown, depth = 0): boolean {
  const e = error as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown; errors?: unknown } | undefined;
  if (!e || typeof e !== 'object' || depth > 3) return false;
  if (typeof e.code === 'string' && DB_UNAVAILABLE.has(e.code)) return true;
  if (e.name === 'KnexTimeoutError') return true;
  if (typeof e.message === 'string' && DB_CONNECTION_LOST.test(e.message)) return true;
  // AggregateError (a connect() to several addresses) and wrapped causes.
  if (Array.isArray(e.errors) && e.errors.some((inner) => isDatabaseUnavailable(inner, depth + 1))) return true;
  return e.cause !== undefined && isDatabaseUnavailable(e.cause, depth + 1);
}

/** "Please wait N seconds" below a minute, "N minutes" above. */
export function throttledMessage(t: ReturnType<typeof translator>, retryAfterSeconds: number): string {
  return retryAfterSeconds < 60
    ? t('signin.error.throttled_seconds', { seconds: Math.max(1, retryAfterSeconds) })
    : t('signin.error.throttled', { minutes: Math.ceil(retryAfterSeconds / 60) });
}

// PostgreSQL's data exceptions for values it cannot store or compare (a NUL byte, a malformed uuid, a
// string longer than its column, a number out of range). Input that reaches a query unvalidated is
// still bad input: answered with 400, and logged as a warning so the missing check gets added.
const DB_BAD_INPUT = new Set(['22001', '22003', '22007', '22008', '22021', '22P02', '22P05', '54000']);

export function isBadInputForDatabase(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && DB_BAD_INPUT.has(code);
}

interface Answer {
  status: number;
  code: string;
  message: string;
}

function classify(error: unknown, t: ReturnType<typeof translator>): Answer | undefined {
  if (error instanceof Throttled) {
    return { status: 429, code: 'too_many_requests', message: throttledMessage(t, error.retryAfterSeconds) };
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
  if (isBadInputForDatabase(error)) return { status: 400, code: 'bad_request', message: t('error.bad_request') };
  return undefined;
}

/** `json`: always answer JSON (for APIs, whatever the Accept header says). */
export function errorHandler(log: Logger, metrics?: Metrics, options: { json?: boolean } = {}) {
  return async function handleErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.throw(404);
      }
    } catch (error) {
      const t = translator(pageLocale(ctx));
      const answer = classify(error, t) ?? { status: 500, code: 'server_error', message: t('error.internal') };
      if (answer.status === 503) {
        metrics?.databaseUnavailable.inc();
        log.warn({ err: error, method: ctx.method, route: routeLabel(ctx) }, 'database unavailable');
        ctx.set('Retry-After', '5');
      } else if (isBadInputForDatabase(error)) {
        log.warn({ err: error, method: ctx.method, route: routeLabel(ctx) }, 'input the database refused');
      } else if (answer.status >= 500) {
        log.error({ err: error, method: ctx.method, route: routeLabel(ctx) }, 'request failed');
      }
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
