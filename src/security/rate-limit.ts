// Rate limits on every secret check, stored in PostgreSQL so they hold across instances and restarts.
// rate-limiter-flexible does the counting; a small shim lets it run its SQL through knex (pg or PGlite).
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { Db } from '../db/index.js';

export interface LimitRule {
  /** Failures allowed in the window. */
  points: number;
  /** Window length in seconds. */
  duration: number;
  /** Once exceeded, refuse for this many seconds. */
  blockDuration?: number;
}

export class Throttled extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super('throttled');
  }
}

/** rate-limiter-flexible speaks node-postgres' `query({text, values})`; translate `$n` to knex bindings. */
function knexQueryShim(db: Db) {
  return {
    async query(q: { text: string; values?: unknown[] }) {
      const bindings: Record<string, unknown> = {};
      (q.values ?? []).forEach((v, i) => (bindings[`p${i + 1}`] = v));
      const sql = q.text.replace(/\$(\d+)/g, (_m, n: string) => `:p${n}`);
      const result = (await db.raw(sql, bindings)) as { rows: unknown[]; rowCount?: number; affectedRows?: number };
      // PGlite reports rowCount 0 for SELECT; node-postgres counts rows. Count returned rows first.
      return { rows: result.rows, rowCount: result.rows.length || result.rowCount || result.affectedRows || 0 };
    },
  };
}

export class Limiter {
  private readonly limiter: RateLimiterPostgres;

  constructor(db: Db, name: string, rule: LimitRule) {
    this.limiter = new RateLimiterPostgres({
      storeClient: knexQueryShim(db),
      storeType: 'pool',
      tableName: 'rate_limits',
      tableCreated: true,
      keyPrefix: name,
      points: rule.points,
      duration: rule.duration,
      blockDuration: rule.blockDuration ?? 0,
    });
  }

  /** Throws Throttled when the key has no attempts left. */
  async check(key: string): Promise<void> {
    const res = await this.limiter.get(key);
    if (res && res.remainingPoints <= 0 && res.msBeforeNext > 0) throw new Throttled(Math.ceil(res.msBeforeNext / 1000));
  }

  /** Counts one attempt; throws Throttled when the key had no attempts left. */
  async consume(key: string): Promise<void> {
    try {
      await this.limiter.consume(key, 1);
    } catch (error) {
      if (error instanceof RateLimiterRes) throw new Throttled(Math.ceil(error.msBeforeNext / 1000));
      throw error;
    }
  }

  /** Gives back one point (e.g. a code whose email could not be delivered should not count). */
  async refund(key: string): Promise<void> {
    await this.limiter.reward(key, 1);
  }

  async reset(key: string): Promise<void> {
    await this.limiter.delete(key);
  }
}
