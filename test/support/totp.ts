// An independent RFC 6238 TOTP implementation (SHA-1, 6 digits, 30 s) for tests, so the provider's
// otplib-based code is checked against the standard, not against itself.
import { createHmac } from 'node:crypto';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function base32Decode(input: string): Buffer {
  const clean = input.replace(/[\s=]/g, '').toUpperCase();
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const ch of clean) {
    const index = BASE32.indexOf(ch);
    if (index < 0) throw new Error(`not base32: ${ch}`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The code for the time step `offset` steps away from now. */
export function totp(secretBase32: string, offset = 0, now = Date.now()): string {
  const counter = Math.floor(now / 1000 / 30) + offset;
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const hmac = createHmac('sha1', base32Decode(secretBase32)).update(message).digest();
  const offsetByte = hmac[hmac.length - 1]! & 0x0f;
  const binary = hmac.readUInt32BE(offsetByte) & 0x7fffffff;
  return String(binary % 1_000_000).padStart(6, '0');
}

/** Seconds left in the current 30-second step. */
export function secondsLeftInStep(now = Date.now()): number {
  return 30 - Math.floor((now / 1000) % 30);
}
