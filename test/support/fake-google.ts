// A real OpenID Connect issuer in place of Google: a second oidc-provider on 127.0.0.1 with one static
// client (the provider under test), issuing Google-shaped ID tokens (sub, email, email_verified, hd).
// Its sign-in page signs in `account` at once (or ends with the error `deny`); `tamper` makes its
// token endpoint hand out an ID token with a changed claim or a foreign signature.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTHeaderParameters } from 'jose';
import Provider, { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';

export interface GoogleAccount {
  sub: string;
  email?: string;
  email_verified?: boolean | string;
  hd?: string;
}

export type Tamper = 'nonce' | 'signature' | 'audience' | 'issuer' | 'expired';

type Payload = Record<string, unknown> & { uid?: string; grantId?: string; userCode?: string; consumed?: number };

/** oidc-provider's storage for the fake: a Map per model (its built-in one warns on every start). */
function memoryAdapter() {
  const stores = new Map<string, Map<string, { payload: Payload; expiresAt: number | undefined }>>();
  return class MemoryAdapter {
    private readonly store: Map<string, { payload: Payload; expiresAt: number | undefined }>;
    constructor(model: string) {
      if (!stores.has(model)) stores.set(model, new Map());
      this.store = stores.get(model)!;
    }
    async upsert(id: string, payload: Payload, expiresIn?: number) {
      this.store.set(id, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
    }
    async find(id: string) {
      const entry = this.store.get(id);
      if (!entry || (entry.expiresAt && entry.expiresAt < Date.now())) return undefined;
      return entry.payload;
    }
    async findByUid(uid: string) {
      for (const [id, entry] of this.store) if (entry.payload.uid === uid) return this.find(id);
      return undefined;
    }
    async findByUserCode(userCode: string) {
      for (const [id, entry] of this.store) if (entry.payload.userCode === userCode) return this.find(id);
      return undefined;
    }
    async consume(id: string) {
      const entry = this.store.get(id);
      if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      this.store.delete(id);
    }
    async revokeByGrantId(grantId: string) {
      for (const [id, entry] of this.store) if (entry.payload.grantId === grantId) this.store.delete(id);
    }
  };
}

export class FakeGoogle {
  readonly clientId = '1234567890-test.apps.googleusercontent.com';
  readonly clientSecret = 'GOCSPX-test-client-secret';
  account: GoogleAccount = { sub: '100000000000000000001', email: 'someone@gmail.com', email_verified: true };
  /** The authorization ends with this error instead (access_denied: the user cancelled). */
  deny: string | undefined;
  tamper: Tamper | undefined;
  /** Query parameters of the last authorization request (to check PKCE, state and nonce). */
  lastAuthorization: URLSearchParams | undefined;
  port = 0;

  private server: http.Server | undefined;
  private provider: Provider | undefined;
  private callback: ReturnType<Provider['callback']> | undefined;
  private signingKey: CryptoKey | undefined;
  private foreignKey: CryptoKey | undefined;

  get issuer(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Binds (again, after stop(), on the same port) so the issuer URL is known before the provider exists. */
  async listen(port = this.port): Promise<void> {
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  reset(): void {
    this.account = { sub: '100000000000000000001', email: 'someone@gmail.com', email_verified: true };
    this.deny = undefined;
    this.tamper = undefined;
    this.lastAuthorization = undefined;
  }

  /** Creates the issuer with the provider under test as its client. */
  async configure(redirectUri: string): Promise<void> {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    this.signingKey = privateKey;
    this.foreignKey = (await generateKeyPair('RS256')).privateKey;
    const jwk: JWK = { ...(await exportJWK(privateKey)), kid: 'fake-google-1', alg: 'RS256', use: 'sig' };

    // Ask for a login on every authorization (as if the person picked an account each time), except
    // when the authorization resumes with the login just made.
    const policy = interactionPolicy.base();
    policy.get('login')!.checks.add(
      new interactionPolicy.Check('fake_always_login', 'the fake asks every time', (ctx: KoaContextWithOIDC) =>
        ctx.oidc.result?.login ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT,
      ),
    );

    const provider = new Provider(this.issuer, {
      adapter: memoryAdapter(),
      ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 600, Grant: 600 },
      clients: [
        {
          client_id: this.clientId,
          client_secret: this.clientSecret,
          redirect_uris: [redirectUri],
          token_endpoint_auth_method: 'client_secret_post',
        },
      ],
      jwks: { keys: [jwk as never] },
      // Different cookie names: browsers share cookies between ports of 127.0.0.1.
      cookies: { names: { session: 'fake_google_session', interaction: 'fake_google_interaction', resume: 'fake_google_resume' }, keys: ['fake-google-cookie-key-0001'] },
      claims: { openid: ['sub'], email: ['email', 'email_verified', 'hd'] },
      // Like Google: the email claims are in the ID token.
      conformIdTokenClaims: false,
      features: { devInteractions: { enabled: false } },
      pkce: { required: () => true },
      interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}`, policy },
      findAccount: async (_ctx, sub) => ({
        accountId: sub,
        claims: async () => {
          const { email, email_verified, hd } = this.account;
          return { sub, ...(email !== undefined ? { email } : {}), ...(email_verified !== undefined ? { email_verified } : {}), ...(hd ? { hd } : {}) } as never;
        },
      }),
      // No consent screen: the scopes asked for are granted.
      loadExistingGrant: async (ctx) => {
        const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! });
        grant.addOIDCScope('openid email');
        await grant.save();
        return grant;
      },
    });
    provider.use(async (ctx, next) => {
      if (ctx.path === '/auth' && ctx.method === 'GET') this.lastAuthorization = new URLSearchParams(ctx.querystring);
      await next();
      const body = ctx.body as { id_token?: unknown } | undefined;
      if (ctx.path === '/token' && this.tamper && typeof body?.id_token === 'string') {
        ctx.body = { ...body, id_token: await this.rewrite(body.id_token, this.tamper) };
      }
    });
    this.provider = provider;
    this.callback = provider.callback();
  }

  private async rewrite(idToken: string, tamper: Tamper): Promise<string> {
    const header = decodeProtectedHeader(idToken) as JWTHeaderParameters;
    const payload = decodeJwt(idToken);
    const now = Math.floor(Date.now() / 1000);
    if (tamper === 'nonce') payload.nonce = 'a-nonce-from-another-sign-in';
    if (tamper === 'audience') payload.aud = 'someone-elses-client-id';
    if (tamper === 'issuer') payload.iss = 'https://accounts.evil.example';
    if (tamper === 'expired') Object.assign(payload, { iat: now - 7200, exp: now - 3600 });
    // 'signature': same claims and kid, signed with a key that is not in the issuer's JWKS.
    const key = tamper === 'signature' ? this.foreignKey! : this.signingKey!;
    return new SignJWT(payload).setProtectedHeader(header).sign(key);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const provider = this.provider;
    if (!provider) {
      res.statusCode = 503;
      res.end('not configured');
      return;
    }
    if (req.url?.startsWith('/interaction/')) {
      await provider.interactionDetails(req, res);
      const result = this.deny
        ? { error: this.deny, error_description: 'The sign-in did not happen' }
        : { login: { accountId: this.account.sub } };
      await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
      return;
    }
    this.callback!(req, res);
  }
}
