// Rate limits on every secret check, stored in PostgreSQL so they hold across instances and restarts.
// rate-limiter-flexible does the counting; a small shim lets it run its SQL through knex (pg or PGlite).
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import { type Db, fastQuery } from '../db/index.js';

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

  constructor(
    db: Db,
    private readonly name: string,
    private readonly rule: LimitRule,
  ) {
    this.limiter = new RateLimiterPostgres({
      storeClient: knexQueryShim(db),
      storeType: 'pool',
      tableName: 'rate_limits',
      tableCreated: true,
      keyPrefix: this.name,
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

  /**
   * check() for several limits in one query. Throws Throttled for the first (in the given order) that has
   * no attempts left; otherwise returns, per limit, whether the key has attempts counted at all.
   */
  static async checkAll(db: Db, checks: [Limiter, string][]): Promise<boolean[]> {
    const keys = checks.map(([limiter, key]) => limiter.storeKey(key));
    const rows = await fastQuery<{ key: string; points: number; expire: number | null }>(
      db,
      'rate_limits_check_all',
      'SELECT key, points, expire FROM rate_limits WHERE key = ANY($1) AND (expire > $2 OR expire IS NULL)',
      [keys, Date.now()],
    );
    const byKey = new Map(rows.map((r) => [r.key, r]));
    const now = Date.now();
    return checks.map(([limiter], i) => {
      const row = byKey.get(keys[i]!);
      if (!row) return false;
      // As rate-limiter-flexible's get() + check(): remaining points and the time to the window's end.
      const remaining = Math.max(limiter.rule.points - Number(row.points), 0);
      const msBeforeNext = row.expire ? Math.max(Number(row.expire) - now, 0) : -1;
      if (remaining <= 0 && msBeforeNext > 0) throw new Throttled(Math.ceil(msBeforeNext / 1000));
      return true;
    });
  }

  /** The row key rate-limiter-flexible uses for `key` (its keyPrefix, a colon, the key). */
  private storeKey(key: string): string {
    return `${this.name}:${key}`;
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
