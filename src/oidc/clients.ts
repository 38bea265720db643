// Registered OIDC clients (relying-party apps). Metadata is stored as oidc-provider expects it; the
// client secret is encrypted at rest (oidc-provider needs it in clear to check client_secret_* auth).
//
// Three kinds of client, registered by the CLI, the operator page or dynamic registration, all checked
// by the same rules (checkClientMetadata):
//   web      confidential app with a back end: client_secret_basic, client_secret_post or private_key_jwt
//   public   app that cannot keep a secret (native, single-page): no secret, PKCE required
//   machine  server-to-server: client_credentials only, no redirect URIs, no user
import { z } from 'zod';
import { affectedRows, type Db, fastQuery } from '../db/index.js';
import { DomainError } from '../errors.js';
import { randomToken, type Secrets } from '../security/crypto.js';
import { clientCacheFor } from './client-cache.js';

export type ClientMetadata = Record<string, unknown> & { client_id: string; client_secret?: string };
export type ClientKind = 'web' | 'public' | 'machine';
export type RegisteredVia = 'cli' | 'ops' | 'dcr';

export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials', 'implicit'] as const;
/**
 * `code` for everything we register ourselves; `id_token` and `id_token token` (with the implicit grant) only
 * when a client asks for them in dynamic registration (OpenID Connect Core 15.2, see provider.ts).
 */
export const RESPONSE_TYPES = ['code', 'id_token', 'id_token token'] as const;
/** URIs a client registers for people to open (logo, policy, terms), shown on the sign-in and consent pages. */
const DISPLAY_URIS = ['logo_uri', 'policy_uri', 'tos_uri', 'client_uri'] as const;
const MAX_REQUEST_URIS = 10;
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;
export const ID_TOKEN_ALGS = ['RS256', 'ES256'] as const;
const SECRET_AUTH_METHODS = new Set(['client_secret_basic', 'client_secret_post']);

export interface ClientSummary {
  client_id: string;
  client_name: string | null;
  kind: ClientKind;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  grant_types: string[];
  token_endpoint_auth_method: string;
  backchannel_logout_uri: string | null;
  first_party: boolean;
  registered_via: RegisteredVia;
  /** Resource-server scopes this (machine) client may obtain with client_credentials. */
  api_scopes: string[];
  created_at: Date;
  updated_at: Date;
}

export interface ClientRules {
  /** In production, http redirect URIs on loopback are allowed only for public (native) clients (RFC 8252 §7.3). */
  production?: boolean | undefined;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);
const PRIVATE_USE_SCHEME = /^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+$/;

/** The names of the URI fields in messages (catalogue keys). */
export type UriField = 'resource' | 'redirect_uri' | 'post_logout_redirect_uri' | 'backchannel_logout_uri' | 'jwks_uri' | 'request_uri' | 'logo_uri' | 'policy_uri' | 'tos_uri' | 'client_uri';
const fieldName = (field: UriField) => ({ key: `client.field.${field}` as const });

function parseUrl(value: string, field: UriField, code = 'invalid_redirect_uri'): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new DomainError(code, 'client.error.not_absolute', 400, { field: fieldName(field), value });
  }
  if (url.hash || value.includes('#')) throw new DomainError(code, 'client.error.fragment', 400, { field: fieldName(field), value });
  return url;
}

/**
 * A redirect URI must be absolute, without a fragment, and https — except http on loopback (RFC 8252 §7.3;
 * in production only for public clients) or a private-use scheme in reverse-domain form for native apps
 * (RFC 8252 §7.1).
 */
export function validateRedirectUri(value: string, field: 'redirect_uri' | 'post_logout_redirect_uri' = 'redirect_uri', options: { allowHttpLoopback?: boolean } = {}): string {
  const url = parseUrl(value, field);
  const scheme = url.protocol.slice(0, -1);
  const allowLoopback = options.allowHttpLoopback ?? true;
  if (scheme === 'https' && url.hostname) return value;
  if (scheme === 'http' && LOOPBACK_HOSTS.has(url.hostname) && allowLoopback) return value;
  if (PRIVATE_USE_SCHEME.test(scheme) && !['http', 'https'].includes(scheme)) return value;
  throw new DomainError('invalid_redirect_uri', allowLoopback ? 'client.error.redirect_https' : 'client.error.redirect_https_production', 400, { field: fieldName(field), value });
}

