// Registered OIDC clients (relying-party apps). Metadata is stored as oidc-provider expects it; the
// client secret is encrypted at rest (oidc-provider needs it in clear to check client_secret_* auth).
import { z } from 'zod';
import { affectedRows, type Db } from '../db/index.js';
import { DomainError } from '../errors.js';
import { randomToken, type Secrets } from '../security/crypto.js';

export type ClientMetadata = Record<string, unknown> & { client_id: string; client_secret?: string };

export interface ClientSummary {
  client_id: string;
  client_name: string | null;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  grant_types: string[];
  token_endpoint_auth_method: string;
  first_party: boolean;
  created_at: Date;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * A redirect URI must be absolute, without a fragment, and https — except loopback (RFC 8252 §7.3) or a
 * private-use scheme in reverse-domain form for native apps (RFC 8252 §7.1).
 */
export function validateRedirectUri(value: string, field = 'redirect URI'): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new DomainError('invalid_redirect_uri', `The ${field} "${value}" is not an absolute URL.`);
  }
  if (url.hash || value.includes('#')) throw new DomainError('invalid_redirect_uri', `The ${field} "${value}" must not contain a fragment (#).`);
  const scheme = url.protocol.slice(0, -1);
  if (scheme === 'https' && url.hostname) return value;
  if (scheme === 'http' && LOOPBACK_HOSTS.has(url.hostname)) return value;
  if (/^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+$/.test(scheme) && !['http', 'https'].includes(scheme)) return value;
  throw new DomainError(
    'invalid_redirect_uri',
    `The ${field} "${value}" must use https (http is allowed only for localhost/127.0.0.1, custom schemes only in reverse-domain form).`,
  );
}

export const extraGrantSchema = z.enum(['refresh_token', 'client_credentials'], 'A grant must be refresh_token or client_credentials.');

export interface CreateClientInput {
  name: string;
  redirectUris: string[];
  postLogoutRedirectUris?: string[];
  firstParty?: boolean;
  public?: boolean;
  grants?: string[];
}

export async function createClient(db: Db, secrets: Secrets, input: CreateClientInput): Promise<{ client_id: string; client_secret?: string }> {
  const name = z.string().trim().min(1).max(200).safeParse(input.name);
  if (!name.success) throw new DomainError('invalid_name', 'A client name of 1 to 200 characters is required.');
  if (!input.redirectUris.length) throw new DomainError('invalid_redirect_uri', 'At least one --redirect-uri is required.');
  const redirectUris = input.redirectUris.map((u) => validateRedirectUri(u));
  const postLogout = (input.postLogoutRedirectUris ?? []).map((u) => validateRedirectUri(u, 'post-logout redirect URI'));
  const grants = new Set<string>(['authorization_code']);
  for (const g of input.grants ?? []) {
    const parsed = extraGrantSchema.safeParse(g);
    if (!parsed.success) throw new DomainError('invalid_grant_type', `Unknown grant "${g}": use refresh_token or client_credentials.`);
    grants.add(parsed.data);
  }
  if (input.public && grants.has('client_credentials')) {
    throw new DomainError('invalid_grant_type', 'A public client cannot use client_credentials.');
  }

  const metadata: ClientMetadata = {
    client_id: randomToken(16),
    client_name: name.data,
    redirect_uris: redirectUris,
    post_logout_redirect_uris: postLogout,
    grant_types: [...grants],
    response_types: ['code'],
    token_endpoint_auth_method: input.public ? 'none' : 'client_secret_basic',
    ...(input.public ? {} : { client_secret: randomToken(32) }),
  };
  await saveClientMetadata(db, secrets, metadata, { firstParty: Boolean(input.firstParty) });
  return { client_id: metadata.client_id, ...(metadata.client_secret ? { client_secret: metadata.client_secret } : {}) };
}

export async function saveClientMetadata(db: Db, secrets: Secrets, metadata: ClientMetadata, options: { firstParty?: boolean } = {}): Promise<void> {
  const { client_secret: secret, ...rest } = metadata;
  const row = {
    client_id: metadata.client_id,
    metadata: JSON.stringify(rest),
    secret_encrypted: secret ? secrets.encrypt(secret, `client:${metadata.client_id}`) : null,
    updated_at: new Date(),
  };
  await db('oidc_clients')
    .insert({ ...row, first_party: Boolean(options.firstParty) })
    .onConflict('client_id')
    .merge(['metadata', 'secret_encrypted', 'updated_at']);
}

export async function findClientMetadata(db: Db, secrets: Secrets, clientId: string): Promise<ClientMetadata | undefined> {
  const row = await db('oidc_clients').where({ client_id: clientId }).first<{ metadata: ClientMetadata; secret_encrypted: string | null } | undefined>();
  if (!row) return undefined;
  return {
    ...row.metadata,
    client_id: clientId,
    ...(row.secret_encrypted ? { client_secret: secrets.decrypt(row.secret_encrypted, `client:${clientId}`) } : {}),
  };
}

export async function isFirstPartyClient(db: Db, clientId: string): Promise<boolean> {
  const row = await db('oidc_clients').where({ client_id: clientId }).first<{ first_party: boolean } | undefined>('first_party');
  return Boolean(row?.first_party);
}

export async function listClients(db: Db): Promise<ClientSummary[]> {
  const rows = await db('oidc_clients').orderBy('created_at').select<{ client_id: string; metadata: ClientMetadata; first_party: boolean; created_at: Date }[]>();
  return rows.map((r) => ({
    client_id: r.client_id,
    client_name: (r.metadata.client_name as string | undefined) ?? null,
    redirect_uris: (r.metadata.redirect_uris as string[] | undefined) ?? [],
    post_logout_redirect_uris: (r.metadata.post_logout_redirect_uris as string[] | undefined) ?? [],
    grant_types: (r.metadata.grant_types as string[] | undefined) ?? ['authorization_code'],
    token_endpoint_auth_method: (r.metadata.token_endpoint_auth_method as string | undefined) ?? 'client_secret_basic',
    first_party: r.first_party,
    created_at: r.created_at,
  }));
}

export async function deleteClientRow(db: Db, clientId: string): Promise<boolean> {
  return db.transaction(async (trx) => {
    const deleted = affectedRows(await trx('oidc_clients').where({ client_id: clientId }).delete());
    // Codes, tokens and grants issued to the client go with it.
    await trx('oidc_payloads').whereRaw("payload->>'clientId' = ?", [clientId]).delete();
    return deleted > 0;
  });
}

export async function deleteClient(db: Db, clientId: string): Promise<void> {
  if (!(await deleteClientRow(db, clientId))) throw new DomainError('unknown_client', `No client with id ${clientId}.`, 404);
}
