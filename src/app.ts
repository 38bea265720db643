// Builds the whole service: database, migrations, keys, oidc-provider and the Koa app around it.
// Used by main.ts (the server) and by the tests, which start it on an ephemeral port.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
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
import { requestTracking } from './http/request.js';
import { pageLocaleScope } from './i18n/index.js';
import { DevOutbox } from './mail/mailer.js';
import { createLogger, type Logger } from './log.js';
import { consoleRoutes } from './console/routes.js';
import { consentRoutes } from './login/consent.js';
import { loginRoutes } from './login/routes.js';
import { selfServiceRoutes } from './login/self-service.js';
import { deviceCredentialApi, ensureDeviceApi } from './api/device-credentials.js';
import { deleteExpiredPayloads } from './oidc/adapter.js';
import { listenForClientChanges } from './oidc/client-cache.js';
import { rekeyLegacyPayloads } from './oidc/payload-ids.js';
import { Secrets } from './security/crypto.js';
import { expireBypasses } from './accounts/two-factor.js';
import { deleteExpiredKeys } from './oidc/keys.js';
import { createProvider } from './oidc/provider.js';
import { DEFAULT_KEY_REFRESH_MS, ProviderHolder } from './oidc/provider-holder.js';
import { Metrics } from './metrics.js';
import { csrf } from './security/csrf.js';
import { safeEqual } from './security/crypto.js';
import { securityHeaders } from './security/headers.js';
import { createServices, type Services } from './services.js';

export interface App {
  koa: Koa;
  /** The oidc-provider in use now: rebuilt when the signing keys change (see provider-holder.ts). */
  readonly provider: Provider;
  providers: ProviderHolder;
  services: Services;
  /** Our routes (method and path template), for the route-by-route tests. */
  routes: { methods: string[]; path: string }[];
  /** Set when shutdown begins: /readyz answers 503 so load balancers stop sending new requests. */
  draining: boolean;
}

/** Serves the metrics in Prometheus' text format. */
async function serveMetrics(metrics: Metrics, res: { type: string; body: unknown; set(field: string, value: string): void }): Promise<void> {
  const { contentType, body } = await metrics.exposition();
  res.type = contentType;
  res.set('Cache-Control', 'no-store');
  res.body = body;
}

function operationalRoutes(services: Services, state: { draining: boolean }): Router {
  const { db, mailer, config, metrics } = services;
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
    if (state.draining) {
      ctx.status = 503;
      ctx.body = { status: 'unavailable', reason: 'shutting down' };
      return;
    }
    try {
      await db.raw('select 1');
      ctx.body = { status: 'ready' };
    } catch {
      ctx.status = 503;
      ctx.body = { status: 'unavailable', reason: 'database' };
    }
  });
  // Metrics on the main port only for callers with METRICS_TOKEN (compared in constant time), since
  // they reveal traffic figures; METRICS_PORT serves them without a token on a separate listener.
  if (config.metricsToken) {
    const expected = createHash('sha256').update(config.metricsToken).digest('base64url');
    router.get('/metrics', async (ctx) => {
      const presented = /^Bearer ([\x21-\x7e]{1,512})$/.exec(ctx.get('authorization'))?.[1] ?? '';
      if (!safeEqual(createHash('sha256').update(presented).digest('base64url'), expected)) {
        ctx.status = 401;
        ctx.set('WWW-Authenticate', 'Bearer realm="metrics"');
        ctx.body = { error: 'invalid_token' };
        return;
      }
      await serveMetrics(metrics, ctx);
    });
  }
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
  const state = { draining: false };

  const ours = new Router();
  ours.use(operationalRoutes(services, state).routes());
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
  const apis = compose([errorHandler(services.log, services.metrics, { json: true }), api.routes()] as compose.Middleware<Context>[]);

  // Behind a proxy, the client IP is the last X-Forwarded-For entry: the one our proxy appended.
  // Entries before it come from the client and could be forged to dodge the per-IP limits.
  const koa = new Koa({ proxy: services.config.trustProxy, maxIpsCount: 1 });
  koa.keys = services.cookieKeys as unknown as Koa['keys'];
  koa.silent = true; // errors are logged by errorHandler
  koa.on('error', (err: { status?: number; expose?: boolean }) => {
    if (err.expose || (err.status && err.status < 500)) services.log.debug({ err }, 'request error');
    else services.log.error({ err }, 'request error');
  });

  const brand = brandView(services.brand);
  const pageStack = [
    async (ctx: Context, next: () => Promise<void>) => {
      ctx.state.brand = brand;
      // Mail sent while answering a page (an invitation, a notice) falls back to the page's language.
      await pageLocaleScope(() => pageLocale(ctx), next);
    },
    errorHandler(services.log, services.metrics),
    bodyParser({ enableTypes: ['form'], formLimit: '32kb', encoding: 'utf-8' }),
    csrf(services.secrets),
    ours.routes(),
  ];
  const pages = compose(pageStack as compose.Middleware<Context>[]);

  koa.use(requestTracking(services.log, services.metrics));
  // On every response, oidc-provider's too (its HTML pages and its form_post, which adds its script's hash to this CSP).
  koa.use(securityHeaders());
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
    routes: ours.stack.map((layer) => ({ methods: layer.methods.filter((m) => m !== 'HEAD'), path: String(layer.path) })),
    get draining() {
      return state.draining;
    },
    set draining(value: boolean) {
      state.draining = value;
    },
  };
}

