// Rate limits on every secret check, stored in PostgreSQL so they hold across instances and restarts.
// rate-limiter-flexible does the counting; a small shim lets it run its SQL through knex (pg or PGlite).
import { createHash } from 'node:crypto';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import { type Db, fastExecute } from '../db/index.js';

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

/** Keys go into a varchar(255) column: long ones (typed identifiers, forwarded addresses) are hashed. */
function storeKey(key: string): string {
  return key.length <= 100 ? key : `sha256:${createHash('sha256').update(key).digest('base64url')}`;
}

/** For counting a failure whose answer is already decided: the next attempt sees the limit. */
export function ignoreThrottled(error: unknown): void {
  if (!(error instanceof Throttled)) throw error;
}

/**
 * rate-limiter-flexible speaks node-postgres' `query({name, text, values})`: run it as a prepared statement
 * (fastQuery) on the knex pool, pg or PGlite. Every sign-in counts its attempts, so this is a hot path.
 */
function knexQueryShim(db: Db) {
  const names = new Map<string, string>();
  // One prepared-statement name per text (the library reuses names across texts it builds differently).
  const nameOf = (text: string) => {
    let name = names.get(text);
    if (!name) names.set(text, (name = `rl_${createHash('sha256').update(text).digest('hex').slice(0, 16)}`));
    return name;
  };
  return {
    async query(q: { text: string; values?: unknown[] }) {
      // PGlite reports rowCount 0 for SELECT; node-postgres counts rows. Count returned rows first.
      const { rows, rowCount } = await fastExecute(db, nameOf(q.text), q.text, q.values ?? []);
      return { rows, rowCount: rows.length || rowCount };
    },
  };
}

/** Called with the limit's name whenever it refuses a request (metrics). */
export type OnThrottle = (name: string) => void;

function store(db: Db, keyPrefix: string, points: number, duration: number, blockDuration = 0): RateLimiterPostgres {
  return new RateLimiterPostgres({
    storeClient: knexQueryShim(db),
    storeType: 'pool',
    tableName: 'rate_limits',
    tableCreated: true,
    keyPrefix,
    points,
    duration,
    blockDuration,
  });
}

export class Limiter {
  private readonly limiter: RateLimiterPostgres;

  constructor(
    db: Db,
    readonly name: string,
    readonly rule: LimitRule,
    private readonly onThrottle: OnThrottle = () => undefined,
  ) {
    this.limiter = store(db, name, rule.points, rule.duration, rule.blockDuration);
  }

  private throttled(msBeforeNext: number): Throttled {
    this.onThrottle(this.name);
    return new Throttled(Math.max(1, Math.ceil(msBeforeNext / 1000)));
  }

  /** Throws Throttled when the key has no attempts left. */
  async check(key: string): Promise<void> {
    const res = await this.limiter.get(storeKey(key));
    if (res && res.remainingPoints <= 0 && res.msBeforeNext > 0) throw this.throttled(res.msBeforeNext);
  }

  /**
   * Counts one attempt; throws Throttled when the key had no attempts left. The count is one atomic
   * upsert in the database, so parallel attempts each count.
   */
  async consume(key: string): Promise<void> {
    try {
      await this.limiter.consume(storeKey(key), 1);
    } catch (error) {
      if (error instanceof RateLimiterRes) throw this.throttled(error.msBeforeNext);
      throw error;
    }
  }

  /** Gives back one point (e.g. a code whose email could not be delivered should not count). */
  async refund(key: string): Promise<void> {
    await this.limiter.reward(storeKey(key), 1);
  }

  async reset(key: string): Promise<void> {
    await this.limiter.delete(storeKey(key));
  }
}

export interface DelayRule {
  /** Attempts in the window that pass without delay. */
  free: number;
  /** Window length in seconds (counted from the first attempt). */
  window: number;
  /** Delay after the first attempt beyond `free`, in seconds; it doubles with each further one. */
  baseDelay: number;
  /** The delay never grows beyond this (seconds): nobody is locked out for longer. */
  maxDelay: number;
}

/**
 * Progressive delays instead of a lock-out: the first `free` attempts in the window pass; after that,
 * one attempt is admitted per delay, and the delay doubles from `baseDelay` up to `maxDelay`. Both steps
 * are atomic upserts in the database (shared by all instances), so parallel attempts cannot slip through
 * together: of attempts arriving within one delay, only the first is admitted.
 */
export class ProgressiveDelay {
  private readonly attempts: RateLimiterPostgres;
  private readonly gate: RateLimiterPostgres;

  constructor(
    db: Db,
    readonly name: string,
    readonly rule: DelayRule,
    private readonly onThrottle: OnThrottle = () => undefined,
  ) {
    this.attempts = store(db, `${name}-n`, Number.MAX_SAFE_INTEGER, rule.window);
    this.gate = store(db, `${name}-gate`, 1, rule.maxDelay);
  }

  /** The delay that follows the n-th attempt of a window (0 while attempts are free). */
  delayAfter(n: number): number {
    if (n <= this.rule.free) return 0;
    return Math.min(this.rule.maxDelay, this.rule.baseDelay * 2 ** (n - this.rule.free - 1));
  }

  /** Admits one attempt (counting it) or throws Throttled with the time until the next one is admitted. */
  async admit(rawKey: string): Promise<void> {
    const key = storeKey(rawKey);
    const { consumedPoints } = await this.attempts.consume(key, 1);
    const delay = this.delayAfter(consumedPoints);
    if (delay === 0) return;
    try {
      await this.gate.consume(key, 1, { customDuration: delay });
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      await this.attempts.reward(key, 1); // a refused attempt does not make the delay grow
      this.onThrottle(this.name);
      throw new Throttled(Math.max(1, Math.ceil(error.msBeforeNext / 1000)));
    }
  }

  /** Takes back an admitted attempt that turned out to be legitimate (the right password). */
  async refund(key: string): Promise<void> {
    await this.attempts.reward(storeKey(key), 1);
  }

  async reset(key: string): Promise<void> {
    await Promise.all([this.attempts.delete(storeKey(key)), this.gate.delete(storeKey(key))]);
  }
}
