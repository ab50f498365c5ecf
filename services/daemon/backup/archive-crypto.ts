// The backup file's encryption: a clear header, then the contents in AES-256-GCM chunks, each one
// authenticated on its own, so a stream of any size is verified piece by piece as it arrives.
//
//   "PICCOLOB" | u32 header length | header (JSON) | chunk | chunk | ... | final chunk
//   chunk = u8 flag (0 more, 1 final) | u32 plaintext length | ciphertext | 16-byte GCM tag
//
// Each chunk's nonce is its counter (4 zero bytes, u64), and its additional data binds the whole
// header (sha256), its flag and its length: a chunk moved, dropped, swapped or taken from another
// archive fails its tag; a file cut after any chunk lacks the final flag (truncated), and the flag
// cannot be set on an earlier chunk without failing that chunk's tag. Every chunk but the final
// one holds exactly `chunkBytes`. The key is fresh per archive (HKDF with the header's salt), so
// counter nonces never repeat under one key.
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { RecoverySlot } from '../crypto/keyring.js';
import { checkMatches, keyCheck } from '../crypto/wrap.js';
import { BackupArchiveError } from './errors.js';

export const ARCHIVE_MAGIC = Buffer.from('PICCOLOB', 'ascii');
export const ARCHIVE_FORMAT = 1;
export const DEFAULT_CHUNK_BYTES = 64 * 1024;
/** A header asking for larger chunks is refused: the reader holds one chunk in memory. */
export const MAX_CHUNK_BYTES = 4 * 1024 * 1024;
const MIN_CHUNK_BYTES = 1024;
const MAX_HEADER_BYTES = 16 * 1024;
const SALT_BYTES = 32;
const TAG_BYTES = 16;
const CHUNK_PREFIX_BYTES = 5;
const FLAG_MORE = 0;
const FLAG_FINAL = 1;
const KEY_PURPOSE = 'piccolo backup archive key';

export interface ArchiveHeader {
  format: typeof ARCHIVE_FORMAT;
  cipher: 'aes-256-gcm';
  kdf: 'hkdf-sha256';
  /** base64, 32 bytes: the archive key is HKDF-SHA256(data key, salt). */
  salt: string;
  chunkBytes: number;
  /** base64: check value of the archive key, so a wrong key is told from a damaged file. */
  keyCheck: string;
  createdAt: string;
  /** The recovery key opens this to the data key (crypto/keyring.ts openRecoverySlot). */
  slot: RecoverySlot;
}

/** The archive key: the data key never encrypts anything itself, and each archive gets its own. */
export function deriveArchiveKey(dataKey: Uint8Array, salt: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', dataKey, salt, KEY_PURPOSE, 32));
}

/** A new header for an archive sealed with deriveArchiveKey(dataKey, salt); returns the key too. */
export function newArchive(dataKey: Uint8Array, slot: RecoverySlot, options: { chunkBytes?: number; now?: Date } = {}): { header: ArchiveHeader; key: Buffer } {
  const salt = randomBytes(SALT_BYTES);
  const key = deriveArchiveKey(dataKey, salt);
  const header: ArchiveHeader = {
    format: ARCHIVE_FORMAT,
    cipher: 'aes-256-gcm',
    kdf: 'hkdf-sha256',
    salt: salt.toString('base64'),
    chunkBytes: options.chunkBytes ?? DEFAULT_CHUNK_BYTES,
    keyCheck: keyCheck(key, KEY_PURPOSE).toString('base64'),
    createdAt: (options.now ?? new Date()).toISOString(),
    slot,
  };
  return { header, key };
}

/** Whether `key` is the one this header was sealed with. */
export function keyFitsHeader(key: Uint8Array, header: ArchiveHeader): boolean {
  return checkMatches(key, KEY_PURPOSE, header.keyCheck);
}

export function encodeHeader(header: ArchiveHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length);
  return Buffer.concat([ARCHIVE_MAGIC, length, json]);
}

/** Encrypts a plaintext stream into an archive: the header first, then the chunks. */
export class ArchiveSealer extends Transform {
  private readonly headerDigest: Buffer;
  private readonly chunkBytes: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private counter = 0n;
  /** Its own copy: the caller wipes the key it passed in. */
  private readonly key: Buffer;