/** A URI the provider calls or fetches (back-channel logout, jwks_uri): https, or http on loopback outside production. */
export function validateServerUri(value: string, field: UriField, rules: ClientRules = {}): string {
  const url = parseUrl(value, field, 'invalid_client_metadata');
  if (url.protocol === 'https:' && url.hostname) return value;
  if (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname) && !rules.production) return value;
  throw new DomainError('invalid_client_metadata', rules.production ? 'client.error.server_https_production' : 'client.error.server_https', 400, { field: fieldName(field), value });
}

export const extraGrantSchema = z.enum(['refresh_token', 'client_credentials']);

function stringArray(value: unknown, field: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new DomainError('invalid_client_metadata', 'client.error.string_array', 400, { field });
  }
  return value as string[];
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new DomainError('invalid_client_metadata', 'client.error.string', 400, { field });
  return value;
}

/** The kind of a client, from its metadata. */
export function clientKind(metadata: Record<string, unknown>): ClientKind {
  if (metadata.token_endpoint_auth_method === 'none') return 'public';
  const grants = (metadata.grant_types as string[] | undefined) ?? ['authorization_code'];
  return grants.includes('client_credentials') && !grants.includes('authorization_code') && !grants.includes('implicit') ? 'machine' : 'web';
}

/**
 * The rules every registration path applies (CLI, operator page, dynamic registration): known grant and
 * response types and authentication methods, redirect URIs as in validateRedirectUri, URIs the provider
 * calls over https. oidc-provider then checks the metadata against its own schema.
 */
