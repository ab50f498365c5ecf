// The backup file's encryption (services/daemon/backup/archive-crypto.ts): a round trip through a
// real key ring's recovery slot, and every way of damaging the file refused with its own reason.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createLogger } from '../../services/common/logger.js';
import { generateRecoveryPhrase, KeyRing, openRecoverySlot, type RecoverySlot } from '../../services/daemon/crypto/keyring.js';
import { ArchiveOpener, ArchiveSealer, deriveArchiveKey, encodeHeader, newArchive, type ArchiveHeader } from '../../services/daemon/backup/archive-crypto.js';
import { BackupArchiveError, type ArchiveProblem } from '../../services/daemon/backup/errors.js';
import { DataKey } from '../../services/daemon/crypto/data-key.js';
import { ForeignDataKeyError, KeyRingExistsError, WrongPassphraseError } from '../../services/daemon/crypto/errors.js';
import { rejects } from '../support/assertions.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-backup-crypto-'));
const logger = createLogger({ service: 'test', write: () => {} });
const CHUNK = 1024;
let slot: RecoverySlot;
let dataKey: Buffer;
let phrase: string;

test.before(async () => {
  phrase = generateRecoveryPhrase();
  const ring = new KeyRing({ file: path.join(dir, 'keyring.json'), logger, scrypt: { N: 2 ** 10, r: 8, p: 1 } });
  const created = await ring.create('a long enough password', phrase);
  dataKey = Buffer.from(created.dataKey.bytes);
  slot = await ring.recoverySlot(created.dataKey);
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Seals `plaintext`, written in pieces of `piece` bytes (so chunk boundaries fall anywhere). */
async function seal(plaintext: Buffer, piece = 700): Promise<{ archive: Buffer; header: ArchiveHeader }> {
  const { header, key } = newArchive(dataKey, slot, { chunkBytes: CHUNK });
  const pieces: Buffer[] = [];
  for (let at = 0; at < plaintext.length; at += piece) pieces.push(plaintext.subarray(at, at + piece));
  const out: Buffer[] = [];
  const sealer = new ArchiveSealer(key, header);
  key.fill(0); // as the backup does: the sealer keeps its own copy
  await pipeline(Readable.from(pieces), sealer, async function* (source) {
    for await (const chunk of source) out.push(chunk as Buffer);
  });
  return { archive: Buffer.concat(out), header };
}

/** The recovery phrase opens the slot in the header; the archive key comes from the data key in it. */
function keyFromPhrase(words: string) {
  return (header: ArchiveHeader) => {
    const opened = openRecoverySlot(header.slot, words);
    if (opened.status !== 'ok') throw new Error(`slot ${opened.status}`);
    try {
      return deriveArchiveKey(opened.dataKey.bytes, Buffer.from(header.salt, 'base64'));
    } finally {
      opened.dataKey.wipe();
    }
  };
}

async function open(archive: Buffer, piece = 333, words = phrase): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let at = 0; at < archive.length; at += piece) pieces.push(archive.subarray(at, at + piece));
  const out: Buffer[] = [];
  await pipeline(Readable.from(pieces), new ArchiveOpener(keyFromPhrase(words)), async function* (source) {
    for await (const chunk of source) out.push(chunk as Buffer);
  });
  return Buffer.concat(out);
}

async function refused(archive: Buffer, problem: ArchiveProblem): Promise<void> {
  try {
    await open(archive);
  } catch (err) {
    assert.instance(err, BackupArchiveError, String(err));
    assert.is((err as BackupArchiveError).problem, problem, (err as Error).message);
    assert.is((err as BackupArchiveError).status, 400);
    return;
  }
  assert.unreachable(`a ${problem} archive was accepted`);
}

/** Offset of chunk `index` (0-based) in an archive with `CHUNK`-byte chunks. */
function chunkOffset(header: ArchiveHeader, index: number): number {
  return encodeHeader(header).length + index * (5 + CHUNK + 16);
}

