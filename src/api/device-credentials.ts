// The check endpoint for the telephony side: POST /api/device-credentials/verify with a device's SIP
// username and password. Callers are machine clients (client_credentials) holding a JWT access token
// for this API (resource indicator `${ISSUER}/api/device-credentials`, scope `device-credentials:verify`).
import Router from '@koa/router';
import { bodyParser } from '@koa/bodyparser';
import { createLocalJWKSet, jwtVerify, type JWK } from 'jose';
import type { Context } from 'koa';
import { verifyDeviceCredential } from '../accounts/device-credentials.js';
import type { Db } from '../db/index.js';
import { loadKeySet } from '../oidc/keys.js';
import { audit } from '../security/audit.js';
import { Throttled } from '../security/rate-limit.js';
import type { Services } from '../services.js';

export const DEVICE_API_SCOPE = 'device-credentials:verify';
export const deviceApiIdentifier = (issuer: string) => `${issuer}/api/device-credentials`;

/** Registers the API as a resource server once, so machine clients can ask for tokens for it. */
export async function ensureDeviceApi(db: Db, issuer: string): Promise<void> {
  await db('resource_servers')
    .insert({ identifier: deviceApiIdentifier(issuer), name: 'Device credential check', scopes: JSON.stringify([DEVICE_API_SCOPE]), access_token_ttl: 60 * 60 })
    .onConflict('identifier')
    .ignore();
}

const PUBLIC_JWK_FIELDS = ['kty', 'kid', 'alg', 'use', 'crv', 'x', 'y', 'n', 'e'] as const;

export function deviceCredentialApi(services: Services): Router {
  const { db, secrets, config } = services;
  const router = new Router();
  const audience = deviceApiIdentifier(config.issuer);
  let keys: { at: number; jwks: ReturnType<typeof createLocalJWKSet> } | undefined;

  /** The provider's public keys, from the database (cached 30 s, so rotation is followed). */
  async function jwks() {
    if (!keys || Date.now() - keys.at > 30_000) {
      const { jwks: privateKeys } = await loadKeySet(db, secrets);
      const publicKeys = privateKeys.map((k) => Object.fromEntries(PUBLIC_JWK_FIELDS.filter((f) => k[f] !== undefined).map((f) => [f, k[f]])) as JWK);
      keys = { at: Date.now(), jwks: createLocalJWKSet({ keys: publicKeys }) };
    }
    return keys.jwks;
  }

  function deny(ctx: Context, status: number, error: string, description: string) {
    ctx.status = status;
    ctx.set('WWW-Authenticate', `Bearer error="${error}", error_description="${description}"`);
    ctx.body = { error, error_description: description };
  }

  router.post('/api/device-credentials/verify', bodyParser({ enableTypes: ['json', 'form'], jsonLimit: '4kb', formLimit: '4kb' }), async (ctx) => {
    const header = ctx.get('authorization');
    const token = /^Bearer ([\w-]+\.[\w-]+\.[\w-]+)$/.exec(header)?.[1];
    if (!token) return deny(ctx, 401, 'invalid_token', 'a Bearer access token is required');
    let scope = '';
    let clientId = '';
    try {
      const { payload } = await jwtVerify(token, await jwks(), { issuer: config.issuer, audience, typ: 'at+jwt' });
      scope = typeof payload.scope === 'string' ? payload.scope : '';
      clientId = typeof payload.client_id === 'string' ? payload.client_id : '';
    } catch {
      return deny(ctx, 401, 'invalid_token', 'the access token is not valid for this API');
    }
    if (!scope.split(' ').includes(DEVICE_API_SCOPE)) return deny(ctx, 403, 'insufficient_scope', `scope ${DEVICE_API_SCOPE} is required`);

    const body = (ctx.request.body ?? {}) as Record<string, unknown>;
    const { username, password } = body;
    if (typeof username !== 'string' || typeof password !== 'string' || !username || !password) {
      ctx.status = 400;
      ctx.body = { error: 'invalid_request', error_description: 'username and password are required strings' };
      return;
    }
    try {
      await services.limits.deviceVerifyPerUsername.check(username);
    } catch (error) {
      if (!(error instanceof Throttled)) throw error;
      ctx.status = 429;
      ctx.set('Retry-After', String(error.retryAfterSeconds));
      ctx.body = { error: 'too_many_requests', error_description: 'too many failed checks for this username' };
      return;
    }
    const result = await verifyDeviceCredential(db, secrets, username, password);
    if (!result.valid) {
      await services.limits.deviceVerifyPerUsername.consume(username).catch(() => undefined);
      await audit(db, { type: 'device_credential.check_failed', ip: ctx.ip, details: { username: username.slice(0, 64), client_id: clientId } });
      ctx.body = { valid: false };
      return;
    }
    ctx.body = { valid: true, user_id: result.userId, device_id: result.deviceId };
  });

  return router;
}
