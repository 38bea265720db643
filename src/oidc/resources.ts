// Resource servers: APIs that accept JWT access tokens (RFC 9068). A client names one with a resource
// indicator (RFC 8707); the access token then carries it as `aud` and only that API's scopes, and the API
// verifies it offline against the provider's JWKS.
import { z } from 'zod';
import { affectedRows, type Db, fastQuery } from '../db/index.js';
import { DomainError, isUniqueViolation } from '../errors.js';
import { validateServerUri, type ClientRules } from './clients.js';
import { MAX_SIGNED_TOKEN_LIFETIME } from './keys.js';

/** Scopes of the provider itself: a resource server cannot reuse them. */
const OIDC_SCOPES = new Set(['openid', 'offline_access', 'email', 'profile', 'customer', 'address', 'phone']);

export interface ResourceServer {
  identifier: string;
  name: string;
  scopes: string[];
  access_token_ttl: number;
  created_at: Date;
}

export const DEFAULT_ACCESS_TOKEN_TTL = 60 * 60;

const scopeSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9:._\-/]{0,99}$/);

export interface CreateResourceServerInput {
  identifier: string;
  scopes: string[];
  name?: string | undefined;
  accessTokenTtl?: number | undefined;
}

export async function createResourceServer(db: Db, input: CreateResourceServerInput, rules: ClientRules = {}): Promise<ResourceServer> {
  const identifier = validateServerUri(input.identifier.trim(), 'resource', rules);
  if (new URL(identifier).search) throw new DomainError('invalid_resource', 'resource.error.query');
  const scopes = [...new Set(input.scopes.flatMap((s) => s.split(/[\s,]+/)).filter(Boolean))];
  if (!scopes.length) throw new DomainError('invalid_scope', 'resource.error.scope_required');
  for (const scope of scopes) {
    if (!scopeSchema.safeParse(scope).success) throw new DomainError('invalid_scope', 'resource.error.scope_invalid', 400, { scope });
    if (OIDC_SCOPES.has(scope)) throw new DomainError('invalid_scope', 'resource.error.scope_oidc', 400, { scope });
  }
  const ttl = input.accessTokenTtl ?? DEFAULT_ACCESS_TOKEN_TTL;
  if (!Number.isInteger(ttl) || ttl < 60 || ttl > MAX_SIGNED_TOKEN_LIFETIME) {
    throw new DomainError('invalid_ttl', 'resource.error.ttl', 400, { hours: MAX_SIGNED_TOKEN_LIFETIME / 3600 });
  }
  const name = (input.name ?? new URL(identifier).host).trim();
  if (!name || name.length > 200) throw new DomainError('invalid_name', 'resource.error.name');
  try {
    const [row] = await db<ResourceServer>('resource_servers')
      .insert({ identifier, name, scopes: JSON.stringify(scopes) as unknown as string[], access_token_ttl: ttl })
      .returning('*');
    return row!;
  } catch (error) {
    if (isUniqueViolation(error)) throw new DomainError('resource_exists', 'resource.error.exists', 409, { resource: identifier });
    throw error;
  }
}

export async function findResourceServer(db: Db, identifier: string): Promise<ResourceServer | undefined> {
  const [server] = await fastQuery<ResourceServer>(
    db,
    'resource_servers_find',
    'SELECT identifier, name, scopes, access_token_ttl, created_at FROM resource_servers WHERE identifier = $1',
    [identifier],
  );
  return server;
}

/**
 * A resource server and the API scopes an operator registered on a (machine) client, in one query: what
 * every client_credentials grant with a resource indicator needs. `apiScopes` is empty for an unknown client.
 */
export async function findResourceServerForClient(db: Db, identifier: string, clientId: string): Promise<(ResourceServer & { apiScopes: string[] }) | undefined> {
  const [row] = await fastQuery<ResourceServer & { api_scopes: string[] | null }>(
    db,
    'resource_servers_find_for_client',
    `SELECT rs.identifier, rs.name, rs.scopes, rs.access_token_ttl, rs.created_at, c.api_scopes
     FROM resource_servers rs LEFT JOIN oidc_clients c ON c.client_id = $2
     WHERE rs.identifier = $1`,
    [identifier, clientId],
  );
  if (!row) return undefined;
  const { api_scopes: apiScopes, ...server } = row;
  return { ...server, apiScopes: apiScopes ?? [] };
}

export async function listResourceServers(db: Db): Promise<ResourceServer[]> {
  return db<ResourceServer>('resource_servers').orderBy('created_at');
}

export async function deleteResourceServer(db: Db, identifier: string): Promise<void> {
  const deleted = affectedRows(await db('resource_servers').where({ identifier }).delete());
  if (!deleted) throw new DomainError('unknown_resource', 'resource.error.unknown', 404, { resource: identifier });
}