export function checkClientMetadata(metadata: Record<string, unknown>, rules: ClientRules = {}): void {
  const grants = metadata.grant_types === undefined ? ['authorization_code'] : stringArray(metadata.grant_types, 'grant_types');
  const responseTypes = metadata.response_types === undefined ? ['code'] : stringArray(metadata.response_types, 'response_types');
  const authMethod = optionalString(metadata.token_endpoint_auth_method, 'token_endpoint_auth_method') ?? 'client_secret_basic';

  for (const grant of grants) {
    if (!(GRANT_TYPES as readonly string[]).includes(grant)) {
      throw new DomainError('invalid_grant_type', 'client.error.unknown_grant', 400, { grant, allowed: GRANT_TYPES.join(', ') });
    }
  }
  for (const type of responseTypes) {
    if (!(RESPONSE_TYPES as readonly string[]).includes(type)) {
      throw new DomainError('invalid_client_metadata', 'client.error.unknown_response_type', 400, { type, allowed: RESPONSE_TYPES.map((t) => `"${t}"`).join(', ') });
    }
    const grant = type === 'code' ? 'authorization_code' : 'implicit';
    if (!grants.includes(grant)) throw new DomainError('invalid_client_metadata', 'client.error.response_type_grant', 400, { type, grant });
  }
  if (grants.includes('implicit') && !responseTypes.some((t) => t !== 'code')) {
    throw new DomainError('invalid_grant_type', 'client.error.implicit_response_type');
  }
  if (!(AUTH_METHODS as readonly string[]).includes(authMethod)) {
    throw new DomainError('invalid_client_metadata', 'client.error.unknown_auth_method', 400, { method: authMethod, allowed: AUTH_METHODS.join(', ') });
  }
  const isPublic = authMethod === 'none';
  if (isPublic && grants.includes('client_credentials')) {
    throw new DomainError('invalid_grant_type', 'client.error.public_client_credentials');
  }
  if (grants.includes('refresh_token') && !grants.includes('authorization_code')) {
    throw new DomainError('invalid_grant_type', 'client.error.refresh_needs_code');
  }
  if (authMethod === 'private_key_jwt' && metadata.jwks === undefined && metadata.jwks_uri === undefined) {
    throw new DomainError('invalid_client_metadata', 'client.error.private_key_jwt_keys');
  }
  const jwksUri = optionalString(metadata.jwks_uri, 'jwks_uri');
  if (jwksUri) validateServerUri(jwksUri, 'jwks_uri', rules);

  for (const field of DISPLAY_URIS) {
    const uri = optionalString(metadata[field], field);
    if (uri) validateServerUri(uri, field, rules);
  }
  const requestUris = stringArray(metadata.request_uris, 'request_uris');
  if (requestUris.length > MAX_REQUEST_URIS) throw new DomainError('invalid_client_metadata', 'client.error.too_many_request_uris', 400, { max: MAX_REQUEST_URIS });
  // The provider fetches these (request-objects.ts): the same rules as every URI it calls.
  // A fragment may carry a hash of the file's content (OpenID Connect Registration 2); it is not fetched.
  for (const uri of requestUris) validateServerUri(uri.split('#')[0]!, 'request_uri', rules);

  const redirectUris = stringArray(metadata.redirect_uris, 'redirect_uris');
  const interactive = grants.includes('authorization_code') || grants.includes('implicit') || responseTypes.length > 0;
  if (interactive) {
    if (!redirectUris.length) throw new DomainError('invalid_redirect_uri', 'client.error.redirect_required');
    const allowHttpLoopback = !rules.production || isPublic;
    for (const uri of redirectUris) validateRedirectUri(uri, 'redirect_uri', { allowHttpLoopback });
    for (const uri of stringArray(metadata.post_logout_redirect_uris, 'post_logout_redirect_uris')) {
      validateRedirectUri(uri, 'post_logout_redirect_uri', { allowHttpLoopback });
    }
  } else if (redirectUris.length) {
    throw new DomainError('invalid_redirect_uri', 'client.error.machine_redirect');
  }
  const backchannel = optionalString(metadata.backchannel_logout_uri, 'backchannel_logout_uri');
  if (backchannel) validateServerUri(backchannel, 'backchannel_logout_uri', rules);
  const alg = optionalString(metadata.id_token_signed_response_alg, 'id_token_signed_response_alg');
  if (alg && !(ID_TOKEN_ALGS as readonly string[]).includes(alg)) {
    throw new DomainError('invalid_client_metadata', 'client.error.id_token_alg', 400, { first: ID_TOKEN_ALGS[0], second: ID_TOKEN_ALGS[1], alg });
  }
}

/** Native apps (custom schemes, or a public client on loopback) are "native" for oidc-provider; the rest "web". */
function applicationType(redirectUris: string[], isPublic: boolean): 'web' | 'native' {
  const native = redirectUris.some((u) => {
    const url = new URL(u);
    return !['http:', 'https:'].includes(url.protocol) || (isPublic && url.protocol === 'http:');
  });
  return native ? 'native' : 'web';
}

export interface CreateClientInput {
  name: string;
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  firstParty?: boolean;
  /** A public client: no secret, PKCE required. */
  public?: boolean;
  /** A machine client: client_credentials only, no redirect URIs. */
  machine?: boolean;
  grants?: string[];
  /** client_secret_basic (default), client_secret_post or private_key_jwt (then jwks or jwksUri). */
  authMethod?: string | undefined;
  jwks?: unknown;
  jwksUri?: string | undefined;
  backchannelLogoutUri?: string | undefined;
  /** RS256 (default) or ES256. */
  idTokenAlg?: string | undefined;
  /** For machine clients: the resource-server scopes it may obtain with client_credentials (space-separated). */
  scope?: string | undefined;
}

export type CreatedClient = {
  client_id: string;
  client_secret?: string;
};

