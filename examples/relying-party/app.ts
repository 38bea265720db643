// A tiny relying party (a "downstream app") on Koa and openid-client: signs a user in with the
// authorization code flow and PKCE, shows the ID token claims, calls userinfo, refreshes the tokens,
// logs out (RP-initiated logout) and accepts back-channel logout tokens from the provider.
// Sessions live in memory; this is a demonstration, not a template for production storage.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import Koa, { type Context } from 'koa';
import * as oidc from 'openid-client';

export interface ExampleOptions {
  /** The identity provider's issuer URL, e.g. http://localhost:3000. */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Where this app is reachable, e.g. http://localhost:8080 (redirect URIs are derived from it). */
  baseUrl: string;
  /** Called with the claims of each verified back-channel logout token. */
  onLogoutToken?: (claims: Record<string, unknown>) => void;
}

interface Session {
  csrf: string;
  login?: { verifier: string; state: string; nonce: string };
  tokens?: { id_token: string; access_token: string; refresh_token?: string | undefined };
  claims?: Record<string, unknown>;
  userinfo?: Record<string, unknown>;
  message?: string;
}

const SCOPE = 'openid email profile customer offline_access';

const escape = (value: unknown) =>
  String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function page(title: string, body: string): string {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}pre{background:#f4f6f8;padding:1rem;overflow:auto}form{display:inline-block;margin-right:.5rem}</style>
</head><body><h1>${escape(title)}</h1>${body}</body></html>`;
}

export async function createExampleApp(options: ExampleOptions): Promise<Koa> {
  const issuer = new URL(options.issuer);
  const insecure = issuer.protocol === 'http:';
  const config = await oidc.discovery(issuer, options.clientId, options.clientSecret, undefined, insecure ? { execute: [oidc.allowInsecureRequests] } : undefined);
  const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
  const redirectUri = `${options.baseUrl}/cb`;
  const sessions = new Map<string, Session>();

  const app = new Koa();
  app.keys = [randomBytes(32).toString('base64url')];
  const router = new Router();

  function session(ctx: Context): Session {
    let id = ctx.cookies.get('example_session', { signed: true });
    if (!id || !sessions.has(id)) {
      id = randomBytes(16).toString('base64url');
      sessions.set(id, { csrf: randomBytes(16).toString('base64url') });
      ctx.cookies.set('example_session', id, { signed: true, httpOnly: true, sameSite: 'lax' });
    }
    return sessions.get(id)!;
  }

  const form = (s: Session, action: string, label: string) =>
    `<form method="post" action="${action}"><input type="hidden" name="csrf" value="${escape(s.csrf)}"><button>${escape(label)}</button></form>`;

  function checkCsrf(ctx: Context, s: Session): void {
    if ((ctx.request.body as Record<string, unknown> | undefined)?.csrf !== s.csrf) ctx.throw(403, 'bad form token');
  }

  router.get('/', (ctx) => {
    const s = session(ctx);
    const message = s.message ? `<p><strong>${escape(s.message)}</strong></p>` : '';
    s.message = undefined;
    if (!s.tokens) {
      ctx.body = page('Example app', `${message}<p>You are not signed in.</p><p><a href="/login">Sign in</a></p>`);
      return;
    }
    ctx.body = page(
      'Example app',
      `${message}<p>Signed in as <strong id="subject">${escape(s.claims?.email ?? s.claims?.sub)}</strong>.</p>
<h2>ID token claims</h2><pre id="claims">${escape(JSON.stringify(s.claims, null, 2))}</pre>
${s.userinfo ? `<h2>Userinfo</h2><pre id="userinfo">${escape(JSON.stringify(s.userinfo, null, 2))}</pre>` : ''}
<p><a href="/userinfo">Call userinfo</a></p>
${form(s, '/refresh', 'Refresh tokens')}${form(s, '/logout', 'Log out')}`,
    );
  });

  router.get('/login', async (ctx) => {
    const s = session(ctx);
    s.login = { verifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce() };
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: SCOPE,
      // offline_access (a refresh token) is granted only with prompt=consent.
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(s.login.verifier),
      code_challenge_method: 'S256',
      state: s.login.state,
      nonce: s.login.nonce,
    });
    ctx.redirect(url.href);
  });

  router.get('/cb', async (ctx) => {
    const s = session(ctx);
    const login = s.login;
    s.login = undefined;
    if (!login) return ctx.throw(400, 'no sign-in in progress');
    const callback = new URL(ctx.originalUrl, options.baseUrl);
    if (callback.searchParams.get('error')) {
      s.message = `The sign-in was not completed: ${callback.searchParams.get('error')}`;
      ctx.redirect('/');
      return;
    }
    const tokens = await oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: login.verifier,
      expectedState: login.state,
      expectedNonce: login.nonce,
      idTokenExpected: true,
    });
    s.tokens = { id_token: tokens.id_token!, access_token: tokens.access_token, refresh_token: tokens.refresh_token };
    s.claims = tokens.claims() as Record<string, unknown>;
    s.userinfo = undefined;
    ctx.redirect('/');
  });

  router.get('/userinfo', async (ctx) => {
    const s = session(ctx);
    if (!s.tokens) return ctx.redirect('/');
    s.userinfo = (await oidc.fetchUserInfo(config, s.tokens.access_token, String(s.claims!.sub))) as Record<string, unknown>;
    ctx.redirect('/');
  });

  router.post('/refresh', async (ctx) => {
    const s = session(ctx);
    checkCsrf(ctx, s);
    if (!s.tokens?.refresh_token) return ctx.redirect('/');
    const tokens = await oidc.refreshTokenGrant(config, s.tokens.refresh_token);
    // The provider rotates refresh tokens: keep the new one, the old one is now invalid.
    s.tokens = { id_token: tokens.id_token ?? s.tokens.id_token, access_token: tokens.access_token, refresh_token: tokens.refresh_token };
    s.claims = (tokens.claims() as Record<string, unknown> | undefined) ?? s.claims;
    s.message = 'Tokens refreshed.';
    ctx.redirect('/');
  });

  router.post('/logout', (ctx) => {
    const s = session(ctx);
    checkCsrf(ctx, s);
    const idToken = s.tokens?.id_token;
    s.tokens = undefined;
    s.claims = undefined;
    s.userinfo = undefined;
    if (!idToken) return ctx.redirect('/');
    ctx.redirect(oidc.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: `${options.baseUrl}/` }).href);
  });

  // OpenID Connect Back-Channel Logout: the provider posts a signed logout token when the user signs out.
  router.post('/backchannel-logout', async (ctx) => {
    const token = (ctx.request.body as Record<string, unknown> | undefined)?.logout_token;
    try {
      if (typeof token !== 'string') throw new Error('missing logout_token');
      const { payload } = await jwtVerify(token, jwks, { issuer: config.serverMetadata().issuer, audience: options.clientId, typ: 'logout+jwt' });
      if (!payload.events || !('http://schemas.openid.net/event/backchannel-logout' in (payload.events as object)) || 'nonce' in payload) {
        throw new Error('not a logout token');
      }
      for (const s of sessions.values()) {
        if (s.claims && (s.claims.sid === payload.sid || (!payload.sid && s.claims.sub === payload.sub))) {
          s.tokens = undefined;
          s.claims = undefined;
          s.message = 'You were signed out by the identity provider.';
        }
      }
      options.onLogoutToken?.(payload as Record<string, unknown>);
      ctx.set('cache-control', 'no-store');
      ctx.status = 200;
      ctx.body = '';
    } catch {
      ctx.status = 400;
      ctx.body = { error: 'invalid_request' };
    }
  });

  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      const status = (error as { status?: number }).status;
      ctx.status = status && status < 500 ? status : 502;
      ctx.type = 'html';
      ctx.body = page('Example app', `<p>Something went wrong: ${escape((error as Error).message)}</p><p><a href="/">Home</a></p>`);
    }
  });
  app.use(bodyParser({ enableTypes: ['form'] }));
  app.use(router.routes());
  return app;
}

/**
 * Binds first (so the redirect URIs can use the real port), then asks `credentials` for the client
 * registration of that base URL and starts the app.
 */
export async function startExample(options: {
  issuer: string;
  host?: string;
  port?: number;
  publicHost?: string;
  credentials: (baseUrl: string) => Promise<{ clientId: string; clientSecret: string }>;
  onLogoutToken?: (claims: Record<string, unknown>) => void;
}): Promise<{ url: string; close(): Promise<void> }> {
  let handler: http.RequestListener = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://${options.publicHost ?? '127.0.0.1'}:${port}`;
  const { clientId, clientSecret } = await options.credentials(baseUrl);
  const app = await createExampleApp({ issuer: options.issuer, clientId, clientSecret, baseUrl, onLogoutToken: options.onLogoutToken });
  handler = app.callback();
  return {
    url: baseUrl,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
