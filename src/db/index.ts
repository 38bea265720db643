// The knex instance: PostgreSQL through pg when DATABASE_URL is set, embedded PGlite otherwise.
import { mkdirSync } from 'node:fs';
import knexPkg, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import pg from 'pg';
import { migrations } from '../../migrations/index.js';
import type { Logger } from '../log.js';

export type Db = Knex;

// node-postgres returns int8 (count(*), bigserial) as strings; PGlite returns numbers. Make both numbers:
// every int8 here (counts, ids, epoch milliseconds) fits in a double.
pg.types.setTypeParser(20, (value) => Number(value));

export interface DbOptions {
  databaseUrl?: string | undefined;
  /** Where knex's own warnings go (lost connections, pool errors); default: the console. */
  log?: Logger;
  /** Directory for embedded PGlite, or 'memory'. */
  pgliteDir?: string;
}

const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => migrations[name]!,
};

export function createDb(options: DbOptions): Db {
  const log = options.log && {
    warn: (message: unknown) => options.log!.warn({ knex: String(message) }, 'database warning'),
    error: (message: unknown) => options.log!.error({ knex: String(message) }, 'database error'),
    deprecate: (method: string, alternative: string) => options.log!.warn({ method, alternative }, 'knex deprecation'),
    debug: (message: unknown) => options.log!.debug({ knex: String(message) }, 'database debug'),
  };
  if (options.databaseUrl) {
    return knexPkg.knex({
      client: 'pg',
      // Fail fast when the server cannot be reached (the request gets a 503), and notice dead peers.
      connection: { connectionString: options.databaseUrl, connectionTimeoutMillis: 5_000, keepAlive: true },
      pool: { min: 0, max: 10 },
      acquireConnectionTimeout: 10_000,
      migrations: { migrationSource },
      ...(log ? { log } : {}),
    });
  }
  const dir = options.pgliteDir ?? 'memory';
  if (dir !== 'memory') mkdirSync(dir, { recursive: true, mode: 0o700 });
  return knexPkg.knex({
    client: ClientPgLite as unknown as typeof knexPkg.Client,
    dialect: 'postgres',
    connection: dir === 'memory' ? {} : { filename: dir },
    acquireConnectionTimeout: 30_000,
    migrations: { migrationSource },
    ...(log ? { log } : {}),
  });
}

export function isEmbedded(db: Db): boolean {
  return db.client.config.client !== 'pg';
}

export async function migrateLatest(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest()) as [number, string[]];
  return applied;
}

/** knex's delete() resolves to a count on pg but to the raw result on PGlite; this reads both. */
export function affectedRows(result: unknown): number {
  if (typeof result === 'number') return result;
  const r = result as { rowCount?: number; affectedRows?: number } | undefined;
  return r?.rowCount ?? r?.affectedRows ?? 0;
}
