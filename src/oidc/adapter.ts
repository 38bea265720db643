// oidc-provider's storage adapter on knex: every model (Session, Grant, AuthorizationCode, AccessToken,
// RefreshToken, Interaction, …) lives in `oidc_payloads`; registered clients live in `oidc_clients`.
// The interface follows oidc-provider's example/my_adapter.js.
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { affectedRows, type Db } from '../db/index.js';
import type { Secrets } from '../security/crypto.js';
import { deleteClientRow, findClientMetadata, saveClientMetadata } from './clients.js';

/** oidc-provider's default clock tolerance: records stay readable that much past their expiry. */
const GRACE_MS = 15_000;

interface PayloadRow {
  payload: AdapterPayload;
  consumed_at: Date | null;
}

export class KnexAdapter implements Adapter {
  constructor(
    private readonly db: Db,
    private readonly model: string,
  ) {}

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const expiresAt = expiresIn ? new Date(Date.now() + expiresIn * 1000) : null;
    await this.db('oidc_payloads')
      .insert({
        model: this.model,
        id,
        payload: JSON.stringify(payload),
        grant_id: payload.grantId ?? null,
        user_code: payload.userCode ?? null,
        uid: payload.uid ?? null,
        expires_at: expiresAt,
      })
      .onConflict(['model', 'id'])
      .merge(['payload', 'grant_id', 'user_code', 'uid', 'expires_at']);
  }

  find(id: string): Promise<AdapterPayload | undefined> {
    return this.findWhere({ id });
  }

  findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.findWhere({ uid });
  }

  findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.findWhere({ user_code: userCode });
  }

  async consume(id: string): Promise<void> {
    await this.db('oidc_payloads').where({ model: this.model, id }).update({ consumed_at: new Date() });
  }

  async destroy(id: string): Promise<void> {
    await this.db('oidc_payloads').where({ model: this.model, id }).delete();
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.db('oidc_payloads').where({ model: this.model, grant_id: grantId }).delete();
  }

  private async findWhere(where: Record<string, string>): Promise<AdapterPayload | undefined> {
    const row: PayloadRow | undefined = await this.db('oidc_payloads')
      .select('payload', 'consumed_at')
      .where({ model: this.model, ...where })
      .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', new Date(Date.now() - GRACE_MS)))
      .first();
    if (!row) return undefined;
    return row.consumed_at ? { ...row.payload, consumed: Math.floor(row.consumed_at.getTime() / 1000) } : row.payload;
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
  return (model) => (model === 'Client' ? new ClientAdapter(db, secrets) : new KnexAdapter(db, model));
}

/** Deletes rows that expired (plus the grace period); run periodically by the server. */
export async function deleteExpiredPayloads(db: Db): Promise<number> {
  const cutoff = new Date(Date.now() - GRACE_MS);
  const payloads = affectedRows(await db('oidc_payloads').where('expires_at', '<', cutoff).delete());
  const flows = affectedRows(await db('login_flows').where('expires_at', '<', cutoff).delete());
  return payloads + flows;
}