export interface RunningServer {
  url: string;
  /** The separate metrics listener (METRICS_PORT), if any. */
  metricsUrl: string | undefined;
  app: App;
  /**
   * Stops gracefully: /readyz turns 503, no new connections are accepted, requests in flight finish
   * (for at most `graceMs`, then their connections are cut), then the database closes.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

export interface StartOptions {
  /** Use this database instead of creating one (tests share one PGlite per run). */
  db?: Db;
  log?: Logger;
  /** Called with the bound port before the issuer is needed (port 0 = ephemeral). */
  issuerForPort?: (port: number) => string;
  /** How often to look for signing-key changes (default 30 s); 0 turns polling off (tests refresh by hand). */
  keyRefreshMs?: number;
  /** Metrics registry (default: a new one with the process metrics). */
  metrics?: Metrics;
}

async function listen(server: http.Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** Opens the database, migrates, builds the app and listens. */
export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.log ?? createLogger(config.logLevel);
  const db = options.db ?? createDb({ databaseUrl: config.databaseUrl, pgliteDir: config.pgliteDir, log });
  await migrateLatest(db);
  const secrets = new Secrets(config.dataEncryptionKey);
  const rekeyed = await rekeyLegacyPayloads(db, secrets);
  if (rekeyed) log.info({ rows: rekeyed }, 'stored token, code and session ids of an earlier version as keyed hashes');
  const clientChanges = config.clientCache === false ? { stop: async () => undefined } : await listenForClientChanges(db, log);

  // Bind first, so an ephemeral port can go into the issuer; Koa composes at callback() time.
  let handler: http.RequestListener = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const server = http.createServer((req, res) => handler(req, res));
  const port = await listen(server, config.port, config.host);
  const effective: Config = options.issuerForPort ? { ...config, port, issuer: options.issuerForPort(port) } : config;

  const services = createServices(effective, db, log, options.metrics ?? new Metrics());
  let app: App;
  try {
    app = await buildApp(services);
  } catch (error) {
    server.close();
    await clientChanges.stop();
    if (!options.db) await db.destroy();
    throw error;
  }
  handler = app.koa.callback();

  let metricsServer: http.Server | undefined;
  let metricsUrl: string | undefined;
  if (config.metricsPort !== undefined) {
    metricsServer = http.createServer((req, res) => {
      if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
        res.statusCode = 404;
        res.end();
        return;
      }
      services.metrics
        .exposition()
        .then(({ contentType, body }) => {
          res.setHeader('Content-Type', contentType);
          res.end(body);
        })
        .catch(() => {
          res.statusCode = 500;
          res.end();
        });
    });
    const metricsPort = await listen(metricsServer, config.metricsPort, config.host);
    metricsUrl = `http://127.0.0.1:${metricsPort}`;
  }
  const keyRefreshMs = options.keyRefreshMs ?? DEFAULT_KEY_REFRESH_MS;
  if (keyRefreshMs > 0) app.providers.start(keyRefreshMs);

  const cleanup = setInterval(() => {
    Promise.all([deleteExpiredPayloads(db), deleteExpiredKeys(db), expireBypasses({ db })]).catch((err: unknown) => log.warn({ err }, 'cleanup of expired rows failed'));
  }, 10 * 60 * 1000);
  cleanup.unref();

  log.info({ issuer: effective.issuer, port, database: config.databaseUrl ? 'postgresql' : 'pglite' }, 'identity provider listening');
  let closing: Promise<void> | undefined;
  async function close(graceMs: number): Promise<void> {
    app.draining = true;
    clearInterval(cleanup);
    app.providers.stop();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    metricsServer?.close();
    metricsServer?.closeAllConnections();
    // Idle keep-alive connections close now; busy ones once their response is sent.
    server.closeIdleConnections();
    const idle = setInterval(() => server.closeIdleConnections(), 50).unref();
    const deadline = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref());
    if ((await Promise.race([closed, deadline])) === 'timeout') {
      log.warn({ grace_ms: graceMs }, 'requests still running at the end of the grace period; closing their connections');
      server.closeAllConnections();
      await closed;
    }
    clearInterval(idle);
    await clientChanges.stop();
    if (!options.db) await db.destroy();
    log.info('stopped');
  }
  return {
    url: `http://127.0.0.1:${port}`,
    metricsUrl,
    app,
    close(closeOptions = {}) {
      closing ??= close(closeOptions.graceMs ?? 5_000);
      return closing;
    },
  };
}
