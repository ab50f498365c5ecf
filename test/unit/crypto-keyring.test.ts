import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../services/common/logger.js';
import { DataKey } from '../../services/daemon/crypto/data-key.js';
import {
  ForeignDataKeyError,
  InvalidRecoveryPhraseError,
  KeyFileBrokenError,
  KeyRingExistsError,
  KeyRingMissingError,
  WrongPassphraseError,
  WrongRecoveryPhraseError,
} from '../../services/daemon/crypto/errors.js';
import { generateRecoveryPhrase, KeyRing, type KeyRingOptions } from '../../services/daemon/crypto/keyring.js';
import { entropyFromRecoveryPhrase } from '../../services/daemon/crypto/recovery-phrase.js';
import type { SealedBlob, SecretSealer } from '../../services/daemon/crypto/tpm.js';
import { rejects } from '../support/assertions.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-keyring-'));
const FAST_SCRYPT = { N: 2 ** 10, r: 8, p: 1 };
const logLines: string[] = [];
const logger = createLogger({ service: 'test', level: 'debug', write: (line) => logLines.push(line) });
let fileCount = 0;

function keyRing(file: string, extra: Partial<KeyRingOptions> = {}): KeyRing {
  return new KeyRing({ file, logger, scrypt: FAST_SCRYPT, ...extra });
}

function newFile(): string {
  return path.join(dir, `keyring-${++fileCount}.json`);
}

/** Replaces one word of a phrase. */
function withWord(phrase: string, index: number, word: string): string {
  const words = phrase.split(' ');
  words[index] = word;
  return words.join(' ');
}

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('create, then the passphrase and the recovery phrase both unwrap the same data key', async () => {
  const file = newFile();
  const ring = keyRing(file);
  assert.is(await ring.exists(), false);
  const created = await ring.create('correct horse battery staple');
  assert.is(created.tpmSealed, false);
  assert.is(created.recoveryPhrase.split(' ').length, 24);
  assert.is(await ring.exists(), true);

  const viaPassphrase = await ring.unlockWithPassphrase('correct horse battery staple');
  const viaRecovery = await keyRing(file).unlockWithRecovery(created.recoveryPhrase);
  assert.ok(viaPassphrase.bytes.equals(created.dataKey.bytes));
  assert.ok(viaRecovery.bytes.equals(created.dataKey.bytes));
  assert.is(await ring.unlockWithTpm(), undefined, 'no TPM configured');

  const doc = JSON.parse(readFileSync(file, 'utf8'));
  assert.is(doc.format, 1);
  assert.equal(doc.passphrase.params, FAST_SCRYPT);
  assert.is(statSync(file).mode & 0o777, 0o600);
});

test('nothing secret reaches the file or the log', async () => {
  const file = newFile();
  const passphrase = 'a passphrase nobody should see';
  const { dataKey, recoveryPhrase } = await keyRing(file).create(passphrase);
  const volume = await keyRing(file).volumePassphrase(dataKey, 'control');
  const text = readFileSync(file, 'utf8');
  const log = logLines.join('');
  for (const secret of [dataKey.bytes.toString('base64'), dataKey.bytes.toString('hex'), passphrase, recoveryPhrase.split(' ').slice(0, 3).join(' '), volume.toString()]) {
    assert.not.ok(text.includes(secret), 'secret in the key file');
    assert.not.ok(log.includes(secret), 'secret in the log');
  }
  assert.is(JSON.stringify({ dataKey }), '{"dataKey":"[DataKey]"}');
});

test('a wrong passphrase is a WrongPassphraseError (401)', async () => {
  const file = newFile();
  await keyRing(file).create('right');
  const err = await rejects(keyRing(file).unlockWithPassphrase('wrong'), WrongPassphraseError);
  assert.is(err.status, 401);
});

test('a recovery phrase with a mistyped word is rejected, naming the word', async () => {
  const file = newFile();
  const { recoveryPhrase } = await keyRing(file).create('pw');
  const typo = withWord(recoveryPhrase, 4, 'abandn');
  const err = await rejects(keyRing(file).unlockWithRecovery(typo), InvalidRecoveryPhraseError);
  assert.is(err.status, 400);
  assert.equal(err.details, { reason: 'unknown_word', unknownWords: [{ position: 5, word: 'abandn' }] });
  assert.match(err.message, /word 5 "abandn" is not in the BIP39 English word list/);

  const short = recoveryPhrase.split(' ').slice(0, 23).join(' ');
  assert.equal((await rejects(keyRing(file).unlockWithRecovery(short), InvalidRecoveryPhraseError)).details, { reason: 'word_count', expected: 24, got: 23 });
});