test('round trip: sizes around the chunk size, any piece sizes', async () => {
  for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 5 * CHUNK + 17]) {
    const plaintext = randomBytes(size);
    const { archive } = await seal(plaintext, 1 + (size % 997));
    const back = await open(archive, 1 + (size % 211));
    assert.ok(back.equals(plaintext), `size ${size}`);
    // Every chunk but the last is full; the last one carries the final flag.
    const full = Math.floor(size / CHUNK);
    const expected = encodeHeader(parseHeaderOf(archive)).length + full * (5 + CHUNK + 16) + (5 + (size % CHUNK) + 16);
    assert.is(archive.length, expected, `size ${size}`);
  }
});

test('throughput: 64 MiB sealed and opened (printed, not asserted: the machine is shared)', async () => {
  const plaintext = randomBytes(64 * 1024 * 1024);
  const { header, key } = newArchive(dataKey, slot);
  let t0 = Date.now();
  const out: Buffer[] = [];
  await pipeline(Readable.from([plaintext]), new ArchiveSealer(key, header), async function* (source) {
    for await (const chunk of source) out.push(chunk as Buffer);
  });
  const sealMs = Date.now() - t0;
  t0 = Date.now();
  const back = await open(Buffer.concat(out), 1024 * 1024);
  const openMs = Date.now() - t0;
  assert.ok(back.equals(plaintext));
  console.log(`  64 MiB in 64 KiB chunks: seal ${sealMs} ms (${Math.round(64000 / sealMs)} MiB/s), open ${openMs} ms (${Math.round(64000 / openMs)} MiB/s)`);
});

test('the plaintext does not appear in the archive, and two archives of the same data differ', async () => {
  const plaintext = Buffer.from('the same secret line, repeated. '.repeat(200));
  const first = await seal(plaintext);
  const second = await seal(plaintext);
  assert.is(first.archive.includes(Buffer.from('the same secret line')), false);
  assert.is.not(createHash('sha256').update(first.archive).digest('hex'), createHash('sha256').update(second.archive).digest('hex'));
  assert.is.not(first.header.salt, second.header.salt);
});

test('a flipped byte in any chunk is refused as tampered', async () => {
  const { archive, header } = await seal(randomBytes(4 * CHUNK + 100));
  for (const index of [0, 2, 4]) {
    for (const inChunk of [5, 5 + 500, 5 + CHUNK + 3]) {
      const at = chunkOffset(header, index) + inChunk;
      if (at >= archive.length) continue;
      const damaged = Buffer.from(archive);
      damaged[at]! ^= 0x01;
      await refused(damaged, 'tampered');
    }
  }
});

test('a changed header is refused: fields as damaged, a value changed within its shape as tampered', async () => {
  const { archive, header } = await seal(randomBytes(3 * CHUNK));
  const rest = archive.subarray(encodeHeader(header).length);
  // Another creation time: still a valid header, but every chunk binds the header's digest.
  const redated = encodeHeader({ ...header, createdAt: '2020-01-01T00:00:00.000Z' });
  await refused(Buffer.concat([redated, rest]), 'tampered');
  await refused(Buffer.concat([encodeHeader({ ...header, chunkBytes: 7 }), rest]), 'damaged_header');
  await refused(Buffer.concat([encodeHeader({ ...header, format: 2 as 1 }), rest]), 'unsupported_format');
  const flipped = Buffer.from(archive);
  flipped[12]! ^= 0x20; // inside the JSON text
  try {
    await open(flipped);
    assert.unreachable('a header with a flipped byte was accepted');
  } catch (err) {
    assert.instance(err, BackupArchiveError);
    assert.ok(['damaged_header', 'tampered', 'unsupported_format'].includes((err as BackupArchiveError).problem), (err as Error).message);
  }
});

test('truncation anywhere is refused: mid-chunk, at a chunk boundary, inside the header', async () => {
  const { archive, header } = await seal(randomBytes(4 * CHUNK + 100));
  await refused(archive.subarray(0, chunkOffset(header, 2)), 'truncated');
  await refused(archive.subarray(0, chunkOffset(header, 2) + 40), 'truncated');
  await refused(archive.subarray(0, archive.length - 1), 'truncated');
  await refused(archive.subarray(0, 20), 'truncated');
  await refused(Buffer.alloc(0), 'not_a_backup');
});

