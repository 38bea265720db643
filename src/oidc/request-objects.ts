// The authorization request forms that OpenID Connect Core requires and oidc-provider 9 leaves out, made
// into forms it understands. A middleware in front of oidc-provider's authorization endpoint (see
// provider.ts) handles:
//
//  - POST to the authorization endpoint (Core 3.1.2.1: "MUST support GET and POST"). oidc-provider only
//    takes POST with `enableHttpPostMethods`, which needs its session cookie to be SameSite=None. We keep
//    the cookie SameSite=Lax and answer the POST with a 303 to the same parameters by GET: browsers send
//    Lax cookies on that top-level GET, so the session (prompt=none, SSO) works as for any GET request.
//  - `request_uri` (Core 6.2; mandatory for Dynamic OPs, Core 15.2), which oidc-provider supports only for
//    PAR: the request object is fetched from the client, but only from a URI the client registered in
//    `request_uris` (discovery says `require_request_uri_registration`), with an SSRF guard in production.
//  - unsigned request objects (`alg: none`, Core 6.1), by value or fetched: oidc-provider verifies signed
//    ones only. An unsigned object carries nothing a query string could not, so it is checked (client_id,
//    response_type, iss/aud/exp when present) and its parameters replace the query's (Core 6.3.3).
// A signed object fetched from a request_uri goes to oidc-provider as `request`, which verifies it.
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import type { Logger } from '../log.js';

export const AUTHORIZATION_PATH = '/auth';
const PAR_URN = 'urn:ietf:params:oauth:request_uri:';
/** oidc-provider's own limit for request bodies. */
const MAX_BODY_BYTES = 56 * 1024;
/** The redirect from a POST must stay a URL every browser and our own server (16 KiB headers) accept. */
const MAX_REDIRECT_URL = 8 * 1024;
const MAX_REQUEST_OBJECT_BYTES = 64 * 1024;
const FETCH_TIMEOUT_MS = 3000;
const CLOCK_TOLERANCE_S = 15;
/** JWT claims of a request object that are not authorization parameters. */
const JWT_CLAIMS = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'jti']);

export class RequestObjectError extends Error {}

/** The payload of an unsigned request object (alg none, empty signature); undefined for anything else. */
export function decodeUnsigned(jwt: string): Record<string, unknown> | undefined {
  const parts = jwt.split('.');
  if (parts.length !== 3 || parts[2] !== '') return undefined;
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof header !== 'object' || header === null || (header as { alg?: unknown }).alg !== 'none') return undefined;
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
  } catch {
    throw new RequestObjectError('the request object is not valid JSON');
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new RequestObjectError('the request object is not a JSON object');
  return payload as Record<string, unknown>;
}

/**
 * The authorization parameters of an unsigned request object merged over the query's (the object wins,
 * Core 6.3.3), after the checks oidc-provider applies to signed objects.
 */
export function mergeUnsigned(query: URLSearchParams, payload: Record<string, unknown>, issuer: string): URLSearchParams {
  const clientId = query.get('client_id');
  if (!clientId) throw new RequestObjectError('client_id is required next to a request object');
  if ('request' in payload || 'request_uri' in payload) throw new RequestObjectError('a request object must not contain request or request_uri');
  if (payload.client_id !== undefined && payload.client_id !== clientId) throw new RequestObjectError('the request object client_id does not match');
  const responseType = query.get('response_type');
  if (payload.response_type !== undefined && responseType !== null && payload.response_type !== responseType) {
    throw new RequestObjectError('the request object response_type does not match');
  }
  if (payload.iss !== undefined && payload.iss !== clientId) throw new RequestObjectError('the request object iss must be the client_id');
  if (payload.aud !== undefined) {
    const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    if (!audiences.includes(issuer)) throw new RequestObjectError('the request object aud must be the issuer');
  }
  const now = Math.floor(Date.now() / 1000);
  if (payload.exp !== undefined && (typeof payload.exp !== 'number' || payload.exp + CLOCK_TOLERANCE_S < now)) {
    throw new RequestObjectError('the request object has expired');
  }
  if (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || payload.nbf - CLOCK_TOLERANCE_S > now)) {
    throw new RequestObjectError('the request object is not yet valid');
  }

  const merged = new URLSearchParams(query);
  merged.delete('request');
  for (const [name, value] of Object.entries(payload)) {
    if (JWT_CLAIMS.has(name) || value === undefined || value === null) continue;
    merged.delete(name);
    if (Array.isArray(value)) {
      for (const item of value) merged.append(name, typeof item === 'string' ? item : JSON.stringify(item));
    } else if (typeof value === 'object') {
      merged.set(name, JSON.stringify(value)); // `claims` (Core 5.5) is an object in the request object
    } else {
      merged.set(name, String(value));
    }
  }
  return merged;
}