test('a word swapped for another valid word fails the checksum', async () => {
  const { recoveryPhrase } = await keyRing(newFile()).create('pw');
  // One replacement in 256 passes the 8-bit checksum by chance: take the first that fails it.
  const candidates = ['zoo', 'abandon', 'ability', 'able', 'about', 'above', 'absent', 'absorb'].filter((w) => w !== recoveryPhrase.split(' ')[0]);
  let err: InvalidRecoveryPhraseError | undefined;
  for (const word of candidates) {
    try {
      entropyFromRecoveryPhrase(withWord(recoveryPhrase, 0, word));
    } catch (caught) {
      err = caught as InvalidRecoveryPhraseError;
      break;
    }
  }
  assert.instance(err, InvalidRecoveryPhraseError);
  assert.equal(err!.details, { reason: 'checksum' });
});

test('spacing and letter case of a recovery phrase do not matter', async () => {
  const file = newFile();
  const { dataKey, recoveryPhrase } = await keyRing(file).create('pw');
  const sloppy = `  ${recoveryPhrase.toUpperCase().split(' ').join('   ')}\n`;
  assert.ok((await keyRing(file).unlockWithRecovery(sloppy)).bytes.equals(dataKey.bytes));
});

test('a valid phrase from elsewhere is a WrongRecoveryPhraseError (401)', async () => {
  const file = newFile();
  await keyRing(file).create('pw');
  const err = await rejects(keyRing(file).unlockWithRecovery(generateRecoveryPhrase()), WrongRecoveryPhraseError);
  assert.is(err.status, 401);
});

test('create accepts a recovery phrase shown to the admin beforehand', async () => {
  const file = newFile();
  const phrase = generateRecoveryPhrase();
  const created = await keyRing(file).create('pw', phrase);
  assert.is(created.recoveryPhrase, phrase);
  assert.ok((await keyRing(file).unlockWithRecovery(phrase)).bytes.equals(created.dataKey.bytes));
  await rejects(keyRing(newFile()).create('pw', withWord(phrase, 0, 'nope')), InvalidRecoveryPhraseError);
});

test('create refuses when a key ring exists, and unlocking before create says so', async () => {
  const file = newFile();
  await rejects(keyRing(file).unlockWithPassphrase('pw'), KeyRingMissingError);
  await keyRing(file).create('pw');
  const before = readFileSync(file, 'utf8');
  await rejects(keyRing(file).create('other'), KeyRingExistsError);
  assert.is(readFileSync(file, 'utf8'), before);
});

test('changePassphrase keeps the data key and retires the old passphrase', async () => {
  const file = newFile();
  const { dataKey, recoveryPhrase } = await keyRing(file).create('old');
  await keyRing(file).changePassphrase(dataKey, 'new');
  assert.ok((await keyRing(file).unlockWithPassphrase('new')).bytes.equals(dataKey.bytes));
  await rejects(keyRing(file).unlockWithPassphrase('old'), WrongPassphraseError);
  assert.ok((await keyRing(file).unlockWithRecovery(recoveryPhrase)).bytes.equals(dataKey.bytes), 'recovery untouched');
});

test('the scrypt parameters are per wrap: a change of defaults applies from the next passphrase change', async () => {
  const file = newFile();
  const { dataKey } = await keyRing(file).create('pw');
  const stronger = { N: 2 ** 11, r: 8, p: 1 };
  assert.ok((await keyRing(file, { scrypt: stronger }).unlockWithPassphrase('pw')).bytes.equals(dataKey.bytes));
  await keyRing(file, { scrypt: stronger }).changePassphrase(dataKey, 'pw2');
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).passphrase.params, stronger);
  assert.ok((await keyRing(file).unlockWithPassphrase('pw2')).bytes.equals(dataKey.bytes));
});

test('rotateRecovery invalidates the old phrase', async () => {
  const file = newFile();
  const { dataKey, recoveryPhrase } = await keyRing(file).create('pw');
  const fresh = await keyRing(file).rotateRecovery(dataKey);
  assert.is.not(fresh, recoveryPhrase);
  assert.ok((await keyRing(file).unlockWithRecovery(fresh)).bytes.equals(dataKey.bytes));
  await rejects(keyRing(file).unlockWithRecovery(recoveryPhrase), WrongRecoveryPhraseError);
});

