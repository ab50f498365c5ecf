// Key wrapping: AES-256-GCM with a random IV and the wrap's identity (key id + purpose) as
// additional data, so a wrap copied to another slot or another key ring does not open.
// Each wrap also stores a short check value of its wrapping key. It tells "wrong secret" (the
// check differs) from "damaged file" (the check matches but the GCM tag fails), so a user is
// never told their passphrase is wrong when the file is what broke. It reveals nothing an
// attacker could not learn from the GCM tag: both only confirm a guess of the wrapping key.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const IV_BYTES = 12;
const CHECK_BYTES = 16;

/** All fields base64. */
export interface Wrapped {
  check: string;
  iv: string;
  ciphertext: string;
  tag: string;
}

export type Unwrapped = { status: 'ok'; secret: Buffer } | { status: 'wrong-key' } | { status: 'damaged' };

export function wrapSecret(wrappingKey: Uint8Array, secret: Uint8Array, aad: string): Wrapped {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', wrappingKey, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(secret), cipher.final()]);
  return {
    check: keyCheck(wrappingKey, aad).toString('base64'),
    iv: iv.toString('base64'),
    ciphertext: ciphertext.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
  };
}

export function unwrapSecret(wrappingKey: Uint8Array, wrapped: Wrapped, aad: string): Unwrapped {
  if (!checkMatches(wrappingKey, aad, wrapped.check)) return { status: 'wrong-key' };
  try {
    const decipher = createDecipheriv('aes-256-gcm', wrappingKey, Buffer.from(wrapped.iv, 'base64'));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(Buffer.from(wrapped.tag, 'base64'));
    const secret = Buffer.concat([decipher.update(Buffer.from(wrapped.ciphertext, 'base64')), decipher.final()]);
    return { status: 'ok', secret };
  } catch {
    return { status: 'damaged' };
  }
}

/** HMAC-SHA256 of the purpose under the key, truncated: identifies a key without revealing it. */
export function keyCheck(key: Uint8Array, purpose: string): Buffer {
  return createHmac('sha256', key).update(`piccolo key check\0${purpose}`).digest().subarray(0, CHECK_BYTES);
}

export function checkMatches(key: Uint8Array, purpose: string, expectedBase64: string): boolean {
  const expected = Buffer.from(expectedBase64, 'base64');
  const actual = keyCheck(key, purpose);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
