// oidc-provider reads its JWKS once, when it is constructed. To follow key rotation without a restart,
// every instance polls the key set's version (a cheap metadata query) and builds a fresh Provider when the
// published keys or the signing key change. Requests already running finish on the old instance.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JWK } from 'jose';
import type Provider from 'oidc-provider';
import type { Db } from '../db/index.js';
import type { Logger } from '../log.js';
import type { Secrets } from '../security/crypto.js';
import { currentKeySetVersion, ensureSigningKeys, loadKeySet, SIGNING_ALGS } from './keys.js';

export const DEFAULT_KEY_REFRESH_MS = 30_000;

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export class ProviderHolder {
  private provider: Provider;
  private handler: Handler;
  private version: string;
  private refreshing: Promise<boolean> | undefined;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly deps: { db: Db; secrets: Secrets; log: Logger; build: (jwks: JWK[]) => Provider },
    keySet: { version: string; jwks: JWK[] },
  ) {
    this.provider = deps.build(keySet.jwks);
    this.handler = this.provider.callback() as unknown as Handler;
    this.version = keySet.version;
  }

  static async create(deps: { db: Db; secrets: Secrets; log: Logger; build: (jwks: JWK[]) => Provider }): Promise<ProviderHolder> {
    await ensureSigningKeys(deps.db, deps.secrets);
    return new ProviderHolder(deps, await loadKeySet(deps.db, deps.secrets));
  }

  /** The provider to use for this request. */
  get current(): Provider {
    return this.provider;
  }

  get keySetVersion(): string {
    return this.version;
  }

  handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    return this.handler(req, res);
  }

  /** Rebuilds the provider when the key set changed; true when it did. Concurrent calls share one check. */
  refresh(): Promise<boolean> {
    this.refreshing ??= this.doRefresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<boolean> {
    const { db, secrets, log, build } = this.deps;
    let version = await currentKeySetVersion(db);
    // Every algorithm needs a signer ("*" marks one); should all keys of one have expired, make a new one.
    if (version.split(',').filter((k) => k.endsWith('*')).length < SIGNING_ALGS.length) {
      await ensureSigningKeys(db, secrets);
      version = await currentKeySetVersion(db);
    }
    if (version === this.version) return false;
    const keySet = await loadKeySet(db, secrets);
    const provider = build(keySet.jwks);
    this.provider = provider;
    this.handler = provider.callback() as unknown as Handler;
    log.info({ from: this.version, to: keySet.version }, 'signing keys changed; provider rebuilt');
    this.version = keySet.version;
    return true;
  }

  /** Polls for key changes every `intervalMs`. */
  start(intervalMs = DEFAULT_KEY_REFRESH_MS): void {
    this.stop();
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.deps.log.warn({ err }, 'signing key refresh failed'));
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * A stand-in for the Provider that always forwards to the current one, for code that keeps a reference
   * (the interaction routes): methods are bound to the current provider, model classes (Grant, Client, …)
   * come from it.
   */
  facade(): Provider {
    return new Proxy({} as Provider, {
      get: (_target, property) => {
        const provider = this.provider;
        const value: unknown = Reflect.get(provider, property, provider);
        if (typeof value === 'function' && !isClass(value)) return value.bind(provider);
        return value;
      },
      has: (_target, property) => Reflect.has(this.provider, property),
    });
  }
}

function isClass(fn: Function): boolean {
  return /^class[\s{]/.test(Function.prototype.toString.call(fn));
}