test('writers refuse a data key from another key ring', async () => {
  const file = newFile();
  await keyRing(file).create('pw');
  const before = readFileSync(file, 'utf8');
  const stranger = new DataKey(Buffer.alloc(32, 7));
  await rejects(keyRing(file).changePassphrase(stranger, 'x'), ForeignDataKeyError);
  await rejects(keyRing(file).volumePassphrase(stranger, 'control'), ForeignDataKeyError);
  assert.is(readFileSync(file, 'utf8'), before);
});

test('volumePassphrase is stable across instances and distinct per volume', async () => {
  const file = newFile();
  const { dataKey } = await keyRing(file).create('pw');
  const control = await keyRing(file).volumePassphrase(dataKey, 'control');
  const bootstrap = await keyRing(file).volumePassphrase(dataKey, 'bootstrap');
  assert.match(control.toString(), /^[A-Za-z0-9_-]{43}$/);
  assert.not.ok(control.equals(bootstrap));
  // A "restart": a new instance and a data key unwrapped again from the file.
  const reopened = await keyRing(file).unlockWithPassphrase('pw');
  assert.ok((await keyRing(file).volumePassphrase(reopened, 'control')).equals(control));
  assert.ok((await keyRing(file).volumePassphrase(reopened, 'bootstrap')).equals(bootstrap));
});

test('concurrent first requests for one volume agree on one passphrase', async () => {
  const file = newFile();
  const ring = keyRing(file);
  const { dataKey } = await ring.create('pw');
  const [a, b, c] = await Promise.all([ring.volumePassphrase(dataKey, 'app-x'), ring.volumePassphrase(dataKey, 'app-x'), ring.volumePassphrase(dataKey, 'app-y')]);
  assert.ok(a!.equals(b!));
  assert.ok((await ring.volumePassphrase(dataKey, 'app-y')).equals(c!), 'the parallel write for app-y was not lost');
});

test('forgetVolume drops the passphrase for good', async () => {
  const file = newFile();
  const { dataKey } = await keyRing(file).create('pw');
  const first = await keyRing(file).volumePassphrase(dataKey, 'app-gone');
  await keyRing(file).forgetVolume(dataKey, 'app-gone');
  assert.not.ok((await keyRing(file).volumePassphrase(dataKey, 'app-gone')).equals(first));
});

/** Tampering helpers: each returns the file's text after the change. */
function tamper(file: string, change: (doc: Record<string, any>) => void): string {
  const doc = JSON.parse(readFileSync(file, 'utf8'));
  change(doc);
  const text = JSON.stringify(doc);
  writeFileSync(file, text);
  return text;
}

function flipBase64(value: string): string {
  const bytes = Buffer.from(value, 'base64');
  bytes[0]! ^= 1;
  return bytes.toString('base64');
}

test('a damaged wrap is a broken key file, not a wrong passphrase; nothing rewrites it', async () => {
  const file = newFile();
  const { dataKey } = await keyRing(file).create('pw');
  const text = tamper(file, (doc) => (doc.passphrase.ciphertext = flipBase64(doc.passphrase.ciphertext)));
  const err = await rejects(keyRing(file).unlockWithPassphrase('pw'), KeyFileBrokenError);
  assert.is(err.code, 'key_file_broken');
  assert.match(err.message, /passphrase wrap fails its authentication tag/);
  await rejects(keyRing(file).unlockWithPassphrase('wrong'), WrongPassphraseError);
  // The recovery phrase still opens a file whose passphrase wrap is damaged; writers then fix that slot.
  assert.is(readFileSync(file, 'utf8'), text);
  await keyRing(file).changePassphrase(dataKey, 'pw');
  assert.ok((await keyRing(file).unlockWithPassphrase('pw')).bytes.equals(dataKey.bytes));
});

test('a damaged volume entry is a broken key file', async () => {
  const file = newFile();
  const { dataKey } = await keyRing(file).create('pw');
  await keyRing(file).volumePassphrase(dataKey, 'control');
  const text = tamper(file, (doc) => (doc.volumes.control.tag = flipBase64(doc.volumes.control.tag)));
  await rejects(keyRing(file).volumePassphrase(dataKey, 'control'), KeyFileBrokenError);
  assert.is(readFileSync(file, 'utf8'), text);
});

