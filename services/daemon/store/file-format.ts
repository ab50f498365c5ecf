// The store file: { format, schemaVersion, rev, checksum, data } as indented JSON. The checksum
// is sha256 over the RFC 8785 canonical JSON of { schemaVersion, rev, data }, so it does not
// depend on key order or whitespace and a reader in any language can recompute it.
import canonicalize from 'canonicalize';
import { createHash } from 'node:crypto';
import { StoreCorruptError, StoreSchemaTooNewError } from './errors.js';

export const STORE_FORMAT = 1;

export interface StoreSnapshot {
  schemaVersion: number;
  rev: number;
  data: unknown;
}

export function checksumOf(snapshot: StoreSnapshot): string {
  return createHash('sha256').update(canonicalJson({ schemaVersion: snapshot.schemaVersion, rev: snapshot.rev, data: snapshot.data })).digest('hex');
}

/** Canonical JSON of a value; throws on what JSON cannot hold (NaN, Infinity, cycles, lone surrogates). */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('store data must be JSON (got undefined, a function or a symbol)');
  return text;
}

export function encodeStoreFile(snapshot: StoreSnapshot): string {
  const { schemaVersion, rev, data } = snapshot;
  return JSON.stringify({ format: STORE_FORMAT, schemaVersion, rev, checksum: checksumOf(snapshot), data }, null, 2) + '\n';
}

/**
 * Parses and verifies a store file. Every way the bytes can be wrong is a StoreCorruptError;
 * a valid file from a newer schema is a StoreSchemaTooNewError. Never returns partial data.
 */
export function decodeStoreFile(bytes: Uint8Array, file: string, knownSchemaVersion: number): StoreSnapshot {
  const corrupt = (reason: ConstructorParameters<typeof StoreCorruptError>[1], detail: string) => new StoreCorruptError(file, reason, detail);
  if (bytes.length === 0) throw corrupt('empty', 'the file has 0 bytes');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw corrupt('not_json', 'the file is not UTF-8 text');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    // Every file we write ends in "}\n"; one that does not was cut off.
    const reason = text.trimEnd().endsWith('}') ? 'not_json' : 'truncated';
    throw corrupt(reason, `${(err as Error).message} (${bytes.length} bytes)`);
  }
  if (!isPlainObject(parsed)) throw corrupt('bad_shape', 'the top level is not an object');
  if (parsed.format !== STORE_FORMAT) throw corrupt('unknown_format', `format ${JSON.stringify(parsed.format)}; this build reads format ${STORE_FORMAT}`);
  const { schemaVersion, rev, checksum, data } = parsed;
  if (!isCount(schemaVersion) || schemaVersion < 1) throw corrupt('bad_shape', `schemaVersion ${JSON.stringify(schemaVersion)} is not a positive integer`);
  if (!isCount(rev)) throw corrupt('bad_shape', `rev ${JSON.stringify(rev)} is not a non-negative integer`);
  if (typeof checksum !== 'string' || !/^[0-9a-f]{64}$/.test(checksum)) throw corrupt('bad_shape', 'checksum is not a sha256 hex digest');
  if (typeof data !== 'object' || data === null) throw corrupt('bad_shape', 'data is not an object');
  const snapshot = { schemaVersion, rev, data };
  const actual = checksumOf(snapshot);
  if (actual !== checksum) throw corrupt('checksum_mismatch', `stored ${checksum}, computed ${actual}`);
  // After the checksum: a damaged version number is corruption, not a newer schema.
  if (schemaVersion > knownSchemaVersion) throw new StoreSchemaTooNewError(file, schemaVersion, knownSchemaVersion);
  return snapshot;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
