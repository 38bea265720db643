// Consent a user gave a client that is not first-party: remembered per user and client (so a new session
// does not ask again) until the user or an operator revokes it. Revoking also ends the oidc-provider grants
// of that user and client, with every token issued under them.
import { affectedRows, type Db } from '../db/index.js';
import { DomainError } from '../errors.js';

export interface ConsentScopes {
  scopes: string[];
  claims: string[];
  /** Resource indicator → scopes of that resource server. */
  resource_scopes: Record<string, string[]>;
}

export interface Consent extends ConsentScopes {
  user_id: string;
  client_id: string;
  granted_at: Date;
  updated_at: Date;
}

const union = (a: string[], b: string[]) => [...new Set([...a, ...b])];

export async function findConsent(db: Db, userId: string, clientId: string): Promise<Consent | undefined> {
  return db<Consent>('consents').where({ user_id: userId, client_id: clientId }).first();
}

/** Adds what the user just allowed to what they allowed before. */
export async function rememberConsent(db: Db, userId: string, clientId: string, allowed: ConsentScopes): Promise<Consent> {
  return db.transaction(async (trx) => {
    const existing = await trx<Consent>('consents').where({ user_id: userId, client_id: clientId }).forUpdate().first();
    const resources: Record<string, string[]> = { ...(existing?.resource_scopes ?? {}) };
    for (const [indicator, scopes] of Object.entries(allowed.resource_scopes)) resources[indicator] = union(resources[indicator] ?? [], scopes);
    const row = {
      user_id: userId,
      client_id: clientId,
      scopes: JSON.stringify(union(existing?.scopes ?? [], allowed.scopes)),
      claims: JSON.stringify(union(existing?.claims ?? [], allowed.claims)),
      resource_scopes: JSON.stringify(resources),
      updated_at: new Date(),
    };
    const [saved] = await trx('consents').insert(row).onConflict(['user_id', 'client_id']).merge(['scopes', 'claims', 'resource_scopes', 'updated_at']).returning('*');
    return saved as Consent;
  });
}

export interface ConsentListing extends Consent {
  client_name: string | null;
}

export async function listConsents(db: Db, userId: string): Promise<ConsentListing[]> {
  const rows = await db('consents')
    .join('oidc_clients', 'oidc_clients.client_id', 'consents.client_id')
    .where('consents.user_id', userId)
    .orderBy('consents.granted_at')
    .select<(Consent & { metadata: Record<string, unknown> })[]>('consents.*', 'oidc_clients.metadata');
  return rows.map(({ metadata, ...consent }) => ({ ...consent, client_name: (metadata.client_name as string | undefined) ?? null }));
}

/**
 * Forgets the consent and revokes the user's grants for the client (and so their refresh and access
 * tokens); the next sign-in at that client asks again. Returns how many grants were revoked.
 */
export async function revokeConsent(db: Db, userId: string, clientId: string): Promise<{ grants_revoked: number }> {
  return db.transaction(async (trx) => {
    const forgotten = affectedRows(await trx('consents').where({ user_id: userId, client_id: clientId }).delete());
    const grants = await trx('oidc_payloads')
      .where({ model: 'Grant' })
      .whereRaw("payload->>'accountId' = ? AND payload->>'clientId' = ?", [userId, clientId])
      .pluck<string[]>('id');
    if (!forgotten && !grants.length) throw new DomainError('unknown_consent', 'consent.error.none', 404, { client_id: clientId });
    if (grants.length) {
      await trx('oidc_payloads').whereIn('grant_id', grants).delete();
      await trx('oidc_payloads').where({ model: 'Grant' }).whereIn('id', grants).delete();
    }
    return { grants_revoked: grants.length };
  });
}
