// The key ring's one file: its types, and a strict reader. Anything unexpected is a broken file,
// reported as such; the reader never guesses, repairs or rewrites.
import { KeyFileBrokenError } from './errors.js';
import type { SealedBlob } from './tpm.js';
import type { Wrapped } from './wrap.js';

export const KEYRING_FORMAT = 1;

export interface ScryptParams {
  /** CPU/memory cost, a power of two. Memory used is 128 * N * r bytes. */
  N: number;
  r: number;
  p: number;
}

export interface PassphraseWrap extends Wrapped {
  kdf: 'scrypt';
  salt: string;
  params: ScryptParams;
}

export interface RecoveryWrap extends Wrapped {
  kdf: 'hkdf-sha256';
  salt: string;
}

export interface TpmWrap extends Wrapped {
  sealed: SealedBlob;
}

export interface KeyRingFile {
  format: typeof KEYRING_FORMAT;
  /** Random, public; part of every wrap's additional data. */
  keyId: string;
  /** Check value of the data key: lets writers refuse a DataKey from elsewhere. */
  dataKeyCheck: string;
  createdAt: string;
  updatedAt: string;
  passphrase: PassphraseWrap;
  recovery: RecoveryWrap;
  /** Absent when the device had no usable TPM when it last sealed. */
  tpm?: TpmWrap;
  /** Per-volume passphrases, wrapped by the data key. */
  volumes: Record<string, Wrapped>;
}

export function serializeKeyRingFile(doc: KeyRingFile): string {
  return JSON.stringify(doc, null, 2) + '\n';
}

export function parseKeyRingFile(text: string, file: string): KeyRingFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new KeyFileBrokenError(file, `not valid JSON (${(err as Error).message})`);
  }
  const problems: string[] = [];
  const check = new Checker(problems);
  if (!isObject(doc)) throw new KeyFileBrokenError(file, 'not a JSON object');
  if (doc.format !== KEYRING_FORMAT) {
    throw new KeyFileBrokenError(file, `unsupported format ${JSON.stringify(doc.format)} (this version reads format ${KEYRING_FORMAT})`);
  }
  check.string(doc, 'keyId', /^[0-9a-f]{16,64}$/);
  check.base64(doc, 'dataKeyCheck');
  check.string(doc, 'createdAt');
  check.string(doc, 'updatedAt');
  if (check.object(doc, 'passphrase')) {
    const wrap = doc.passphrase as Record<string, unknown>;
    check.wrapped(wrap, 'passphrase');
    check.literal(wrap, 'kdf', 'scrypt', 'passphrase');
    check.base64(wrap, 'salt', 'passphrase');
    if (check.object(wrap, 'params', 'passphrase')) {
      const params = wrap.params as Record<string, unknown>;
      const N = params.N;
      if (!Number.isSafeInteger(N) || (N as number) < 2 || ((N as number) & ((N as number) - 1)) !== 0) problems.push('passphrase.params.N must be a power of two');
      check.positiveInt(params, 'r', 'passphrase.params');
      check.positiveInt(params, 'p', 'passphrase.params');
    }
  }
  if (check.object(doc, 'recovery')) {
    const wrap = doc.recovery as Record<string, unknown>;
    check.wrapped(wrap, 'recovery');
    check.literal(wrap, 'kdf', 'hkdf-sha256', 'recovery');
    check.base64(wrap, 'salt', 'recovery');
  }
  if (doc.tpm !== undefined && check.object(doc, 'tpm')) {
    const wrap = doc.tpm as Record<string, unknown>;
    check.wrapped(wrap, 'tpm');
    if (check.object(wrap, 'sealed', 'tpm')) {
      const sealed = wrap.sealed as Record<string, unknown>;
      check.string(sealed, 'pcrs', /^[a-z0-9]+:[0-9]+(,[0-9]+)*$/, 'tpm.sealed');
      check.base64(sealed, 'public', 'tpm.sealed');
      check.base64(sealed, 'private', 'tpm.sealed');
    }
  }
  if (check.object(doc, 'volumes')) {
    for (const [name, wrap] of Object.entries(doc.volumes as Record<string, unknown>)) {
      if (isObject(wrap)) check.wrapped(wrap, `volumes.${name}`);
      else problems.push(`volumes.${name} must be an object`);
    }
  }
  if (problems.length) throw new KeyFileBrokenError(file, problems.join('; '));
  return doc as unknown as KeyRingFile;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

class Checker {
  constructor(private readonly problems: string[]) {}

  private name(where: string | undefined, key: string): string {
    return where ? `${where}.${key}` : key;
  }

  string(obj: Record<string, unknown>, key: string, pattern?: RegExp, where?: string): void {
    const value = obj[key];
    if (typeof value !== 'string' || !value || (pattern && !pattern.test(value))) this.problems.push(`${this.name(where, key)} is missing or malformed`);
  }

  base64(obj: Record<string, unknown>, key: string, where?: string): void {
    this.string(obj, key, BASE64, where);
  }

  literal(obj: Record<string, unknown>, key: string, expected: string, where?: string): void {
    if (obj[key] !== expected) this.problems.push(`${this.name(where, key)} must be "${expected}"`);
  }

  positiveInt(obj: Record<string, unknown>, key: string, where?: string): void {
    const value = obj[key];
    if (!Number.isSafeInteger(value) || (value as number) < 1) this.problems.push(`${this.name(where, key)} must be a positive integer`);
  }

  object(obj: Record<string, unknown>, key: string, where?: string): boolean {
    if (isObject(obj[key])) return true;
    this.problems.push(`${this.name(where, key)} must be an object`);
    return false;
  }

  wrapped(obj: Record<string, unknown>, where: string): void {
    for (const key of ['check', 'iv', 'ciphertext', 'tag']) this.base64(obj, key, where);
  }
}