export async function createClient(
  db: Db,
  secrets: Secrets,
  input: CreateClientInput,
  options: ClientRules & { via?: RegisteredVia } = {},
): Promise<CreatedClient> {
  const name = z.string().trim().min(1).max(200).safeParse(input.name);
  if (!name.success) throw new DomainError('invalid_name', 'client.error.name');
  if (input.public && input.machine) throw new DomainError('invalid_client_metadata', 'client.error.public_and_machine');

  const grants = new Set<string>(input.machine ? ['client_credentials'] : ['authorization_code']);
  for (const g of input.grants ?? []) {
    const parsed = extraGrantSchema.safeParse(g);
    if (!parsed.success) throw new DomainError('invalid_grant_type', 'client.error.unknown_grant', 400, { grant: g, allowed: 'refresh_token, client_credentials' });
    grants.add(parsed.data);
  }
  const redirectUris = input.redirectUris ?? [];
  if (!input.machine && !redirectUris.length) throw new DomainError('invalid_redirect_uri', 'client.error.redirect_option_required');

  let authMethod = input.public ? 'none' : (input.authMethod ?? 'client_secret_basic');
  if (input.public && input.authMethod && input.authMethod !== 'none') {
    throw new DomainError('invalid_client_metadata', 'client.error.public_auth_method');
  }
  if (!input.public && authMethod === 'none') throw new DomainError('invalid_client_metadata', 'client.error.use_public');
  authMethod = String(authMethod);

  let jwks: unknown;
  if (input.jwks !== undefined) {
    jwks = typeof input.jwks === 'string' ? parseJson(input.jwks, 'jwks') : input.jwks;
    const keys = (jwks as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys) || !keys.length || keys.some((k) => typeof k !== 'object' || k === null || 'd' in k)) {
      throw new DomainError('invalid_client_metadata', 'client.error.jwks');
    }
  }

  const metadata: ClientMetadata = {
    client_id: newClientId(),
    client_name: name.data,
    application_type: input.machine ? 'web' : applicationTypeSafe(redirectUris, Boolean(input.public)),
    redirect_uris: input.machine ? [] : redirectUris,
    post_logout_redirect_uris: input.machine ? [] : (input.postLogoutRedirectUris ?? []),
    grant_types: [...grants],
    response_types: input.machine ? [] : ['code'],
    token_endpoint_auth_method: authMethod,
    ...(jwks !== undefined ? { jwks } : {}),
    ...(input.jwksUri ? { jwks_uri: input.jwksUri } : {}),
    ...(input.backchannelLogoutUri ? { backchannel_logout_uri: input.backchannelLogoutUri, backchannel_logout_session_required: true } : {}),
    ...(input.idTokenAlg ? { id_token_signed_response_alg: input.idTokenAlg } : {}),
    ...(SECRET_AUTH_METHODS.has(authMethod) ? { client_secret: randomToken(32) } : {}),
  };
  checkClientMetadata(metadata, options);
  if (input.scope !== undefined && !input.machine) throw new DomainError('invalid_scope', 'client.error.scope_machine_only');
  const apiScopes = input.scope === undefined ? [] : normaliseScope(input.scope);
  if (input.machine && !apiScopes.length) throw new DomainError('invalid_scope', 'client.error.machine_scope_required');
  await saveClientMetadata(db, secrets, metadata, { firstParty: Boolean(input.firstParty), via: options.via ?? 'cli', apiScopes });
  return { client_id: metadata.client_id, ...(metadata.client_secret ? { client_secret: metadata.client_secret } : {}) };
}

/** A new client id: 22 URL-safe characters, never starting with "-" (which command lines take for an option). */
export function newClientId(): string {
  for (;;) {
    const id = randomToken(16);
    if (/^[A-Za-z0-9]/.test(id)) return id;
  }
}

/** applicationType, but bad URIs are left for checkClientMetadata to report clearly. */
function applicationTypeSafe(redirectUris: string[], isPublic: boolean): 'web' | 'native' {
  try {
    return applicationType(redirectUris, isPublic);
  } catch {
    return 'web';
  }
}

