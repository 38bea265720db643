// Encryption of secrets at rest (AES-256-GCM) and keyed hashes of codes and tokens (HMAC-SHA256).
// Purpose-specific subkeys are derived from DATA_ENCRYPTION_KEY with HKDF, so one key never serves two uses.
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, hkdfSync, type KeyObject, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

export class Secrets {
  // KeyObjects, made once: passing a Buffer makes node:crypto build a new key object on every call.
  private readonly encryptionKey: KeyObject;
  private readonly hashKey: KeyObject;
  private readonly csrfKey: KeyObject;

  constructor(masterKey: Buffer) {
    this.encryptionKey = derive(masterKey, 'idp/encryption/v1');
    this.hashKey = derive(masterKey, 'idp/keyed-hash/v1');
    this.csrfKey = derive(masterKey, 'idp/csrf/v1');
  }

  /** Encrypts a UTF-8 string; the result is `v1.<iv>.<tag>.<ciphertext>` in base64url. */
  encrypt(plaintext: string, associatedData = ''): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.encryptionKey, iv);
    cipher.setAAD(Buffer.from(associatedData));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', iv, cipher.getAuthTag(), ciphertext].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
  }

  decrypt(sealed: string, associatedData = ''): string {
    const [version, iv, tag, ciphertext] = sealed.split('.');
    if (version !== 'v1' || !iv || !tag || ciphertext === undefined) throw new Error('unknown ciphertext format');
    const decipher = createDecipheriv('aes-256-gcm', this.encryptionKey, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(associatedData));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
  }

  /** Keyed hash for codes and tokens stored in the database (a leaked table reveals no usable secret). */
  keyedHash(value: string, purpose: string): string {
    return createHmac('sha256', this.hashKey).update(purpose).update('\0').update(value).digest('base64url');
  }

  csrfToken(binding: string): string {
    return createHmac('sha256', this.csrfKey).update(binding).digest('base64url');
  }
}

function derive(master: Buffer, info: string): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), info, 32)));
}

export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** A string of `length` decimal digits from a CSPRNG. */
export function randomDigits(length: number): string {
  let out = '';
  for (let i = 0; i < length; i += 1) out += String(randomInt(10));
  return out;
}
