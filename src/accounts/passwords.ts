// Password hashing with argon2id. Parameters come from the configuration (OWASP's minimum by default);
// a stored hash with other parameters is upgraded at the next successful sign-in.
import argon2 from 'argon2';
import { DomainError } from '../errors.js';

export interface Argon2Params {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/** NIST SP 800-63B: at least 8 characters; allow long passphrases but bound the work an attacker can cause. */
export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 256;

export class PasswordHasher {
  private dummyHash: Promise<string> | undefined;

  constructor(private readonly params: Argon2Params) {}

  hash(password: string): Promise<string> {
    return argon2.hash(password, { type: argon2.argon2id, ...this.params });
  }

  /**
   * Verifies a password. With no stored hash (unknown account, no password yet) it verifies against a
   * dummy hash, so the answer takes the same time as for a real account.
   */
  async verify(storedHash: string | null | undefined, password: string): Promise<{ ok: boolean; needsRehash: boolean }> {
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

/** Checks a new password. Issue 6 extends this with common/breached lists; the rule set lives here. */
export function assertAcceptablePassword(password: string, context: { email?: string; name?: string } = {}): void {
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) {
    throw new DomainError('password_too_short', `The password must have at least ${PASSWORD_MIN_LENGTH} characters.`);
  }
  if (length > PASSWORD_MAX_LENGTH) {
    throw new DomainError('password_too_long', `The password must have at most ${PASSWORD_MAX_LENGTH} characters.`);
  }
  const lower = password.toLowerCase();
  const local = context.email?.split('@')[0]?.toLowerCase();
  if ((local && local.length >= 3 && lower.includes(local)) || (context.email && lower.includes(context.email.toLowerCase()))) {
    throw new DomainError('password_contains_email', 'The password must not contain your email address.');
  }
}