test('the final flag cannot be moved: setting it on an earlier full chunk fails that chunk', async () => {
  const { archive, header } = await seal(randomBytes(4 * CHUNK + 100));
  const cut = Buffer.from(archive.subarray(0, chunkOffset(header, 2)));
  cut[chunkOffset(header, 1)] = 1;
  await refused(cut, 'tampered');
});

test('chunks swapped, dropped or repeated are refused', async () => {
  const { archive, header } = await seal(randomBytes(4 * CHUNK + 100));
  const start = encodeHeader(header).length;
  const size = 5 + CHUNK + 16;
  const chunk = (i: number) => archive.subarray(start + i * size, start + (i + 1) * size);
  const head = archive.subarray(0, start);
  const tail = archive.subarray(start + 4 * size);
  await refused(Buffer.concat([head, chunk(1), chunk(0), chunk(2), chunk(3), tail]), 'tampered');
  await refused(Buffer.concat([head, chunk(0), chunk(2), chunk(3), tail]), 'tampered');
  await refused(Buffer.concat([head, chunk(0), chunk(0), chunk(1), chunk(2), chunk(3), tail]), 'tampered');
});

test('a chunk from another archive of the same device is refused', async () => {
  const first = await seal(randomBytes(3 * CHUNK));
  const second = await seal(randomBytes(3 * CHUNK));
  const at = chunkOffset(first.header, 1);
  const size = 5 + CHUNK + 16;
  const mixed = Buffer.concat([first.archive.subarray(0, at), second.archive.subarray(chunkOffset(second.header, 1), chunkOffset(second.header, 1) + size), first.archive.subarray(at + size)]);
  await refused(mixed, 'tampered');
});

test('bytes after the final chunk are refused', async () => {
  const { archive } = await seal(randomBytes(2 * CHUNK + 5));
  await refused(Buffer.concat([archive, Buffer.from([0])]), 'trailing_data');
});

test('another file is not a backup', async () => {
  await refused(Buffer.from('PK\u0003\u0004 a zip file, not a backup at all'), 'not_a_backup');
});

test('only the right recovery key opens the header\'s slot', async () => {
  const { archive } = await seal(randomBytes(100));
  const other = generateRecoveryPhrase();
  try {
    await open(archive, 333, other);
    assert.unreachable('another recovery key opened the archive');
  } catch (err) {
    assert.match((err as Error).message, 'slot wrong-key');
  }
});

test('a key ring restored from the slot: the same recovery key opens it, the new password does, a foreign key is refused', async () => {
  const opened = openRecoverySlot(slot, phrase);
  assert.is(opened.status, 'ok');
  const restoredKey = (opened as { dataKey: DataKey }).dataKey;
  const ring = new KeyRing({ file: path.join(dir, 'restored.json'), logger, scrypt: { N: 2 ** 10, r: 8, p: 1 } });
  assert.equal(await ring.restore(slot, restoredKey, 'the new password here'), { tpmSealed: false });
  assert.ok((await ring.unlockWithRecovery(phrase)).bytes.equals(dataKey));
  assert.ok((await ring.unlockWithPassphrase('the new password here')).bytes.equals(dataKey));
  await rejects(ring.unlockWithPassphrase('a long enough password'), WrongPassphraseError);
  await rejects(ring.restore(slot, restoredKey, 'again'), KeyRingExistsError);
  const other = new KeyRing({ file: path.join(dir, 'foreign.json'), logger });
  await rejects(other.restore(slot, new DataKey(randomBytes(32)), 'a password'), ForeignDataKeyError);
});

function parseHeaderOf(archive: Buffer): ArchiveHeader {
  const length = archive.readUInt32BE(8);
  return JSON.parse(archive.subarray(12, 12 + length).toString('utf8'));
}

test.run();
