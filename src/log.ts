// Structured JSON logs (pino). Never log secrets: passwords, codes, tokens, cookies.
// Every line written while a request is handled carries that request's id (`req_id`): the request
// middleware runs the request inside an AsyncLocalStorage context, and pino's mixin reads it, so deep
// modules (mailer, provider events) need no logger passed down to tag their lines.
import { AsyncLocalStorage } from 'node:async_hooks';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

interface RequestLogContext {
  reqId: string;
}

const requestContext = new AsyncLocalStorage<RequestLogContext>();

/** Runs `fn` with `reqId` attached to every log line it (and everything it awaits) writes. */
export function withRequestId<T>(reqId: string, fn: () => T): T {
  return requestContext.run({ reqId }, fn);
}

export function currentRequestId(): string | undefined {
  return requestContext.getStore()?.reqId;
}

// Field names whose values are secrets wherever they appear (one or two levels deep).
const SECRET_FIELDS = [
  'password',
  'new_password',
  'current_password',
  'token',
  'secret',
  'client_secret',
  'access_token',
  'refresh_token',
  'id_token',
  'authorization',
  'cookie',
  'set-cookie',
  '_csrf',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: undefined,
    mixin: () => {
      const reqId = currentRequestId();
      return reqId ? { req_id: reqId } : {};
    },
    // `code` only at the top level and in request bodies: err.code carries SQLSTATEs and errno names.
    redact: { paths: [...SECRET_FIELDS.flatMap((f) => [`["${f}"]`, `*["${f}"]`, `*.*["${f}"]`]), 'code', 'body.code', 'query.code', 'params.code'], censor: '[redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}
