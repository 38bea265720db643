// Cookie signatures for Koa and oidc-provider (both hand `keys` to the `cookies` package): the same
// signatures as keygrip, its default (HMAC-SHA1 in unpadded base64url; the first key signs, every key
// verifies, so COOKIE_KEYS can be rotated), made cheaper. keygrip builds a new HMAC key from the string on
// every call and compares with tsscmp, which runs two more HMACs; every request checks several signed
// cookies. Here the keys are made once and digests compared with timingSafeEqual (docs/benchmarks.md).
import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';

export class CookieKeys {
  private readonly keys: KeyObject[];

  constructor(secrets: string[]) {
    if (!secrets.length) throw new Error('at least one cookie key is needed');
    this.keys = secrets.map((s) => createSecretKey(Buffer.from(s, 'utf8')));
  }

  sign(data: string): string {
    return digest(this.keys[0]!, data);
  }

  verify(data: string, signature: string): boolean {
    return this.index(data, signature) > -1;
  }

  /** The index of the key that made `signature`, or -1. */
  index(data: string, signature: string): number {
    const given = Buffer.from(signature, 'utf8');
    for (let i = 0; i < this.keys.length; i += 1) {
      const expected = Buffer.from(digest(this.keys[i]!, data), 'utf8');
      // The length of a digest is no secret: unequal lengths are a mismatch without comparing.
      if (given.length === expected.length && timingSafeEqual(given, expected)) return i;
    }
    return -1;
  }
}

function digest(key: KeyObject, data: string): string {
  return createHmac('sha1', key).update(data).digest('base64url');
}
