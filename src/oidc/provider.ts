// The oidc-provider configuration: the only place that knows oidc-provider's shapes.
import type { Context } from 'koa';
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { JWK } from 'jose';
import { findUserById } from '../accounts/users.js';
import { consoleClientMetadata } from '../console/session.js';
import { render } from '../http/render.js';
import type { Services } from '../services.js';
import { adapterFactory } from './adapter.js';
import { accountClaims } from './claims.js';

/** acr values: one factor (password or Google alone) and two factors. */
export const ACR = { singleFactor: 'urn:telephony-idp:acr:1fa', multiFactor: 'urn:telephony-idp:acr:2fa' } as const;

export function createProvider(services: Services, jwks: JWK[]): Provider {
  const { config, db, secrets } = services;

  const configuration: Configuration = {
    adapter: adapterFactory(db, secrets) as unknown as Configuration['adapter'],
    // The account console is the one client defined in code; every other client lives in the database.
    clients: [consoleClientMetadata(config.issuer)],
    jwks: { keys: jwks as NonNullable<Configuration['jwks']>['keys'] },
    cookies: {
      keys: config.cookieKeys,
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    // acr/amr/auth_time sit under the openid scope: declared standalone, oidc-provider only emits them
    // when the claims parameter asks (see STACK-NOTES, surprise 4).
    claims: {
      openid: ['sub', 'acr', 'amr', 'auth_time'],
      email: ['email', 'email_verified'],
      profile: ['name', 'locale', 'updated_at'],
      customer: ['customer_number', 'role'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'customer'],
    acrValues: [ACR.singleFactor, ACR.multiFactor],
    responseTypes: ['code'],
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      id_token_signed_response_alg: 'RS256',
      token_endpoint_auth_method: 'client_secret_basic',
    },
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256', 'ES256'],
      userinfoSigningAlgValues: ['RS256', 'ES256'],
    },
    pkce: {
      // PKCE (S256 only) is required for public clients and used when a confidential client sends it.
      required: (_ctx, client) => client.clientAuthMethod === 'none',
    },
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: true },
      introspection: {
        enabled: true,
        // A client may introspect its own tokens; public clients nothing else.
        allowedPolicy: async (_ctx, client, token) => !(client.clientAuthMethod === 'none' && token.clientId !== client.clientId),
      },
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx: KoaContextWithOIDC, form: string) => {
          await render(ctx as unknown as Context, 'logout', { form, host: ctx.host });
        },
        postLogoutSuccessSource: async (ctx: KoaContextWithOIDC) => {
          await render(ctx as unknown as Context, 'logout-done');
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
      DeviceCode: 10 * 60,
      BackchannelAuthenticationRequest: 10 * 60,
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    findAccount: async (_ctx, sub) => {
      const user = await findUserById(db, sub);
      if (!user || user.status === 'disabled') return undefined;
      return { accountId: user.id, claims: async () => accountClaims(user) };
    },
    renderError: async (ctx, out) => {
      const error = String(out.error ?? 'error');
      const description = out.error_description ? String(out.error_description) : '';
      await render(ctx as unknown as Context, 'error', { message: `${error}${description ? `: ${description}` : ''}` }, ctx.status >= 400 ? ctx.status : 400);
    },
  };

  const provider = new Provider(config.issuer, configuration);
  provider.proxy = config.trustProxy;
  provider.on('server_error', (_ctx, error) => services.log.error({ err: error }, 'oidc-provider server_error'));
  return provider;
}
