// Operator pages for OIDC clients (/ops/clients): list, register, edit redirect URIs, rotate the secret,
// delete. There is no operator account yet, so the pages exist only when OPS_TOKEN is set: an operator
// signs in by typing that token (compared in constant time, failures rate-limited per IP and audited)
// and gets a signed, HttpOnly, SameSite=Strict cookie scoped to /ops that lasts 8 hours and stops working
// when OPS_TOKEN changes. Every form carries the CSRF token (csrf middleware).
import { createHash, createHmac } from 'node:crypto';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { DomainError, describeError } from '../errors.js';
import { pageLocale, render } from '../http/render.js';
import { translator } from '../i18n/index.js';
import {
  createClient,
  deleteClient,
  getClient,
  listClients,
  rotateClientSecret,
  updateClientUris,
  type CreateClientInput,
} from '../oidc/clients.js';
import { audit } from '../security/audit.js';
import { safeEqual } from '../security/crypto.js';
import { Limiter, Throttled } from '../security/rate-limit.js';
import type { Services } from '../services.js';

const COOKIE = 'idp_ops';
const SESSION_SECONDS = 8 * 60 * 60;
const CLIENT_ID = /^[A-Za-z0-9_-]{1,128}$/;
const MAX_URIS = 20;

type Body = Record<string, unknown>;

function field(ctx: Context, name: string): string {
  const value = (ctx.request.body as Body | undefined)?.[name];
  return typeof value === 'string' ? value : '';
}

function lines(value: string): string[] {
  const list = value
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  if (list.length > MAX_URIS) throw new DomainError('too_many_uris', 'ops.error.too_many_uris', 400, { max: MAX_URIS });
  return list;
}

/** The form field a registration error is about (for aria-invalid and the focus). */
function opsErrorField(error: DomainError): string | undefined {
  const field = error.params.field;
  const uriField = typeof field === 'object' ? field.key : undefined;
  if (error.code === 'invalid_name') return 'name';
  if (error.code === 'invalid_kind') return 'kind-web';
  if (error.code === 'invalid_scope') return 'scope';
  if (uriField === 'client.field.post_logout_redirect_uri') return 'post_logout_redirect_uris';
  if (uriField === 'client.field.backchannel_logout_uri') return 'backchannel_logout_uri';
  if (error.code === 'invalid_redirect_uri' || error.code === 'too_many_uris') return 'redirect_uris';
  if (error.message === 'ops.error.auth_method') return 'auth_method';
  return undefined;
}

