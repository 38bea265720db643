// Builds the whole service: database, migrations, keys, oidc-provider and the Koa app around it.
// Used by main.ts (the server) and by the tests, which start it on an ephemeral port.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa, { type Context } from 'koa';
import compose from 'koa-compose';
import type Provider from 'oidc-provider';
import type { Config } from './config.js';
import { opsRoutes } from './console/ops.js';
import { createDb, migrateLatest, type Db } from './db/index.js';
import { errorHandler } from './http/errors.js';
import { brandView } from './http/brand.js';
import { languageSwitch, pageLocale, render } from './http/render.js';
import { pageLocaleScope } from './i18n/index.js';
import { DevOutbox } from './mail/mailer.js';
import { createLogger, type Logger } from './log.js';
import { consoleRoutes } from './console/routes.js';
import { consentRoutes } from './login/consent.js';
import { loginRoutes } from './login/routes.js';
import { selfServiceRoutes } from './login/self-service.js';
import { deviceCredentialApi, ensureDeviceApi } from './api/device-credentials.js';
import { deleteExpiredPayloads } from './oidc/adapter.js';
import { expireBypasses } from './accounts/two-factor.js';
import { deleteExpiredKeys } from './oidc/keys.js';
import { createProvider } from './oidc/provider.js';
import { DEFAULT_KEY_REFRESH_MS, ProviderHolder } from './oidc/provider-holder.js';
import { csrf } from './security/csrf.js';
import { securityHeaders } from './security/headers.js';
import { createServices, type Services } from './services.js';

export interface App {
  koa: Koa;
  /** The oidc-provider in use now: rebuilt when the signing keys change (see provider-holder.ts). */
  readonly provider: Provider;
  providers: ProviderHolder;
  services: Services;
}

function operationalRoutes(services: Services): Router {
  const { db, mailer, config } = services;
  const router = new Router();
  // In development without SMTP, mail goes to the outbox under DATA_DIR; this page shows it.
  if (!config.production && mailer instanceof DevOutbox) {
    router.get('/dev/outbox', async (ctx) => {
      await render(ctx, 'outbox', { messages: await mailer.list() });
    });
  }
  // The one stylesheet (brand colours first) and the logo. Pages link them with ?v=<version>, which
  // changes with their content, so browsers may keep them a day.
  const { brand } = services;
  router.get('/static/style.css', (ctx) => {
    ctx.type = 'text/css';
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.body = brand.stylesheet;
  });
  if (brand.logo) {
    const logo = brand.logo;
    router.get('/static/logo', (ctx) => {
      ctx.type = logo.contentType;
      ctx.set('Cache-Control', 'public, max-age=86400');
      // An SVG opened on its own must not run anything.
      ctx.set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; sandbox");
      ctx.body = logo.data;
    });
  }
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    try {
      await db.raw('select 1');
      ctx.body = { status: 'ready' };
    } catch {
      ctx.status = 503;
      ctx.body = { status: 'unavailable', reason: 'database' };
    }
  });
  return router;
}

/** Creates the Koa app: our pages first (when a route of ours matches), oidc-provider for everything else. */
export async function buildApp(services: Services): Promise<App> {
  const providers = await ProviderHolder.create({
    db: services.db,
    secrets: services.secrets,
    log: services.log,
    build: (jwks) => createProvider(services, jwks),
  });
  // Routes keep this stand-in, which always forwards to the provider in use.
  const provider = providers.facade();
  services.provider = provider;

  const ours = new Router();
  ours.use(operationalRoutes(services).routes());
  ours.use(opsRoutes(services).routes());
  // Before the login routes: POST /interaction/:uid/consent would otherwise match their /interaction/:uid/:step.
  ours.use(consentRoutes(services, provider).routes());
  ours.use(loginRoutes(services, provider).routes());
  ours.use(consoleRoutes(services, provider).routes());
  ours.use(selfServiceRoutes(services).routes());

  // APIs for machines: Bearer tokens instead of cookies, so no CSRF and JSON errors.
  await ensureDeviceApi(services.db, services.config.issuer);
  const api = new Router();
  api.use(deviceCredentialApi(services).routes());
  const apis = compose([errorHandler(services.log, { json: true }), api.routes()] as compose.Middleware<Context>[]);

  const koa = new Koa({ proxy: services.config.trustProxy });
  koa.keys = services.config.cookieKeys;
  koa.silent = true; // errors are logged by errorHandler

  const brand = brandView(services.brand);
  const pageStack = [
    async (ctx: Context, next: () => Promise<void>) => {
      ctx.state.brand = brand;
      // Mail sent while answering a page (an invitation, a notice) falls back to the page's language.
      await pageLocaleScope(() => pageLocale(ctx), next);
    },
    errorHandler(services.log),
    securityHeaders(),
    bodyParser({ enableTypes: ['form'], formLimit: '32kb', encoding: 'utf-8' }),
    csrf(services.secrets),
    ours.routes(),
  ];
  const pages = compose(pageStack as compose.Middleware<Context>[]);

  koa.use(languageSwitch());
  koa.use(async (ctx) => {
    if (ours.match(ctx.path, ctx.method).route) return pages(ctx);
    if (api.match(ctx.path, ctx.method).route) return apis(ctx);
    // oidc-provider runs on its own context (its own cookie keys and proxy setting); see STACK-NOTES surprise 3.
    ctx.respond = false;
    await providers.handle(ctx.req, ctx.res);
  });
  return {
    koa,
    providers,
    services,
    get provider() {
      return providers.current;
    },
  };
}

export interface RunningServer {
  url: string;
  app: App;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Use this database instead of creating one (tests share one PGlite per run). */
  db?: Db;
  log?: Logger;
  /** Called with the bound port before the issuer is needed (port 0 = ephemeral). */
  issuerForPort?: (port: number) => string;
  /** How often to look for signing-key changes (default 30 s); 0 turns polling off (tests refresh by hand). */
  keyRefreshMs?: number;
}

/** Opens the database, migrates, builds the app and listens. */
export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.log ?? createLogger(config.logLevel);
  const db = options.db ?? createDb({ databaseUrl: config.databaseUrl, pgliteDir: config.pgliteDir });
  await migrateLatest(db);

  // Bind first, so an ephemeral port can go into the issuer; Koa composes at callback() time.
  let handler: http.RequestListener = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const effective: Config = options.issuerForPort ? { ...config, port, issuer: options.issuerForPort(port) } : config;

  const services = createServices(effective, db, log);
  let app: App;
  try {
    app = await buildApp(services);
  } catch (error) {
    server.close();
    if (!options.db) await db.destroy();
    throw error;
  }
  handler = app.koa.callback();
  const keyRefreshMs = options.keyRefreshMs ?? DEFAULT_KEY_REFRESH_MS;
  if (keyRefreshMs > 0) app.providers.start(keyRefreshMs);

  const cleanup = setInterval(() => {
    Promise.all([deleteExpiredPayloads(db), deleteExpiredKeys(db), expireBypasses({ db })]).catch((err: unknown) => log.warn({ err }, 'cleanup of expired rows failed'));
  }, 10 * 60 * 1000);
  cleanup.unref();

  log.info({ issuer: effective.issuer, port, database: config.databaseUrl ? 'postgresql' : 'pglite' }, 'identity provider listening');
  return {
    url: `http://127.0.0.1:${port}`,
    app,
    async close() {
      clearInterval(cleanup);
      app.providers.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (!options.db) await db.destroy();
    },
  };
}