/** Special-use addresses (RFC 6890 and friends) a request_uri must not reach in production. */
const SPECIAL_USE = (() => {
  const list = new BlockList();
  for (const [net, prefix] of [
    ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
    ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
    ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
  ] as const) list.addSubnet(net, prefix, 'ipv4');
  for (const [net, prefix] of [
    ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['100::', 64], ['2001::', 23], ['2001:db8::', 32],
    ['2002::', 16], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8],
  ] as const) list.addSubnet(net, prefix, 'ipv6');
  return list;
})();

export function isSpecialUseAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  if (family === 4) return SPECIAL_USE.check(address, 'ipv4');
  // IPv4-mapped IPv6 (::ffff:a.b.c.d, which URLs write as ::ffff:hhhh:hhhh): check the IPv4 address.
  const mapped = /^::ffff:(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(address);
  if (mapped) {
    const v4 = mapped[1] ?? [parseInt(mapped[2]!, 16), parseInt(mapped[3]!, 16)].flatMap((n) => [n >> 8, n & 0xff]).join('.');
    return SPECIAL_USE.check(v4, 'ipv4');
  }
  return SPECIAL_USE.check(address, 'ipv6');
}

/** A DNS lookup that refuses special-use addresses; the connection then uses exactly the address checked. */
const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, '', 4);
    const list = addresses as dns.LookupAddress[];
    if (!list.length || list.some((a) => isSpecialUseAddress(a.address))) {
      return callback(Object.assign(new Error(`${hostname} resolves to a special-use address`), { code: 'EADDRNOTAVAIL' }), '', 4);
    }
    if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
    return callback(null, list[0]!.address, list[0]!.family);
  });
};

