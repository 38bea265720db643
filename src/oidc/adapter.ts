// oidc-provider's storage adapter on knex: every model (Session, Grant, AuthorizationCode, AccessToken,
// RefreshToken, Interaction, …) lives in `oidc_payloads`; registered clients live in `oidc_clients`.
// The interface follows oidc-provider's example/my_adapter.js.
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { affectedRows, type Db, fastQuery } from '../db/index.js';
import type { Secrets } from '../security/crypto.js';
import { deleteClientRow, findClientMetadata, saveClientMetadata } from './clients.js';
import { openPayload, sealPayload, storedId } from './payload-ids.js';

/** oidc-provider's default clock tolerance: records stay readable that much past their expiry. */
const GRACE_MS = 15_000;

interface PayloadRow {
  payload: AdapterPayload;
  consumed_at: Date | null;
}

export class KnexAdapter implements Adapter {
  constructor(
    private readonly db: Db,
    private readonly secrets: Secrets,
    private readonly model: string,
  ) {}

  // Every oidc-provider request runs several of these: plain prepared statements (fastQuery), not the
  // query builder. Ids that are bearer secrets are stored as keyed hashes (payload-ids.ts).

  private id(id: string): string {
    return storedId(this.secrets, this.model, id);
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const expiresAt = expiresIn ? new Date(Date.now() + expiresIn * 1000) : null;
    await fastQuery(
      this.db,
      'oidc_payloads_upsert',
      `INSERT INTO oidc_payloads (model, id, payload, grant_id, user_code, uid, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload, grant_id = excluded.grant_id, user_code = excluded.user_code,
         uid = excluded.uid, expires_at = excluded.expires_at`,
      [
        this.model,
        this.id(id),
        JSON.stringify(sealPayload(this.secrets, this.model, id, payload)),
        payload.grantId ?? null,
        payload.userCode ?? null,
        payload.uid ?? null,
        expiresAt,
      ],
    );
  }

  find(id: string): Promise<AdapterPayload | undefined> {
    return this.findWhere('oidc_payloads_find', 'id', this.id(id), id);
  }

  findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.findWhere('oidc_payloads_find_uid', 'uid', uid);
  }

  findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.findWhere('oidc_payloads_find_user_code', 'user_code', userCode);
  }

  async consume(id: string): Promise<void> {
    await fastQuery(this.db, 'oidc_payloads_consume', 'UPDATE oidc_payloads SET consumed_at = $1 WHERE model = $2 AND id = $3', [new Date(), this.model, this.id(id)]);
  }

  async destroy(id: string): Promise<void> {
    await fastQuery(this.db, 'oidc_payloads_destroy', 'DELETE FROM oidc_payloads WHERE model = $1 AND id = $2', [this.model, this.id(id)]);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await fastQuery(this.db, 'oidc_payloads_revoke', 'DELETE FROM oidc_payloads WHERE model = $1 AND grant_id = $2', [this.model, grantId]);
  }

  /** `id`: the id as oidc-provider knows it, when the record is looked up by it. */
  private async findWhere(name: string, column: 'id' | 'uid' | 'user_code', value: string, id?: string): Promise<AdapterPayload | undefined> {
    const [row] = await fastQuery<PayloadRow>(
      this.db,
      name,
      `SELECT payload, consumed_at FROM oidc_payloads WHERE model = $1 AND ${column} = $2 AND (expires_at IS NULL OR expires_at > $3) LIMIT 1`,
      [this.model, value, new Date(Date.now() - GRACE_MS)],
    );
    if (!row) return undefined;
    const payload = openPayload(this.secrets, this.model, row.payload, id);
    return row.consumed_at ? { ...payload, consumed: Math.floor(row.consumed_at.getTime() / 1000) } : payload;
  }
}

/** Clients registered by the CLI, the admin pages or dynamic registration. */
export class ClientAdapter implements Adapter {
  constructor(
    private readonly db: Db,
    private readonly secrets: Secrets,
  ) {}

  async upsert(id: string, payload: AdapterPayload): Promise<void> {
    // Only dynamic registration (RFC 7591/7592) writes clients through the adapter.
    await saveClientMetadata(this.db, this.secrets, { ...payload, client_id: id }, { via: 'dcr' });
  }

  find(id: string): Promise<AdapterPayload | undefined> {
    return findClientMetadata(this.db, this.secrets, id) as Promise<AdapterPayload | undefined>;
  }

  async destroy(id: string): Promise<void> {
    await deleteClientRow(this.db, id);
  }

  async findByUid(): Promise<undefined> {
    return undefined;
  }
  async findByUserCode(): Promise<undefined> {
    return undefined;
  }
  async consume(): Promise<void> {}
  async revokeByGrantId(): Promise<void> {}
}

export function adapterFactory(db: Db, secrets: Secrets): (model: string) => Adapter {
  return (model) => (model === 'Client' ? new ClientAdapter(db, secrets) : new KnexAdapter(db, secrets, model));
}

/** Deletes rows that expired (plus the grace period); run periodically by the server. */
export async function deleteExpiredPayloads(db: Db): Promise<number> {
  const cutoff = new Date(Date.now() - GRACE_MS);
  const payloads = affectedRows(await db('oidc_payloads').where('expires_at', '<', cutoff).delete());
  const flows = affectedRows(await db('login_flows').where('expires_at', '<', cutoff).delete());
  return payloads + flows;
}