  constructor(key: Buffer, header: ArchiveHeader) {
    super();
    this.key = Buffer.from(key);
    const headerBytes = encodeHeader(header);
    this.headerDigest = createHash('sha256').update(headerBytes).digest();
    this.chunkBytes = header.chunkBytes;
    this.push(headerBytes);
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.pending.push(data);
    this.pendingBytes += data.length;
    if (this.pendingBytes >= this.chunkBytes) {
      let all = Buffer.concat(this.pending);
      while (all.length >= this.chunkBytes) {
        this.push(this.seal(all.subarray(0, this.chunkBytes), FLAG_MORE));
        all = all.subarray(this.chunkBytes);
      }
      this.pending = [all];
      this.pendingBytes = all.length;
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    this.push(this.seal(Buffer.concat(this.pending), FLAG_FINAL));
    this.pending = [];
    this.key.fill(0);
    done();
  }

  override _destroy(err: Error | null, done: (err: Error | null) => void): void {
    this.key.fill(0);
    done(err);
  }

  private seal(plaintext: Buffer, flag: number): Buffer {
    const prefix = chunkPrefix(flag, plaintext.length);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonceOf(this.counter++));
    cipher.setAAD(Buffer.concat([this.headerDigest, prefix]));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([prefix, ciphertext, cipher.getAuthTag()]);
  }
}

/**
 * Decrypts an archive, verifying each chunk before its plaintext goes on. `keyFor` is called once
 * with the parsed header and returns the archive key (or throws: a wrong recovery key). Every
 * problem with the bytes is a BackupArchiveError; a truncated file is one at the end of the input.
 */
export class ArchiveOpener extends Transform {
  private buffered: Buffer = Buffer.alloc(0);
  private phase: 'header' | 'chunks' | 'done' = 'header';
  private header: ArchiveHeader | undefined;
  private headerDigest: Buffer = Buffer.alloc(0);
  private key: Buffer | undefined;
  private counter = 0n;
  /** Encrypted bytes read so far, header included (progress). */
  bytesIn = 0;

  constructor(private readonly keyFor: (header: ArchiveHeader) => Buffer | Promise<Buffer>) {
    super();
  }

  /** The header, once read. */
  get archiveHeader(): ArchiveHeader | undefined {
    return this.header;
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytesIn += data.length;
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, data]) : data;
    this.drain().then(() => done(), (err: Error) => done(err));
  }

  override _flush(done: TransformCallback): void {
    if (this.phase === 'done') return done();
    if (this.phase === 'header' && this.buffered.length < ARCHIVE_MAGIC.length) {
      return done(new BackupArchiveError('not_a_backup', 'this file is not a Piccolo backup'));
    }
    done(new BackupArchiveError('truncated', 'the file ends before the archive does: it was cut short (an interrupted download or copy?)'));
  }

  override _destroy(err: Error | null, done: (err: Error | null) => void): void {
    this.key?.fill(0);
    done(err);
  }

  private async drain(): Promise<void> {
    if (this.phase === 'header') {
      if (!(await this.readHeader())) return;
    }
    while (this.phase === 'chunks') {
      if (this.buffered.length < CHUNK_PREFIX_BYTES) return;
      const flag = this.buffered[0]!;
      const length = this.buffered.readUInt32BE(1);
      const { chunkBytes } = this.header!;
      if (flag !== FLAG_MORE && flag !== FLAG_FINAL) throw new BackupArchiveError('tampered', `chunk ${this.counter} has an unknown flag ${flag}`);
      if (length > chunkBytes || (flag === FLAG_MORE && length !== chunkBytes)) {
        throw new BackupArchiveError('tampered', `chunk ${this.counter} claims ${length} bytes (chunks hold ${chunkBytes})`);
      }
      const total = CHUNK_PREFIX_BYTES + length + TAG_BYTES;
      if (this.buffered.length < total) return;
      const prefix = this.buffered.subarray(0, CHUNK_PREFIX_BYTES);
      const ciphertext = this.buffered.subarray(CHUNK_PREFIX_BYTES, CHUNK_PREFIX_BYTES + length);
      const tag = this.buffered.subarray(CHUNK_PREFIX_BYTES + length, total);
      const decipher = createDecipheriv('aes-256-gcm', this.key!, nonceOf(this.counter));
      decipher.setAAD(Buffer.concat([this.headerDigest, prefix]));
      decipher.setAuthTag(tag);
      let plaintext: Buffer;
      try {
        plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
      } catch {
        throw new BackupArchiveError('tampered', `chunk ${this.counter} fails its authentication: the file was changed or its parts reordered`);
      }
      this.counter++;
      this.buffered = this.buffered.subarray(total);
      if (flag === FLAG_FINAL) this.phase = 'done';
      if (plaintext.length) this.push(plaintext);
    }
    if (this.phase === 'done' && this.buffered.length) throw new BackupArchiveError('trailing_data', 'there are bytes after the end of the archive');
  }

  /** false while the header is still incomplete. */
  private async readHeader(): Promise<boolean> {
    const magic = this.buffered.subarray(0, ARCHIVE_MAGIC.length);
    if (!ARCHIVE_MAGIC.subarray(0, magic.length).equals(magic)) throw new BackupArchiveError('not_a_backup', 'this file is not a Piccolo backup');
    if (this.buffered.length < ARCHIVE_MAGIC.length + 4) return false;
    const length = this.buffered.readUInt32BE(ARCHIVE_MAGIC.length);
    if (length > MAX_HEADER_BYTES) throw new BackupArchiveError('damaged_header', `the header claims ${length} bytes`);
    const end = ARCHIVE_MAGIC.length + 4 + length;
    if (this.buffered.length < end) return false;
    const headerBytes = this.buffered.subarray(0, end);
    this.header = parseHeader(headerBytes.subarray(ARCHIVE_MAGIC.length + 4));
    this.headerDigest = createHash('sha256').update(headerBytes).digest();
    this.buffered = this.buffered.subarray(end);
    const key = await this.keyFor(this.header);
    if (!keyFitsHeader(key, this.header)) throw new BackupArchiveError('tampered', 'the header\'s key check does not match its key');
    this.key = key;
    this.phase = 'chunks';
    return true;
  }
}

