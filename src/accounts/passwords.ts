// Password hashing with argon2id. Parameters come from the configuration (OWASP's minimum by default);
// a stored hash with other parameters is upgraded at the next successful sign-in.
import argon2 from 'argon2';
import type { Metrics } from '../metrics.js';
import { PASSWORD_MAX_LENGTH } from './password-policy.js';

export interface Argon2Params {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export { PASSWORD_MAX_LENGTH };

export class PasswordHasher {
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly params: Argon2Params,
    private readonly metrics?: Metrics,
  ) {}

  hash(password: string): Promise<string> {
    return argon2.hash(password, { type: argon2.argon2id, ...this.params });
  }

  /**
   * Verifies a password. With no stored hash (unknown account, no password yet) it verifies against a
   * dummy hash, so the answer takes the same time as for a real account.
   */
  async verify(storedHash: string | null | undefined, password: string): Promise<{ ok: boolean; needsRehash: boolean }> {
    const end = this.metrics?.passwordVerify.startTimer();
    try {
      return await this.verifyTimed(storedHash, password);
    } finally {
      end?.();
    }
  }

  private async verifyTimed(storedHash: string | null | undefined, password: string): Promise<{ ok: boolean; needsRehash: boolean }> {
    const candidate = password.slice(0, PASSWORD_MAX_LENGTH);
    if (!storedHash) {
      this.dummyHash ??= this.hash('dummy password for timing equalisation');
      await argon2.verify(await this.dummyHash, candidate).catch(() => false);
      return { ok: false, needsRehash: false };
    }
    let ok = false;
    try {
      ok = await argon2.verify(storedHash, candidate);
    } catch {
      ok = false; // a malformed stored hash never verifies
    }
    return { ok, needsRehash: ok && argon2.needsRehash(storedHash, this.params) };
  }
}

