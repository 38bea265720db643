// Registered clients, kept in memory: oidc-provider looks its client up on nearly every request (each
// step of a sign-in, every token request). A trigger on `oidc_clients` NOTIFYs `oidc_clients_changed` with
// the client_id on every insert, update and delete (and '*' on TRUNCATE), whoever makes the change: this
// instance, another one, the CLI or psql. Each instance LISTENs and drops the entry. While the listening
// connection is down the cache is off and empty (every lookup reads the database), so a rotated secret or
// a deleted client stops working as soon as the change is committed and delivered, never later.
import pg from 'pg';
import type { Db } from '../db/index.js';
import { isEmbedded } from '../db/index.js';
import type { Logger } from '../log.js';

export const CLIENT_CHANGES_CHANNEL = 'oidc_clients_changed';
/** Beyond this many clients the cache starts over (a bound on memory, far above a real deployment). */
const MAX_ENTRIES = 10_000;
const RECONNECT_MS = { first: 500, max: 30_000 };

export class ClientCache<T> {
  private readonly entries = new Map<string, T>();
  /** Bumped on every change: a lookup that raced a change does not store what it read. */
  private generation = 0;
  private listening = false;

  /** The cached value, or `load()`'s (stored only while changes are being heard). */
  async get(id: string, load: () => Promise<T | undefined>): Promise<T | undefined> {
    if (!this.listening) return load();
    const hit = this.entries.get(id);
    if (hit !== undefined) return hit;
    const generation = this.generation;
    const value = await load();
    // Unknown ids are not stored: anyone can send them.
    if (value !== undefined && this.listening && generation === this.generation) {
      if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
      this.entries.set(id, value);
    }
    return value;
  }

  /** A notification: one client changed, or '*' for all. */
  changed(id: string): void {
    this.generation += 1;
    if (id === '*') this.entries.clear();
    else this.entries.delete(id);
  }

  /** Changes are heard (true) or may be missed (false: the cache empties and stays off). */
  setListening(listening: boolean): void {
    this.generation += 1;
    this.entries.clear();
    this.listening = listening;
  }

  get size(): number {
    return this.entries.size;
  }
}

// One cache per database handle: the lookups in clients.ts take the handle, and a handle without a
// running listener (scripts, the CLI, tests' own handles) reads the database every time.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const caches = new WeakMap<Db, ClientCache<any>>();

export function clientCacheFor<T>(db: Db): ClientCache<T> | undefined {
  // Inside a transaction, read what the transaction sees.
  return db.isTransaction ? undefined : (caches.get(db) as ClientCache<T> | undefined);
}

export interface ClientChangeListener {
  stop(): Promise<void>;
}

/** Starts hearing client changes on `db` and turns its cache on while they are heard. */
export async function listenForClientChanges(db: Db, log: Logger): Promise<ClientChangeListener> {
  const cache = new ClientCache<unknown>();
  caches.set(db, cache);
  const onPayload = (payload: string | undefined) => cache.changed(payload ?? '*');
  if (isEmbedded(db)) return listenEmbedded(db, cache, onPayload);
  return listenPostgres(db, cache, onPayload, log);
}

/** PGlite: one process owns the database; its notifications are delivered in-process, at commit. */
async function listenEmbedded(db: Db, cache: ClientCache<unknown>, onPayload: (p: string | undefined) => void): Promise<ClientChangeListener> {
  const client = db.client as { acquireConnection(): Promise<unknown>; releaseConnection(c: unknown): Promise<void> };
  const connection = (await client.acquireConnection()) as { listen(channel: string, cb: (payload: string) => void): Promise<() => Promise<void>> };
  let unlisten: () => Promise<void>;
  try {
    unlisten = await connection.listen(CLIENT_CHANGES_CHANNEL, onPayload);
  } finally {
    await client.releaseConnection(connection);
  }
  cache.setListening(true);
  return {
    async stop() {
      cache.setListening(false);
      if (caches.get(db) === cache) caches.delete(db);
      await unlisten().catch(() => undefined);
    },
  };
}

/** PostgreSQL: a connection of its own, outside the pool, reconnected with backoff when it drops. */
function listenPostgres(db: Db, cache: ClientCache<unknown>, onPayload: (p: string | undefined) => void, log: Logger): ClientChangeListener {
  const settings = (db.client as { connectionSettings: pg.ClientConfig }).connectionSettings;
  let stopped = false;
  let current: pg.Client | undefined;
  let retry: NodeJS.Timeout | undefined;
  let delay = RECONNECT_MS.first;

  const lost = (client: pg.Client, err?: unknown) => {
    if (current !== client) return;
    current = undefined;
    cache.setListening(false);
    client.end().catch(() => undefined);
    if (stopped) return;
    log.warn({ err, retry_ms: delay }, 'client change notifications lost; client lookups read the database until they are back');
    retry = setTimeout(connect, delay);
    retry.unref();
    delay = Math.min(delay * 2, RECONNECT_MS.max);
  };

  async function connect(): Promise<void> {
    const client = new pg.Client(settings);
    current = client;
    client.on('error', (err) => lost(client, err));
    client.on('end', () => lost(client));
    client.on('notification', (n) => {
      if (n.channel === CLIENT_CHANGES_CHANNEL) onPayload(n.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CLIENT_CHANGES_CHANNEL}`);
    } catch (err) {
      lost(client, err);
      return;
    }
    if (stopped || current !== client) {
      await client.end().catch(() => undefined);
      return;
    }
    delay = RECONNECT_MS.first;
    // Changes made while nobody listened are unknown: the cache starts empty.
    cache.setListening(true);
  }

  // The first connection is not awaited: the server starts even while it fails (lookups read the database).
  void connect();
  return {
    async stop() {
      stopped = true;
      if (retry) clearTimeout(retry);
      cache.setListening(false);
      if (caches.get(db) === cache) caches.delete(db);
      const client = current;
      current = undefined;
      await client?.end().catch(() => undefined);
    },
  };
}