function parseJson(value: string, field: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    throw new DomainError('invalid_client_metadata', 'client.error.json', 400, { field });
  }
}

function normaliseScope(scope: string): string[] {
  const scopes = scope.split(/[\s,]+/).filter(Boolean);
  for (const s of scopes) {
    if (!/^[\x21\x23-\x5b\x5d-\x7e]{1,100}$/.test(s)) throw new DomainError('invalid_scope', 'client.error.scope_invalid', 400, { scope: s });
  }
  return [...new Set(scopes)];
}

export async function saveClientMetadata(
  db: Db,
  secrets: Secrets,
  metadata: ClientMetadata,
  options: { firstParty?: boolean; via?: RegisteredVia; apiScopes?: string[] } = {},
): Promise<void> {
  const { client_secret: secret, ...rest } = metadata;
  const row = {
    client_id: metadata.client_id,
    metadata: JSON.stringify(rest),
    secret_encrypted: secret ? secrets.encrypt(secret, `client:${metadata.client_id}`) : null,
    updated_at: new Date(),
  };
  await db('oidc_clients')
    .insert({ ...row, first_party: Boolean(options.firstParty), registered_via: options.via ?? 'cli', api_scopes: JSON.stringify(options.apiScopes ?? []) })
    .onConflict('client_id')
    .merge(['metadata', 'secret_encrypted', 'updated_at']);
  // The trigger's notification follows; this instance need not wait for it (a rotated secret, at once).
  clientCacheFor(db)?.changed(metadata.client_id);
}

/** What oidc-provider and the sign-in need of a client row on (nearly) every request. */
interface ClientEssentials {
  metadata: ClientMetadata;
  firstParty: boolean;
}

function loadClientEssentials(db: Db, secrets: Secrets, clientId: string): Promise<ClientEssentials | undefined> {
  // Read on every oidc-provider request that names a client: from memory while client changes are heard
  // (client-cache.ts), otherwise a prepared statement.
  const load = async () => {
    const [row] = await fastQuery<{ metadata: ClientMetadata; secret_encrypted: string | null; first_party: boolean }>(
      db,
      'oidc_clients_find',
      'SELECT metadata, secret_encrypted, first_party FROM oidc_clients WHERE client_id = $1',
      [clientId],
    );
    if (!row) return undefined;
    const metadata = {
      ...row.metadata,
      client_id: clientId,
      ...(row.secret_encrypted ? { client_secret: secrets.decrypt(row.secret_encrypted, `client:${clientId}`) } : {}),
    };
    return { metadata, firstParty: Boolean(row.first_party) };
  };
  const cache = clientCacheFor<ClientEssentials>(db);
  return cache ? cache.get(clientId, load) : load();
}

export async function findClientMetadata(db: Db, secrets: Secrets, clientId: string): Promise<ClientMetadata | undefined> {
  const found = await loadClientEssentials(db, secrets, clientId);
  // A copy: callers (oidc-provider among them) may change what they get.
  return found && { ...found.metadata };
}

/** The account console: the one client defined in code (see console/session.ts). */
export const CONSOLE_CLIENT_ID = 'account-console';
/** Clients defined in code are first party; the rest say so in their row. */
const BUILT_IN_FIRST_PARTY = new Set([CONSOLE_CLIENT_ID]);

export async function isFirstPartyClient(db: Db, secrets: Secrets, clientId: string): Promise<boolean> {
  if (BUILT_IN_FIRST_PARTY.has(clientId)) return true;
  return Boolean((await loadClientEssentials(db, secrets, clientId))?.firstParty);
}

interface ClientRow {
  client_id: string;
  metadata: ClientMetadata;
  first_party: boolean;
  registered_via: RegisteredVia;
  api_scopes: string[];
  created_at: Date;
  updated_at: Date;
}

