// The TPM path against a real software TPM (swtpm) and the real tpm2-tools.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../services/common/logger.js';
import { KeyRing } from '../../services/daemon/crypto/keyring.js';
import { Tpm } from '../../services/daemon/crypto/tpm.js';
import { startSwtpm, type SoftTpm } from '../support/swtpm.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-crypto-tpm-'));
const workDir = path.join(dir, 'work');
const logger = createLogger({ service: 'test', level: 'error' });
const FAST_SCRYPT = { N: 2 ** 10, r: 8, p: 1 };
let swtpm: SoftTpm | undefined;

function tpm(tcti = swtpm!.tcti): Tpm {
  return new Tpm({ tcti, workDir, logger });
}

test.before(async () => {
  swtpm = await startSwtpm();
  mkdirSync(workDir, { mode: 0o700 });
});

test.after(async () => {
  await swtpm?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('seal and unseal round trip, leaving no temp files behind', async () => {
  assert.is(await tpm().available(), true);
  const secret = Buffer.from('0123456789abcdef0123456789abcdef');
  const blob = await tpm().seal(secret);
  assert.is(blob.pcrs, 'sha256:7');
  assert.ok(Buffer.from(blob.public, 'base64').length > 0 && Buffer.from(blob.private, 'base64').length > 0);
  const unsealed = await tpm().unseal(JSON.parse(JSON.stringify(blob)));
  assert.ok(unsealed?.equals(secret));
  assert.equal(readdirSync(workDir), []);
});

test('many operations in a row do not exhaust the TPM object slots', async () => {
  const t = tpm();
  const blob = await t.seal(Buffer.alloc(32, 3));
  for (let i = 0; i < 6; i++) assert.ok((await t.unseal(blob))?.equals(Buffer.alloc(32, 3)), `round ${i}`);
});

test('after PCR 7 changes, unseal returns undefined; a new seal works again', async () => {
  const blob = await tpm().seal(Buffer.alloc(32, 1));
  await swtpm!.extendPcr7();
  assert.is(await tpm().unseal(blob), undefined);
  const again = await tpm().seal(Buffer.alloc(32, 2));
  assert.ok((await tpm().unseal(again))?.equals(Buffer.alloc(32, 2)));
});

test('a blob that is not from this TPM throws rather than passing for a PCR change', async () => {
  const blob = await tpm().seal(Buffer.alloc(32, 1));
  const damaged = Buffer.from(blob.private, 'base64');
  damaged[damaged.length - 1]! ^= 0xff;
  try {
    await tpm().unseal({ ...blob, private: damaged.toString('base64') });
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'tpm_failed');
  }
});

test('KeyRing: created with the TPM, a new instance (daemon restart) unlocks by itself', async () => {
  const file = path.join(dir, 'restart.json');
  const created = await new KeyRing({ file, logger, scrypt: FAST_SCRYPT, tpm: tpm() }).create('pw');
  assert.is(created.tpmSealed, true);
  const afterRestart = await new KeyRing({ file, logger, scrypt: FAST_SCRYPT, tpm: tpm() }).unlockWithTpm();
  assert.ok(afterRestart?.bytes.equals(created.dataKey.bytes));
});

test('KeyRing: changed PCRs fall back to the passphrase, which reseals', async () => {
  const file = path.join(dir, 'reseal.json');
  const created = await new KeyRing({ file, logger, scrypt: FAST_SCRYPT, tpm: tpm() }).create('pw');
  await swtpm!.extendPcr7();
  const ring = new KeyRing({ file, logger, scrypt: FAST_SCRYPT, tpm: tpm() });
  assert.is(await ring.unlockWithTpm(), undefined);
  const dataKey = await ring.unlockWithPassphrase('pw');
  assert.is(await ring.reseal(dataKey), true);
  const next = await new KeyRing({ file, logger, scrypt: FAST_SCRYPT, tpm: tpm() }).unlockWithTpm();
  assert.ok(next?.bytes.equals(created.dataKey.bytes));
});

test('no TPM (nothing listens on the TCTI): unlockWithTpm is undefined, create works without it', async () => {
  const absent = tpm('swtpm:host=127.0.0.1,port=1');
  assert.is(await absent.available(), false);
  const file = path.join(dir, 'no-tpm.json');
  const ring = new KeyRing({ file, logger, scrypt: FAST_SCRYPT, tpm: absent });
  const created = await ring.create('pw');
  assert.is(created.tpmSealed, false);
  assert.is(await ring.unlockWithTpm(), undefined);
  assert.is(await ring.reseal(created.dataKey), false);
  assert.ok((await ring.unlockWithPassphrase('pw')).bytes.equals(created.dataKey.bytes));

  // A key ring sealed on a TPM that has since gone away: undefined too, not an error.
  const sealedFile = path.join(dir, 'tpm-gone.json');
  await new KeyRing({ file: sealedFile, logger, scrypt: FAST_SCRYPT, tpm: tpm() }).create('pw');
  assert.is(await new KeyRing({ file: sealedFile, logger, scrypt: FAST_SCRYPT, tpm: absent }).unlockWithTpm(), undefined);
});

test.run();
