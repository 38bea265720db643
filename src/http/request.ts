// The outermost middleware: gives every request an id (a sane incoming X-Request-Id, or a new UUID),
// returns it as a header, tags every log line of the request with it, and when the response is done
// records the request in the metrics and writes one access-log line. Logged is the route template
// (`/password/reset/:token`), never the raw path or query, which can carry secrets.
import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import type { Context, Next } from 'koa';
import { withRequestId, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

const SANE_REQUEST_ID = /^[\w.:@+=/-]{8,128}$/;

// oidc-provider's endpoints (it answers on its own context, so @koa/router's _matchedRoute is not set).
const PROVIDER_ROUTES = new Set([
  '/auth',
  '/token',
  '/me',
  '/jwks',
  '/reg',
  '/request',
  '/session/end',
  '/session/end/confirm',
  '/session/end/success',
  '/token/introspection',
  '/token/revocation',
  '/.well-known/openid-configuration',
]);
const PROVIDER_PATTERNS: [RegExp, string][] = [
  [/^\/auth\/[^/]+$/, '/auth/:uid'],
  [/^\/reg\/[^/]+$/, '/reg/:clientId'],
];

export function routeLabel(ctx: Context): string {
  const matched = (ctx as Context & { _matchedRoute?: unknown })._matchedRoute;
  if (typeof matched === 'string') return matched;
  if (PROVIDER_ROUTES.has(ctx.path)) return ctx.path;
  for (const [pattern, label] of PROVIDER_PATTERNS) if (pattern.test(ctx.path)) return label;
  return 'unmatched';
}

export function requestId(incoming: string): string {
  return SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

export function requestTracking(log: Logger, metrics: Metrics) {
  return async function trackRequest(ctx: Context, next: Next): Promise<void> {
    // Behind a proxy the address comes from X-Forwarded-For: anything that is not an IP address there
    // (a misconfigured or bypassed proxy) falls back to the connection's address.
    if (!isIP(ctx.ip)) ctx.request.ip = ctx.req.socket.remoteAddress ?? '';
    const id = requestId(ctx.get('x-request-id'));
    ctx.state.requestId = id;
    ctx.set('X-Request-Id', id);
    const started = process.hrtime.bigint();
    let recorded = false;
    const record = () => {
      if (recorded) return;
      recorded = true;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // The provider writes to the raw response; a connection closed before the answer counts as 499.
      const status = ctx.res.writableFinished || ctx.res.headersSent ? ctx.res.statusCode : 499;
      const route = routeLabel(ctx);
      metrics.httpRequests.inc({ method: ctx.method, route, status: String(status) });
      metrics.httpDuration.observe({ method: ctx.method, route, status_class: `${Math.floor(status / 100)}xx` }, seconds);
      withRequestId(id, () =>
        log.info({ method: ctx.method, route, status, ms: Math.round(seconds * 1000 * 10) / 10, ip: ctx.ip }, 'request'),
      );
    };
    ctx.res.once('finish', record);
    ctx.res.once('close', record);
    await withRequestId(id, () => next());
  };
}
