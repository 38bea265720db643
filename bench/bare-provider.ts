// The reference point for the token endpoint: a bare oidc-provider with its in-memory adapter, configured
// like ours where the token endpoint is concerned (RS256 ID tokens, ES256 key present, client_secret_basic,
// rotating refresh tokens, the same scopes and claims, the same TTLs, introspection, resource indicators
// with JWT access tokens for one API) but without our storage, Koa wrapper, key holder or account lookups.
// It also signs people in the least a provider can: one page with a password form (no template, no CSRF
// token check, no limits, no audit, no second factor, no storage), the password checked with argon2id
// (the provider's parameters), the grant made at once. The reference for a complete sign-in: what the
// library and argon2id alone cost on this machine.
// Run as a child process by bench/run.ts: PORT in the environment; sends over IPC what the load needs
// (client credentials, one refresh token and one access token per load worker, minted in-process) and waits for SIGTERM.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import argon2 from 'argon2';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { errors, type Configuration } from 'oidc-provider';

const chains = Number(process.env.BENCH_CHAINS ?? 8);
const API = 'https://api.bench.invalid';
const WEB = { client_id: 'bench-web', client_secret: 'bench-web-secret-0123456789abcdefghijklmnop' };
const MACHINE = { client_id: 'bench-machine', client_secret: 'bench-machine-secret-0123456789abcdefghijkl' };
const REDIRECT_URI = 'https://app.bench.invalid/cb';

const argon2Params = JSON.parse(process.env.BENCH_ARGON2_PARAMS ?? '{}') as { memoryCost?: number; timeCost?: number; parallelism?: number };
const passwordHash = await argon2.hash(process.env.BENCH_PASSWORD ?? 'bench', { type: argon2.argon2id, ...argon2Params });

const rsa = await generateKeyPair('RS256', { extractable: true });
const ec = await generateKeyPair('ES256', { extractable: true });
const jwks = [
  { ...(await exportJWK(rsa.privateKey)), kid: 'rs', alg: 'RS256', use: 'sig' },
  { ...(await exportJWK(ec.privateKey)), kid: 'es', alg: 'ES256', use: 'sig' },
];

const user = {
  sub: '6f1c2a9e-4a3b-4c55-9a57-0c2d2b1f0e11',
  email: 'bench@example.com',
  email_verified: true,
  name: 'Bench User',
  locale: 'en',
  updated_at: Math.floor(Date.now() / 1000),
  customer_number: '1234567',
  role: 'user',
};

const configuration: Configuration = {
  clients: [
    { ...WEB, redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] },
    { ...MACHINE, redirect_uris: [], grant_types: ['client_credentials'], response_types: [] },
  ],
  jwks: { keys: jwks as NonNullable<Configuration['jwks']>['keys'] },
  cookies: { keys: ['bench-cookie-key-0123456789abcdef'] },
  claims: {
    openid: ['sub', 'acr', 'amr', 'auth_time'],
    email: ['email', 'email_verified'],
    profile: ['name', 'locale', 'updated_at'],
    customer: ['customer_number', 'role'],
  },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'customer'],
  conformIdTokenClaims: false,
  acrValues: ['urn:telephony-idp:acr:1fa', 'urn:telephony-idp:acr:2fa'],
  responseTypes: ['code'],
  clientDefaults: { grant_types: ['authorization_code'], response_types: ['code'], id_token_signed_response_alg: 'RS256', token_endpoint_auth_method: 'client_secret_basic' },
  enabledJWA: { idTokenSigningAlgValues: ['RS256', 'ES256'], userinfoSigningAlgValues: ['RS256', 'ES256'] },
  rotateRefreshToken: true,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async (_ctx, client, token) => !(client.clientAuthMethod === 'none' && token.clientId !== client.clientId) },
    revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      useGrantedResource: () => false,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator !== API) throw new errors.InvalidTarget('unknown resource server');
        return { scope: 'api:read api:write', audience: API, accessTokenFormat: 'jwt', accessTokenTTL: 3600 };
      },
    },
  },
  ttl: {
    AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 60 * 60,
    AuthorizationCode: 60,
    ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 10 * 60,
    IdToken: 60 * 60,
    Interaction: 60 * 60,
    RefreshToken: 14 * 24 * 60 * 60,
    Session: 14 * 24 * 60 * 60,
    Grant: 14 * 24 * 60 * 60,
  },
  // Sign-ins: the account is the address typed; the app is first party (granted what it asks, no consent page).
  findAccount: async (_ctx, sub) =>
    sub === user.sub ? { accountId: sub, claims: async () => user } : { accountId: sub, claims: async () => ({ sub, email: sub, email_verified: true }) },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ accountId: ctx.oidc.account!.accountId, clientId: ctx.oidc.client!.clientId });
    grant.addOIDCScope(String(ctx.oidc.params!.scope));
    await grant.save();
    return grant;
  },
};

const provider = new Provider('http://127.0.0.1', configuration);
const oidcHandler = provider.callback();

/** The interaction: GET shows the password form, POST checks the password and finishes the login. */
async function interaction(req: http.IncomingMessage, res: http.ServerResponse, uid: string, submitted: boolean): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  if (!submitted) {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(`<form method="post" action="/interaction/${uid}/password"><input type="hidden" name="_csrf" value="-"><input name="identifier"><input name="password" type="password"></form>`);
    return;
  }
  let body = '';
  for await (const chunk of req) body += chunk;
  const form = new URLSearchParams(body);
  const identifier = form.get('identifier') ?? '';
  if (!(await argon2.verify(passwordHash, form.get('password') ?? ''))) {
    res.statusCode = 401;
    res.end('wrong password');
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: identifier } }, { mergeWithLastSubmission: false });
}

const server = http.createServer((req, res) => {
  const match = /^\/interaction\/([\w-]+)(\/password)?$/.exec(req.url ?? '');
  if (!match) return void oidcHandler(req, res);
  interaction(req, res, match[1]!, req.method === 'POST' && Boolean(match[2])).catch((error: unknown) => {
    res.statusCode = 500;
    res.end(String(error));
  });
});
await new Promise<void>((resolve) => server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => resolve()));
const { port } = server.address() as AddressInfo;

// Tokens as a completed sign-in would leave them: a grant with the scopes, one refresh token per chain
// (each load worker rotates its own) and an opaque access token per chain for introspection.
const client = (await provider.Client.find(WEB.client_id))!;
const scope = 'openid email profile offline_access';
const now = Math.floor(Date.now() / 1000);
const refreshTokens: string[] = [];
const accessTokens: string[] = [];
for (let i = 0; i < chains; i += 1) {
  const grant = new provider.Grant({ accountId: user.sub, clientId: WEB.client_id });
  grant.addOIDCScope(scope);
  const grantId = await grant.save();
  const common = { client, accountId: user.sub, grantId, scope, gty: 'authorization_code', authTime: now, acr: 'urn:telephony-idp:acr:1fa', amr: ['pwd'] };
  const rt = new provider.RefreshToken({ ...common, iiat: now, rotations: 0 } as never);
  refreshTokens.push(await rt.save());
  accessTokens.push(await new provider.AccessToken({ ...common, scope: 'openid email profile' } as never).save());
}

process.send!({
  ready: true,
  url: `http://127.0.0.1:${port}`,
  web: WEB,
  machine: MACHINE,
  api: API,
  refreshTokens,
  accessTokens,
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