/** Strict: a field missing or out of range is a damaged header; another format is named as such. */
export function parseHeader(json: Buffer): ArchiveHeader {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch {
    throw new BackupArchiveError('damaged_header', 'the header is not readable JSON');
  }
  const problems: string[] = [];
  if (!isObject(value)) throw new BackupArchiveError('damaged_header', 'the header is not an object');
  if (value.format !== ARCHIVE_FORMAT) {
    throw new BackupArchiveError('unsupported_format', `backup format ${JSON.stringify(value.format)}; this version reads format ${ARCHIVE_FORMAT} (update the device first?)`);
  }
  if (value.cipher !== 'aes-256-gcm') problems.push('cipher');
  if (value.kdf !== 'hkdf-sha256') problems.push('kdf');
  if (!isBase64(value.salt, SALT_BYTES)) problems.push('salt');
  if (!Number.isSafeInteger(value.chunkBytes) || (value.chunkBytes as number) < MIN_CHUNK_BYTES || (value.chunkBytes as number) > MAX_CHUNK_BYTES) problems.push('chunkBytes');
  if (!isBase64(value.keyCheck)) problems.push('keyCheck');
  if (typeof value.createdAt !== 'string') problems.push('createdAt');
  const slot = value.slot;
  if (!isObject(slot) || typeof slot.keyId !== 'string' || !/^[0-9a-f]{16,64}$/.test(slot.keyId) || !isBase64(slot.dataKeyCheck) || !isObject(slot.recovery)) {
    problems.push('slot');
  } else {
    const wrap = slot.recovery;
    if (wrap.kdf !== 'hkdf-sha256' || !['salt', 'check', 'iv', 'ciphertext', 'tag'].every((key) => isBase64(wrap[key]))) problems.push('slot.recovery');
  }
  if (problems.length) throw new BackupArchiveError('damaged_header', `the header has bad fields: ${problems.join(', ')}`);
  return value as unknown as ArchiveHeader;
}

function chunkPrefix(flag: number, length: number): Buffer {
  const prefix = Buffer.alloc(CHUNK_PREFIX_BYTES);
  prefix[0] = flag;
  prefix.writeUInt32BE(length, 1);
  return prefix;
}

function nonceOf(counter: bigint): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64BE(counter, 4);
  return nonce;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isBase64(value: unknown, bytes?: number): boolean {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return false;
  return bytes === undefined || Buffer.from(value, 'base64').length === bytes;
}
