// The relying-party app of the browser tests: a tiny HTTP server on 127.0.0.1 built on openid-client, as
// a real web app would use it. "/" links to "/login", which sends the browser to the provider
// (authorization code + PKCE, state, nonce); "/cb" exchanges the code, verifies the ID token and shows
// "Signed in as <email>".
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';

interface Pending {
  verifier: string;
  nonce: string;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, body: string): string {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body><main>${body}</main></body></html>`;
}

export class RelyingPartyApp {
  private server: http.Server | undefined;
  private config: oidc.Configuration | undefined;
  private readonly pending = new Map<string, Pending>();
  /** The claims of the last ID token the app accepted. */
  lastClaims: oidc.IDToken | undefined;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get redirectUri(): string {
    return `${this.url}/cb`;
  }

  async listen(): Promise<void> {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        res.statusCode = 500;
        res.setHeader('content-type', 'text/html; charset=utf-8');
        res.end(page('Error', `<h1>Sign-in failed</h1><p id="error">${escapeHtml(String(error))}</p>`));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Uses the client registered at the provider `issuer`. */
  async configure(issuer: string, client: { client_id: string; client_secret?: string }): Promise<void> {
    this.config = await oidc.discovery(new URL(issuer), client.client_id, client.client_secret, oidc.ClientSecretBasic(client.client_secret!), {
      execute: [oidc.allowInsecureRequests],
    });
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    res.setHeader('content-type', 'text/html; charset=utf-8');
    if (url.pathname === '/') {
      res.end(page('Example app', '<h1>Example app</h1><p>You are not signed in.</p><p><a href="/login">Sign in</a></p>'));
      return;
    }
    if (url.pathname === '/login') {
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      this.pending.set(state, { verifier, nonce });
      const extra = Object.fromEntries([...url.searchParams].filter(([name]) => ['prompt', 'ui_locales', 'login_hint', 'acr_values'].includes(name)));
      const target = oidc.buildAuthorizationUrl(this.config!, {
        redirect_uri: this.redirectUri,
        scope: 'openid email profile',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
        ...extra,
      });
      res.statusCode = 302;
      res.setHeader('location', target.href);
      res.end();
      return;
    }
    if (url.pathname === '/cb') {
      const state = url.searchParams.get('state') ?? '';
      const pending = this.pending.get(state);
      if (!pending) throw new Error('unknown state');
      this.pending.delete(state);
      if (url.searchParams.get('error')) {
        res.end(page('Example app', `<h1>Not signed in</h1><p id="error">${escapeHtml(url.searchParams.get('error')!)}</p>`));
        return;
      }
      const tokens = await oidc.authorizationCodeGrant(this.config!, url, {
        pkceCodeVerifier: pending.verifier,
        expectedState: state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      const claims = tokens.claims()!;
      this.lastClaims = claims;
      const amr = Array.isArray(claims.amr) ? (claims.amr as string[]).join(' ') : '';
      res.end(page('Example app', `<h1>Signed in as ${escapeHtml(String(claims.email))}</h1><p>amr: <span id="amr">${escapeHtml(amr)}</span></p><p><a href="/login?prompt=login">Sign in again</a></p>`));
      return;
    }
    res.statusCode = 404;
    res.end(page('Not found', '<h1>Not found</h1>'));
  }
}