export function opsRoutes(services: Services): Router {
  const router = new Router();
  const { db, secrets, config } = services;
  const rules = { production: config.production };
  /** Wrong operator tokens per client IP: 10 in 15 minutes, then 15 minutes' pause. */
  const limiter = new Limiter(db, 'ops-ip', { points: 10, duration: 15 * 60, blockDuration: 15 * 60 }, (name) => services.metrics.throttled.inc({ limit: name }));

  const digest = (value: string) => createHash('sha256').update(value).digest('base64url');
  const sessionMac = (token: string, exp: number) => createHmac('sha256', token).update(`ops-session:${exp}`).digest('base64url');
  const request = (ctx: Context) => ({ ip: ctx.ip, userAgent: ctx.get('user-agent') });

  function signedIn(ctx: Context): boolean {
    const token = config.opsToken!;
    const value = ctx.cookies.get(COOKIE, { signed: true });
    const [exp, mac] = value?.split('.') ?? [];
    if (!exp || !mac || !/^\d{1,12}$/.test(exp) || Number(exp) < Date.now() / 1000) return false;
    return safeEqual(mac, sessionMac(token, Number(exp)));
  }

  // The pages do not exist unless OPS_TOKEN is set. (A per-route middleware: router.use() would also run
  // for every other route of the app, since routers are nested.)
  async function enabled(ctx: Context, next: Next): Promise<void> {
    if (!config.opsToken) ctx.throw(404);
    await next();
  }

  async function requireOperator(ctx: Context, next: Next): Promise<void> {
    if (!config.opsToken) ctx.throw(404);
    if (!signedIn(ctx)) {
      ctx.status = 303;
      ctx.redirect('/ops/login');
      return;
    }
    await next();
  }

  const showLogin = (ctx: Context, error?: string, status = 200, errorField?: string) => render(ctx, 'ops-login', { error, errorField }, status);

  router.get('/ops', enabled, (ctx) => {
    ctx.status = 303;
    ctx.redirect('/ops/clients');
  });

  router.get('/ops/login', enabled, (ctx) => showLogin(ctx));

  router.post('/ops/login', enabled, async (ctx) => {
    const t = translator(pageLocale(ctx));
    const token = field(ctx, 'token');
    try {
      await limiter.check(ctx.ip);
      // Compare digests: constant time whatever the length of the typed value.
      if (token && safeEqual(digest(token), digest(config.opsToken!))) {
        await limiter.reset(ctx.ip);
        const exp = Math.floor(Date.now() / 1000) + SESSION_SECONDS;
        ctx.cookies.set(COOKIE, `${exp}.${sessionMac(config.opsToken!, exp)}`, {
          signed: true,
          httpOnly: true,
          sameSite: 'strict',
          secure: ctx.secure,
          path: '/ops',
          maxAge: SESSION_SECONDS * 1000,
          overwrite: true,
        });
        await audit(db, { type: 'ops.signed_in', ...request(ctx) });
        ctx.status = 303;
        ctx.redirect('/ops/clients');
        return;
      }
      await audit(db, { type: 'ops.sign_in_failed', ...request(ctx) });
      await limiter.consume(ctx.ip);
      await showLogin(ctx, t('ops.login.invalid'), 401, 'token');
    } catch (error) {
      if (!(error instanceof Throttled)) throw error;
      await audit(db, { type: 'ops.throttled', ...request(ctx) });
      ctx.set('Retry-After', String(error.retryAfterSeconds));
      await showLogin(ctx, t('signin.error.throttled', { minutes: Math.max(1, Math.ceil(error.retryAfterSeconds / 60)) }), 429);
    }
  });

  router.post('/ops/logout', enabled, (ctx) => {
    ctx.cookies.set(COOKIE, null, { signed: true, path: '/ops', overwrite: true });
    ctx.status = 303;
    ctx.redirect('/ops/login');
  });

  router.get('/ops/clients', requireOperator, async (ctx) => {
    await render(ctx, 'ops-clients', { clients: await listClients(db), deleted: ctx.query.deleted === '1' });
  });

  const EMPTY_FORM = { name: '', kind: 'web', redirect_uris: '', post_logout_redirect_uris: '', auth_method: 'client_secret_basic', refresh_token: '', first_party: '', backchannel_logout_uri: '', id_token_alg: 'RS256', scope: '' };
  const showForm = (ctx: Context, values: Record<string, string>, error?: string, status = 200, errorField?: string) =>
    render(ctx, 'ops-client-new', { values, error, errorField }, status);

  router.get('/ops/clients/new', requireOperator, (ctx) => showForm(ctx, EMPTY_FORM));

  router.post('/ops/clients', requireOperator, async (ctx) => {
    const values = Object.fromEntries(Object.keys(EMPTY_FORM).map((k) => [k, field(ctx, k).slice(0, 4000)]));
    try {
      const kind = values.kind;
      if (!['web', 'public', 'machine'].includes(kind!)) throw new DomainError('invalid_kind', 'ops.error.kind');
      const input: CreateClientInput = {
        name: values.name!,
        redirectUris: kind === 'machine' ? [] : lines(values.redirect_uris!),
        postLogoutRedirectUris: kind === 'machine' ? [] : lines(values.post_logout_redirect_uris!),
        public: kind === 'public',
        machine: kind === 'machine',
        firstParty: values.first_party === 'yes',
        grants: values.refresh_token === 'yes' && kind !== 'machine' ? ['refresh_token'] : [],
        authMethod: kind === 'public' ? undefined : values.auth_method || undefined,
        backchannelLogoutUri: values.backchannel_logout_uri?.trim() || undefined,
        idTokenAlg: values.id_token_alg || undefined,
        scope: kind === 'machine' ? values.scope?.trim() || undefined : undefined,
      };
      if (input.authMethod && !['client_secret_basic', 'client_secret_post'].includes(input.authMethod)) {
        throw new DomainError('invalid_client_metadata', 'ops.error.auth_method');
      }
      const created = await createClient(db, secrets, input, { ...rules, via: 'ops' });
      await audit(db, { type: 'client.registered', ...request(ctx), details: { via: 'ops', client_id: created.client_id } });
      await render(ctx, 'ops-secret', { client: await getClient(db, created.client_id), secret: created.client_secret, created: true }, 201);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      await showForm(ctx, values, describeError(error, translator(pageLocale(ctx))), 400, opsErrorField(error));
    }
  });

  async function loadClient(ctx: Context) {
    const clientId = ctx.params.id ?? '';
    if (!CLIENT_ID.test(clientId)) ctx.throw(404);
    return getClient(db, clientId);
  }

  router.get('/ops/clients/:id', requireOperator, async (ctx) => {
    const client = await loadClient(ctx);
    await render(ctx, 'ops-client', { client, saved: ctx.query.saved === '1', values: undefined, error: undefined });
  });

  router.post('/ops/clients/:id', requireOperator, async (ctx) => {
    const client = await loadClient(ctx);
    const values = { redirect_uris: field(ctx, 'redirect_uris').slice(0, 8000), post_logout_redirect_uris: field(ctx, 'post_logout_redirect_uris').slice(0, 8000) };
    try {
      await updateClientUris(db, secrets, client.client_id, { redirectUris: lines(values.redirect_uris), postLogoutRedirectUris: lines(values.post_logout_redirect_uris) }, rules);
      await audit(db, { type: 'client.updated', ...request(ctx), details: { via: 'ops', client_id: client.client_id } });
      ctx.status = 303;
      ctx.redirect(`/ops/clients/${encodeURIComponent(client.client_id)}?saved=1`);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      await render(ctx, 'ops-client', { client, saved: false, values, error: describeError(error, translator(pageLocale(ctx))), errorField: opsErrorField(error) }, 400);
    }
  });

  router.post('/ops/clients/:id/secret', requireOperator, async (ctx) => {
    const client = await loadClient(ctx);
    try {
      const rotated = await rotateClientSecret(db, secrets, client.client_id);
      await audit(db, { type: 'client.secret_rotated', ...request(ctx), details: { via: 'ops', client_id: client.client_id } });
      await render(ctx, 'ops-secret', { client, secret: rotated.client_secret, created: false });
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      await render(ctx, 'ops-client', { client, saved: false, values: undefined, error: describeError(error, translator(pageLocale(ctx))) }, 400);
    }
  });

  router.post('/ops/clients/:id/delete', requireOperator, async (ctx) => {
    const client = await loadClient(ctx);
    if (field(ctx, 'confirm') !== client.client_id) {
      const t = translator(pageLocale(ctx));
      await render(ctx, 'ops-client', { client, saved: false, values: undefined, error: t('ops.client.delete_confirm_error'), errorField: 'confirm' }, 400);
      return;
    }
    await deleteClient(db, client.client_id);
    await audit(db, { type: 'client.deleted', ...request(ctx), details: { via: 'ops', client_id: client.client_id } });
    ctx.status = 303;
    ctx.redirect('/ops/clients?deleted=1');
  });

  return router;
}