test('a file that is not JSON, or of another format, is broken and never overwritten', async () => {
  const file = newFile();
  const { dataKey } = await keyRing(file).create('pw');
  const original = readFileSync(file, 'utf8');
  const cases: [string, string | ((doc: Record<string, any>) => void), RegExp][] = [
    ['truncated', original.slice(0, 100), /not valid JSON/],
    ['future format', (doc) => (doc.format = 2), /unsupported format 2/],
    ['missing salt', (doc) => delete doc.passphrase.salt, /passphrase\.salt is missing or malformed/],
    ['N not a power of two', (doc) => (doc.passphrase.params.N = 1000), /N must be a power of two/],
  ];
  for (const [label, change, message] of cases) {
    writeFileSync(file, original);
    const text = typeof change === 'string' ? (writeFileSync(file, change), change) : tamper(file, change);
    for (const attempt of [
      () => keyRing(file).unlockWithPassphrase('pw'),
      () => keyRing(file).unlockWithRecovery(generateRecoveryPhrase()),
      () => keyRing(file).unlockWithTpm(),
      () => keyRing(file).changePassphrase(dataKey, 'x'),
      () => keyRing(file).reseal(dataKey),
      () => keyRing(file).volumePassphrase(dataKey, 'control'),
      () => keyRing(file).create('pw'),
    ]) {
      const err = await attempt().then(() => undefined, (caught: Error) => caught);
      assert.ok(err instanceof KeyFileBrokenError || err instanceof KeyRingExistsError || err instanceof WrongRecoveryPhraseError, `${label}: ${err}`);
      if (err instanceof KeyFileBrokenError) assert.match(err.message, message, label);
    }
    assert.is(readFileSync(file, 'utf8'), text, `${label}: file unchanged`);
  }
});

/** Stands in for the TPM: keeps sealed secrets in memory; "PCRs change" when told. */
class FakeSealer implements SecretSealer {
  private secrets = new Map<string, Buffer>();
  pcrsChanged = false;
  broken = false;

  async seal(secret: Uint8Array): Promise<SealedBlob> {
    if (this.broken) throw new Error('no TPM');
    const id = String(this.secrets.size + 1);
    this.secrets.set(id, Buffer.from(secret));
    this.pcrsChanged = false;
    return { pcrs: 'sha256:7', public: Buffer.from(id).toString('base64'), private: 'AA==' };
  }

  async unseal(blob: SealedBlob): Promise<Buffer | undefined> {
    if (this.broken) throw new Error('no TPM');
    if (this.pcrsChanged) return undefined;
    return Buffer.from(this.secrets.get(Buffer.from(blob.public, 'base64').toString())!);
  }
}

test('with a sealer: unlock by TPM, fall back when the PCRs change, reseal', async () => {
  const file = newFile();
  const sealer = new FakeSealer();
  const created = await keyRing(file, { tpm: sealer }).create('pw');
  assert.is(created.tpmSealed, true);
  assert.ok((await keyRing(file, { tpm: sealer }).unlockWithTpm())!.bytes.equals(created.dataKey.bytes));

  sealer.pcrsChanged = true;
  assert.is(await keyRing(file, { tpm: sealer }).unlockWithTpm(), undefined);
  const dataKey = await keyRing(file, { tpm: sealer }).unlockWithPassphrase('pw');
  assert.is(await keyRing(file, { tpm: sealer }).reseal(dataKey), true);
  assert.ok((await keyRing(file, { tpm: sealer }).unlockWithTpm())!.bytes.equals(dataKey.bytes));

  sealer.broken = true;
  assert.is(await keyRing(file, { tpm: sealer }).unlockWithTpm(), undefined);
  const before = readFileSync(file, 'utf8');
  assert.is(await keyRing(file, { tpm: sealer }).reseal(dataKey), false);
  assert.is(readFileSync(file, 'utf8'), before, 'a failed reseal leaves the file alone');
});

test('a sealer that fails at setup: created without the TPM wrap', async () => {
  const file = newFile();
  const sealer = new FakeSealer();
  sealer.broken = true;
  const created = await keyRing(file, { tpm: sealer }).create('pw');
  assert.is(created.tpmSealed, false);
  assert.is(JSON.parse(readFileSync(file, 'utf8')).tpm, undefined);
});

test('DataKey wipes its bytes', () => {
  const key = new DataKey(Buffer.alloc(32, 1));
  const bytes = key.bytes;
  key.wipe();
  assert.ok(bytes.equals(Buffer.alloc(32)));
  assert.is(key.wiped, true);
  assert.throws(() => key.bytes, /wiped/);
  assert.throws(() => new DataKey(Buffer.alloc(16)), /32 bytes/);
});

test.run();