function summary(r: ClientRow): ClientSummary {
  return {
    client_id: r.client_id,
    client_name: (r.metadata.client_name as string | undefined) ?? null,
    kind: clientKind(r.metadata),
    redirect_uris: (r.metadata.redirect_uris as string[] | undefined) ?? [],
    post_logout_redirect_uris: (r.metadata.post_logout_redirect_uris as string[] | undefined) ?? [],
    grant_types: (r.metadata.grant_types as string[] | undefined) ?? ['authorization_code'],
    token_endpoint_auth_method: (r.metadata.token_endpoint_auth_method as string | undefined) ?? 'client_secret_basic',
    backchannel_logout_uri: (r.metadata.backchannel_logout_uri as string | undefined) ?? null,
    first_party: r.first_party,
    registered_via: r.registered_via,
    api_scopes: r.api_scopes,
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

export async function listClients(db: Db): Promise<ClientSummary[]> {
  const rows = await db('oidc_clients').orderBy([{ column: 'created_at' }, { column: 'client_id' }]).select<ClientRow[]>();
  return rows.map(summary);
}

export async function getClient(db: Db, clientId: string): Promise<ClientSummary> {
  const row = await db('oidc_clients').where({ client_id: clientId }).first<ClientRow | undefined>();
  if (!row) throw new DomainError('unknown_client', 'client.error.unknown', 404, { client_id: clientId });
  return summary(row);
}

/** Replaces a client's redirect and post-logout redirect URIs (same rules as at registration). */
export async function updateClientUris(
  db: Db,
  secrets: Secrets,
  clientId: string,
  uris: { redirectUris: string[]; postLogoutRedirectUris: string[] },
  rules: ClientRules = {},
): Promise<ClientSummary> {
  const metadata = await findClientMetadata(db, secrets, clientId);
  if (!metadata) throw new DomainError('unknown_client', 'client.error.unknown', 404, { client_id: clientId });
  if (clientKind(metadata) === 'machine' && (uris.redirectUris.length || uris.postLogoutRedirectUris.length)) {
    throw new DomainError('invalid_redirect_uri', 'client.error.machine_redirect');
  }
  const updated: ClientMetadata = {
    ...metadata,
    redirect_uris: uris.redirectUris,
    post_logout_redirect_uris: uris.postLogoutRedirectUris,
  };
  if (clientKind(metadata) !== 'machine') updated.application_type = applicationTypeSafe(uris.redirectUris, clientKind(metadata) === 'public');
  checkClientMetadata(updated, rules);
  await saveClientMetadata(db, secrets, updated);
  return getClient(db, clientId);
}

/** Gives a client a new secret (the old one stops working at once). */
export async function rotateClientSecret(db: Db, secrets: Secrets, clientId: string): Promise<Required<CreatedClient>> {
  const metadata = await findClientMetadata(db, secrets, clientId);
  if (!metadata) throw new DomainError('unknown_client', 'client.error.unknown', 404, { client_id: clientId });
  const method = (metadata.token_endpoint_auth_method as string | undefined) ?? 'client_secret_basic';
  if (!SECRET_AUTH_METHODS.has(method)) {
    throw new DomainError('no_secret', 'client.error.no_secret', 400, { client_id: clientId, method });
  }
  const secret = randomToken(32);
  await saveClientMetadata(db, secrets, { ...metadata, client_secret: secret });
  return { client_id: clientId, client_secret: secret };
}

export async function deleteClientRow(db: Db, clientId: string): Promise<boolean> {
  const deleted = await db.transaction(async (trx) => {
    const deleted = affectedRows(await trx('oidc_clients').where({ client_id: clientId }).delete());
    // Codes, tokens and grants issued to the client go with it.
    await trx('oidc_payloads').whereRaw("payload->>'clientId' = ?", [clientId]).delete();
    return deleted > 0;
  });
  clientCacheFor(db)?.changed(clientId);
  return deleted;
}

export async function deleteClient(db: Db, clientId: string): Promise<void> {
  if (!(await deleteClientRow(db, clientId))) throw new DomainError('unknown_client', 'client.error.unknown', 404, { client_id: clientId });
}