/** Fetches a request object from a client's request_uri: no redirects, a size and time limit, the SSRF guard in production. */
export function fetchRequestObject(uri: string, options: { production: boolean }): Promise<string> {
  const url = new URL(uri);
  url.hash = '';
  if (url.protocol !== 'https:' && (options.production || url.protocol !== 'http:')) {
    return Promise.reject(new RequestObjectError('a request_uri must use https'));
  }
  // An address in the URL is not looked up, so the guard checks it here.
  const literal = url.hostname.replace(/^\[|\]$/g, '');
  if (options.production && isIP(literal) && isSpecialUseAddress(literal)) {
    return Promise.reject(new RequestObjectError(`${literal} is a special-use address`));
  }
  const get = url.protocol === 'https:' ? https.get : http.get;
  return new Promise((resolve, reject) => {
    const request = get(
      url,
      {
        headers: { accept: 'application/oauth-authz-req+jwt, application/jwt' },
        timeout: FETCH_TIMEOUT_MS,
        ...(options.production ? { lookup: guardedLookup } : {}),
      },
      (response) => {
        if (response.statusCode !== 200) {
          response.resume();
          reject(new RequestObjectError(`the request_uri answered ${response.statusCode}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_REQUEST_OBJECT_BYTES) {
            request.destroy(new RequestObjectError('the request object is too large'));
            return;
          }
          chunks.push(chunk);
        });
        response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8').trim()));
        response.on('error', reject);
      },
    );
    // `timeout` limits idle time; the deadline limits the whole exchange (a server trickling bytes).
    const deadline = setTimeout(() => request.destroy(new RequestObjectError('the request_uri did not answer in time')), FETCH_TIMEOUT_MS);
    request.on('close', () => clearTimeout(deadline));
    request.on('timeout', () => request.destroy(new RequestObjectError('the request_uri did not answer in time')));
    request.on('error', (error) => reject(error instanceof RequestObjectError ? error : new RequestObjectError(`the request_uri could not be fetched (${error.message})`)));
  });
}

function withoutFragment(uri: string): string {
  const i = uri.indexOf('#');
  return i === -1 ? uri : uri.slice(0, i);
}

async function readForm(ctx: Context): Promise<URLSearchParams | 400 | 413> {
  if (!ctx.is('application/x-www-form-urlencoded')) return 400;
  if (Number(ctx.get('content-length') || 0) > MAX_BODY_BYTES) return 413;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return 413;
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/**
 * Middleware for oidc-provider (`provider.use`, so it runs before its router) on the authorization
 * endpoint: POST becomes a 303 to GET; request_uri and unsigned request objects become what oidc-provider
 * verifies itself. A request object that cannot be used leaves a parameter oidc-provider refuses, so the
 * error reaches the client (or the error page) exactly as oidc-provider sends every other error.
 */
export function authorizationRequestForms(
  provider: Provider,
  options: { production: boolean; log: Logger; renderError: (ctx: Context, status: number, message: string) => Promise<void> },
) {
  return async function authorizationRequestFormsMiddleware(ctx: Context, next: Next): Promise<void> {
    if (ctx.path !== AUTHORIZATION_PATH) return next();

    if (ctx.method === 'POST') {
      const form = await readForm(ctx);
      if (form === 400) return options.renderError(ctx, 400, 'invalid_request: an authorization request by POST must be a form (application/x-www-form-urlencoded)');
      const location = `${AUTHORIZATION_PATH}?${form === 413 ? '' : form.toString()}`;
      if (form === 413 || location.length > MAX_REDIRECT_URL) {
        return options.renderError(ctx, 413, 'invalid_request: the authorization request is too large; pass a long request object by reference (request_uri)');
      }
      ctx.set('Cache-Control', 'no-store');
      ctx.status = 303;
      ctx.redirect(location);
      return;
    }
    if (ctx.method !== 'GET') return next();

    const query = new URLSearchParams(ctx.querystring);
    let changed = false;
    const requestUri = query.get('request_uri');
    if (requestUri && !requestUri.startsWith(PAR_URN) && !query.has('request') && query.getAll('request_uri').length === 1) {
      changed = true;
      try {
        const client = await provider.Client.find(query.get('client_id') ?? '');
        if (!client) {
          // oidc-provider answers an unknown client with its error page; the request_uri is not fetched.
          query.delete('request_uri');
        } else {
          const registered = (client.metadata().request_uris as string[] | undefined) ?? [];
          if (!registered.some((uri) => withoutFragment(uri) === withoutFragment(requestUri))) {
            throw new RequestObjectError('the request_uri is not registered for this client');
          }
          query.delete('request_uri');
          query.set('request', await fetchRequestObject(requestUri, options));
        }
      } catch (error) {
        if (!(error instanceof RequestObjectError)) throw error;
        options.log.info({ client_id: query.get('client_id'), reason: error.message }, 'request_uri refused');
        // oidc-provider looks this up as a pushed request, finds nothing and answers invalid_request_uri.
        query.set('request_uri', `${PAR_URN}unusable`);
        query.delete('request');
      }
    }

    const request = query.get('request');
    if (request && query.getAll('request').length === 1 && !query.has('request_uri')) {
      try {
        const payload = decodeUnsigned(request);
        if (payload) {
          const client = await provider.Client.find(query.get('client_id') ?? '');
          if (client?.requestObjectSigningAlg && client.requestObjectSigningAlg !== 'none') {
            throw new RequestObjectError(`this client's request objects must be signed with ${client.requestObjectSigningAlg}`);
          }
          const merged = mergeUnsigned(query, payload, provider.issuer);
          for (const key of [...query.keys()]) query.delete(key);
          for (const [key, value] of merged) query.append(key, value);
          changed = true;
        }
      } catch (error) {
        if (!(error instanceof RequestObjectError)) throw error;
        options.log.info({ client_id: query.get('client_id'), reason: error.message }, 'unsigned request object refused');
        // Not a JWT at all: oidc-provider answers invalid_request_object.
        query.set('request', 'unusable');
        changed = true;
      }
    }

    if (changed) ctx.querystring = query.toString();
    return next();
  };
}
