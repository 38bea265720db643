// The reference point for the token endpoint: a bare oidc-provider with its in-memory adapter, configured
// like ours where the token endpoint is concerned (RS256 ID tokens, ES256 key present, client_secret_basic,
// rotating refresh tokens, the same scopes and claims, the same TTLs, introspection, resource indicators
// with JWT access tokens for one API) but without our storage, Koa wrapper, key holder or account lookups.
// Run as a child process by bench/run.ts: PORT in the environment; sends over IPC what the load needs
// (client credentials, one refresh token and one access token per load worker, minted in-process) and waits for SIGTERM.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { errors, type Configuration } from 'oidc-provider';

const chains = Number(process.env.BENCH_CHAINS ?? 8);
const API = 'https://api.bench.invalid';
const WEB = { client_id: 'bench-web', client_secret: 'bench-web-secret-0123456789abcdefghijklmnop' };
const MACHINE = { client_id: 'bench-machine', client_secret: 'bench-machine-secret-0123456789abcdefghijkl' };
const REDIRECT_URI = 'https://app.bench.invalid/cb';

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
  findAccount: async (_ctx, sub) => (sub === user.sub ? { accountId: sub, claims: async () => user } : undefined),
};

const provider = new Provider('http://127.0.0.1', configuration);
const server = http.createServer(provider.callback());
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
