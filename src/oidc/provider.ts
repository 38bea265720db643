// The oidc-provider configuration: the only place that knows oidc-provider's shapes.
import type { Context } from 'koa';
import Provider, { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { JWK } from 'jose';
import { findUserById } from '../accounts/users.js';
import { consoleClientMetadata } from '../console/session.js';
import { DomainError, englishError } from '../errors.js';
import { isBadInputForDatabase, isDatabaseUnavailable } from '../http/errors.js';
import { brandView } from '../http/brand.js';
import { pageLocale, render as renderPage } from '../http/render.js';
import { LOCALES, translator } from '../i18n/index.js';
import { audit } from '../security/audit.js';
import type { Services } from '../services.js';
import { adapterFactory } from './adapter.js';
import { accountClaims } from './claims.js';
import { AUTH_METHODS, checkClientMetadata, isFirstPartyClient, newClientId } from './clients.js';
import { findConsent } from './consents.js';
import { consumeInitialAccessToken, REGISTRATION_POLICY, SINGLE_USE_POLICY } from './registration.js';
import { AUTHORIZATION_PATH, authorizationRequestForms } from './request-objects.js';
import { findResourceServer, findResourceServerForClient, type ResourceServer } from './resources.js';

/** acr values: one factor (password or Google alone) and two factors. */
export const ACR = { singleFactor: 'urn:telephony-idp:acr:1fa', multiFactor: 'urn:telephony-idp:acr:2fa' } as const;

/** The scopes of the provider itself and the claims each one releases (README "Clients and tokens"). */
export const SCOPE_CLAIMS = {
  // acr/amr/auth_time sit under the openid scope: declared standalone, oidc-provider only emits them
  // when the claims parameter asks (see STACK-NOTES, surprise 4).
  openid: ['sub', 'acr', 'amr', 'auth_time'],
  email: ['email', 'email_verified'],
  profile: ['name', 'locale', 'updated_at'],
  customer: ['customer_number', 'role'],
} as const;
export const OIDC_SCOPES = ['openid', 'offline_access', 'email', 'profile', 'customer'] as const;

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** Claims the consent prompt never asks about (oidc-provider's op_claims_missing check skips them too). */
const ALWAYS_ALLOWED_CLAIMS = new Set(['sub', 'sid', 'auth_time', 'acr', 'amr', 'iss']);

/**
 * Adds to `grant` everything the authorization request asks for, as the consent prompt would find it
 * missing: the OpenID scopes, the claims of the claims parameter and, per resource server, the requested
 * scopes that server has (oidc-provider's op_scopes_missing, op_claims_missing and rs_scopes_missing).
 */
function grantAllRequested(ctx: KoaContextWithOIDC, grant: InstanceType<Provider['Grant']>): void {
  const oidc = ctx.oidc as KoaContextWithOIDC['oidc'] & {
    requestParamOIDCScopes: Set<string>;
    requestParamClaims: Set<string>;
    requestParamScopes: Set<string>;
    resourceServers: Record<string, { scopes: Set<string> }>;
  };
  const scopes = [...oidc.requestParamOIDCScopes];
  if (scopes.length) grant.addOIDCScope(scopes.join(' '));
  const claims = [...oidc.requestParamClaims].filter((c) => !ALWAYS_ALLOWED_CLAIMS.has(c));
  if (claims.length) grant.addOIDCClaims(claims);
  for (const [indicator, server] of Object.entries(oidc.resourceServers ?? {})) {
    const apiScopes = [...oidc.requestParamScopes].filter((s) => server.scopes.has(s));
    if (apiScopes.length) grant.addResourceScope(indicator, apiScopes.join(' '));
  }
}

function requestInfo(ctx: KoaContextWithOIDC) {
  return { ip: ctx.ip, userAgent: ctx.get('user-agent') };
}

export function createProvider(services: Services, jwks: JWK[]): Provider {
  const { config, db, secrets, log } = services;
  const rules = { production: config.production };
  // oidc-provider renders some of our pages (logout, errors) on its own context.
  const brand = brandView(services.brand);
  const render = (ctx: Context, view: string, data: Record<string, unknown> = {}, status = 200) => {
    ctx.state.brand = brand;
    return renderPage(ctx, view, data, status);
  };

  const configuration: Configuration = {
    adapter: adapterFactory(db, secrets) as unknown as Configuration['adapter'],
    // The account console is the one client defined in code; every other client lives in the database.
    clients: [consoleClientMetadata(config.issuer)],
    jwks: { keys: jwks as NonNullable<Configuration['jwks']>['keys'] },
    cookies: {
      // keygrip-compatible signatures, cheaper (http/cookie-keys.ts); the same object Koa uses.
      keys: services.cookieKeys as unknown as NonNullable<Configuration['cookies']>['keys'],
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    claims: Object.fromEntries(Object.entries(SCOPE_CLAIMS).map(([scope, claims]) => [scope, [...claims]])),
    // Only scopes we hold data for. `address` and `phone` are not offered: we keep no postal address or
    // phone number, so the conformance suite skips oidcc-scope-address, -phone and -all instead of
    // asking for claims we could never return (docs/conformance.md).
    scopes: [...OIDC_SCOPES],
    // The ID token carries the claims of the granted scopes (DESIGN §5), not only userinfo. Checked against
    // the certification plans: with the suite's scope=openid, claims asked for userinfo through the
    // claims parameter stay out of the ID token either way (oidcc-claims-essential, oidcc-server).
    conformIdTokenClaims: false,
    acrValues: [ACR.singleFactor, ACR.multiFactor],
    // `code` for every client we register (CLI, operator pages). `id_token` and `id_token token` exist
    // because OpenID Connect Core 15.2 makes them mandatory for Dynamic OPs (oidcc-discovery-endpoint-
    // verification in the Dynamic plan fails without them); a client gets them only when it registers
    // them explicitly through dynamic registration, and code + PKCE stays what we recommend.
    responseTypes: ['code', 'id_token', 'id_token token'],
    routes: { authorization: AUTHORIZATION_PATH },
    // OpenID Connect Core 3.1.2.1: redirect_uri is REQUIRED. oidc-provider would otherwise use a client's
    // only registered URI when it is missing (oidcc-ensure-redirect-uri-in-authorization-request).
    allowOmittingSingleRegisteredRedirectUri: false,
    // Kept in the client's metadata (and returned by dynamic registration): the request_uris a client
    // may use (OpenID Connect Registration 2; checked in clients.ts, used in request-objects.ts).
    extraClientMetadata: { properties: ['request_uris'] },
    discovery: { ui_locales_supported: [...LOCALES] },
    clientAuthMethods: [...AUTH_METHODS],
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
    // Every use of a refresh token returns a new one. Presenting a used one again means it leaked:
    // oidc-provider then revokes the whole grant (all its refresh and access tokens).
    rotateRefreshToken: true,
    // The session's grant for this client; for a first-party client a new grant with what it asked for
    // (first-party clients skip consent: granting here spares the browser a round trip through the consent
    // prompt, which would grant the same); else one rebuilt from the consent the user gave before
    // (remembered per user and client, see consents.ts). oidc-provider asks only for what is missing.
    loadExistingGrant: async (ctx) => {
      const clientId = ctx.oidc.client!.clientId;
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session!.grantIdFor(clientId);
      if (grantId) {
        const grant = await ctx.oidc.provider.Grant.find(grantId);
        if (grant) return grant;
      }
      const accountId = ctx.oidc.account!.accountId;
      if (await isFirstPartyClient(db, secrets, clientId)) {
        const grant = new ctx.oidc.provider.Grant({ accountId, clientId });
        grantAllRequested(ctx, grant);
        await grant.save();
        return grant;
      }
      const remembered = await findConsent(db, accountId, clientId);
      if (!remembered) return undefined;
      const grant = new ctx.oidc.provider.Grant({ accountId, clientId });
      if (remembered.scopes.length) grant.addOIDCScope(remembered.scopes.join(' '));
      if (remembered.claims.length) grant.addOIDCClaims(remembered.claims);
      for (const [indicator, scopes] of Object.entries(remembered.resource_scopes)) grant.addResourceScope(indicator, scopes.join(' '));
      await grant.save();
      return grant;
    },
    // Outgoing requests (back-channel logout, jwks_uri) are protected against SSRF by oidc-provider, which
    // also refuses loopback addresses. Outside production, loopback is allowed (local apps and tests).
    fetch: (url, init) => {
      const target = new URL(url instanceof Request ? url.url : url);
      if (!config.production && LOOPBACK_HOSTS.has(target.hostname) && init) delete (init as { dispatcher?: unknown }).dispatcher;
      return globalThis.fetch(url, init);
    },
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: true },
      // Signed request objects by value (OpenID Connect Core 6.1), verified by oidc-provider; request_uri
      // and unsigned objects are turned into these or into plain parameters by request-objects.ts
      // (oidcc-request-uri-*, oidcc-unsigned-request-object-*, oidcc-ensure-request-object-with-redirect-uri).
      requestObjects: { enabled: true, requireSignedRequestObject: false },
      // Signed userinfo responses for clients registered with userinfo_signed_response_alg
      // (oidcc-userinfo-rs256 in the Dynamic plan).
      jwtUserinfo: { enabled: true },
      clientCredentials: { enabled: true },
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
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx: KoaContextWithOIDC, form: string) => {
          await render(ctx as unknown as Context, 'logout', { form, host: ctx.host });
        },
        postLogoutSuccessSource: async (ctx: KoaContextWithOIDC) => {
          await render(ctx as unknown as Context, 'logout-done');
        },
      },
      registration: {
        enabled: true,
        initialAccessToken: true,
        issueRegistrationAccessToken: true,
        idFactory: () => newClientId(),
        policies: {
          [REGISTRATION_POLICY]: (_ctx, metadata) => {
            try {
              checkClientMetadata(metadata as Record<string, unknown>, rules);
            } catch (error) {
              if (!(error instanceof DomainError)) throw error;
              // RFC 7591 §3.2.2 error codes, with our message as the description.
              throw new errors.CustomOIDCProviderError(error.code === 'invalid_redirect_uri' ? 'invalid_redirect_uri' : 'invalid_client_metadata', englishError(error));
            }
          },
          [SINGLE_USE_POLICY]: async (ctx, metadata) => {
            const iat = ctx.oidc.entities.InitialAccessToken;
            if (!iat) return; // an update (RFC 7592) with the registration access token
            // Check the metadata fully first, so a rejected registration does not use up the token.
            await (ctx.oidc.provider.Client as unknown as { validate(m: unknown): Promise<void> }).validate(metadata);
            if (!(await consumeInitialAccessToken(db, secrets, iat.jti))) throw new errors.InvalidToken('initial access token already used');
          },
        },
      },
      registrationManagement: { enabled: true, rotateRegistrationAccessToken: true },
      resourceIndicators: {
        enabled: true,
        // Userinfo needs an opaque token without audience: the JWT for an API comes from passing
        // `resource` at the token endpoint (code exchange or refresh).
        useGrantedResource: () => false,
        getResourceServerInfo: async (ctx, indicator, client) => {
          // A machine client gets only the API scopes an operator registered on it; a user's app gets
          // what the user allows (consent) of the API's scopes.
          const machine = ctx.oidc.route === 'token' && ctx.oidc.params?.grant_type === 'client_credentials';
          const server: (ResourceServer & { apiScopes?: string[] }) | undefined = machine
            ? await findResourceServerForClient(db, indicator, client.clientId)
            : await findResourceServer(db, indicator);
          if (!server) throw new errors.InvalidTarget('unknown resource server');
          let scopes = server.scopes;
          if (machine) {
            const allowed = new Set(server.apiScopes);
            scopes = scopes.filter((s) => allowed.has(s));
            if (!scopes.length) throw new errors.InvalidTarget('client is not allowed any scope of this resource server');
          }
          return { scope: scopes.join(' '), audience: server.identifier, accessTokenFormat: 'jwt', accessTokenTTL: server.access_token_ttl };
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
    renderError: async (ctx, out, error) => {
      // oidc-provider's error codes and descriptions are technical English: shown as the detail, under a
      // message in the page's language.
      if (isDatabaseUnavailable(error)) {
        ctx.set('Retry-After', '5');
        await render(ctx as unknown as Context, 'error', { message: translator(pageLocale(ctx as unknown as Context))('error.unavailable') }, 503);
        return;
      }
      if (isBadInputForDatabase(error)) {
        await render(ctx as unknown as Context, 'error', { message: translator(pageLocale(ctx as unknown as Context))('error.bad_request') }, 400);
        return;
      }
      const errorCode = String(out.error ?? 'error');
      const description = out.error_description ? String(out.error_description) : '';
      const page = ctx as unknown as Context;
      const message = translator(pageLocale(page))('error.oidc', { error: errorCode });
      await render(page, 'error', { message, detail: description || undefined }, ctx.status >= 400 ? ctx.status : 400);
    },
  };

  const provider = new Provider(config.issuer, configuration);
  provider.proxy = config.trustProxy;
  // POST to the authorization endpoint, request_uri and unsigned request objects (see request-objects.ts).
  // oidc-provider's own enableHttpPostMethods stays off: it needs SameSite=None session cookies.
  provider.use(
    authorizationRequestForms(provider, {
      production: config.production,
      log,
      renderError: (ctx, status, message) => render(ctx, 'error', { message }, status),
    }) as unknown as Parameters<Provider['use']>[0],
  );
  // Discovery tells what request-objects.ts adds: request_uri (only registered ones) and unsigned objects.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route !== 'discovery' || ctx.status !== 200 || !ctx.body) return;
    const body = ctx.body as Record<string, unknown>;
    body.request_uri_parameter_supported = true;
    body.require_request_uri_registration = true;
    body.request_object_signing_alg_values_supported = [...((body.request_object_signing_alg_values_supported as string[] | undefined) ?? []), 'none'];
  });
  // The client IP is the last X-Forwarded-For entry, as in the app (app.ts).
  (provider as unknown as { maxIpsCount: number }).maxIpsCount = 1;
  // A database outage inside oidc-provider surfaces as its generic server_error (500); answer it as
  // 503 with Retry-After instead, like our own pages (HTML goes through renderError above).
  provider.on('server_error', (ctx, error) => {
    if (isDatabaseUnavailable(error)) {
      ctx.state.databaseUnavailable = true;
      log.warn({ err: error, route: ctx.oidc?.route }, 'database unavailable');
      return;
    }
    if (isBadInputForDatabase(error)) {
      ctx.state.badInput = true;
      log.warn({ err: error, route: ctx.oidc?.route }, 'input the database refused');
      return;
    }
    log.error({ err: error, route: ctx.oidc?.route }, 'oidc-provider server_error');
  });
  // Errors outside its endpoints' own handling (e.g. a broken request stream): logged, never printed.
  (provider as unknown as { on(event: 'error', listener: (err: { status?: number; expose?: boolean }) => void): void }).on('error', (err) => {
    if (err.expose || (err.status && err.status < 500)) log.debug({ err }, 'oidc-provider request error');
    else log.error({ err }, 'oidc-provider error');
  });
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.state.badInput && ctx.status === 500) {
      ctx.status = 400;
      ctx.body = { error: 'invalid_request', error_description: 'The request contains values that cannot be processed.' };
      return;
    }
    if (!ctx.state.databaseUnavailable) return;
    services.metrics.databaseUnavailable.inc();
    ctx.set('Retry-After', '5');
    if (ctx.status === 500) {
      ctx.status = 503;
      ctx.body = { error: 'temporarily_unavailable', error_description: 'The service is temporarily unavailable. Please try again shortly.' };
    }
  });

  const record = (ctx: KoaContextWithOIDC, type: string, details: Record<string, unknown>, userId?: string) =>
    audit(db, { type, userId, ...requestInfo(ctx), details }).catch((err: unknown) => log.error({ err, type }, 'audit write failed'));
  provider.on('grant.error', (ctx, error: { error_detail?: string }) => {
    if (error.error_detail === 'refresh token already used') {
      // oidc-provider has revoked the grant: every token of that sign-in stops working.
      const token = ctx.oidc.entities.RefreshToken;
      void record(ctx, 'token.refresh_reuse_detected', { client_id: ctx.oidc.client?.clientId, grant_id: token?.grantId }, token?.accountId);
    }
  });
  provider.on('registration_create.success', (ctx, client) => void record(ctx, 'client.registered', { via: 'dcr', client_id: client.clientId }));
  provider.on('registration_update.success', (ctx, client) => void record(ctx, 'client.updated', { via: 'dcr', client_id: client.clientId }));
  provider.on('registration_delete.success', (ctx, client) => void record(ctx, 'client.deleted', { via: 'dcr', client_id: client.clientId }));
  provider.on('backchannel.error', (_ctx, error, client) => log.warn({ err: error, client_id: client.clientId }, 'back-channel logout failed'));
  provider.on('end_session.success', (ctx) => void record(ctx, 'logout', { client_id: ctx.oidc.client?.clientId }, ctx.oidc.session?.accountId));
  return provider;
}
