// A full disk under the store, the key ring and the disk-space watch, on a real small tmpfs (no
// fakes of ENOSPC): a refused commit is a typed 507 that leaves the file as it was, the next commit
// after space is freed succeeds without a reopen (no latch), the key ring's change is all or
// nothing around its beforeReplace step, and the watch names the state and clears it by itself.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DiskFullError } from '../../services/common/errors.js';
import { createLogger } from '../../services/common/logger.js';
import { KeyRing } from '../../services/daemon/crypto/keyring.js';
import { ControlStore, type WriteOutcome } from '../../services/daemon/store/store.js';
import { DiskSpaceWatch, type DiskSpaceStatus } from '../../services/daemon/system/disk-space.js';
import { fillFileSystem, mountTmpfs } from '../support/full-disk.js';
import { waitFor } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-full-disk-store-'));
const mnt = path.join(dir, 'tmpfs');
const logLines: any[] = [];
const logger = createLogger({ service: 'test', level: 'debug', write: (line) => void logLines.push(JSON.parse(line)) });
const FAST_SCRYPT = { N: 2 ** 10, r: 8, p: 1 };

interface Doc {
  items: string[];
}

/** Fills the tmpfs; resolves with the filler's path. */
async function fill(name = 'filler'): Promise<string> {
  const file = path.join(mnt, name);
  await fillFileSystem(file);
  return file;
}

const freeBytes = async () => {
  const fs = await statfs(mnt);
  return fs.bfree * fs.bsize;
};

test.before(() => {
  mkdirSync(mnt);
  mountTmpfs(mnt, '512k');
});

test.after(() => {
  try {
    execFileSync('umount', [mnt]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('store: a commit refused for space is a 507 disk_full, the file keeps the last rev, and the next commit after freeing space succeeds without a reopen', async () => {
  const outcomes: WriteOutcome[] = [];
  const storeDir = path.join(mnt, 'store');
  const open_ = () => ControlStore.open<Doc>({ dir: storeDir, logger, schemaVersion: 1, migrations: [], initial: () => ({ items: [] }), onWrite: (o) => outcomes.push(o) });
  const store = await open_();
  try {
    assert.is(await store.commit((d) => void d.items.push('before')), 1);
    const filler = await fill();
    const big = 'x'.repeat(32 * 1024); // more than the few bytes a page-rounded tmpfs may still hold
    const refused = await store.commit((d) => void d.items.push(big)).then(
      () => undefined,
      (err) => err,
    );
    assert.instance(refused, DiskFullError);
    assert.is(refused.status, 507);
    assert.is(refused.code, 'disk_full');
    const free = await freeBytes();
    assert.ok(refused.message.startsWith(`state disk full: ${free} bytes free`), refused.message);
    assert.equal(outcomes.at(-1), { ok: false, noSpace: true, bytes: outcomes.at(-1)!.bytes });
    // Memory and file agree on rev 1; no temp file is left behind.
    assert.is(store.rev, 1);
    assert.equal(JSON.parse(readFileSync(path.join(storeDir, 'control.json'), 'utf8')).data, { items: ['before'] });
    assert.equal(readdirSync(storeDir).filter((n) => n.endsWith('.tmp')), []);
    // Still full: refused again, not latched into some other error.
    assert.is((await store.commit((d) => void d.items.push(big)).catch((err) => err)).code, 'disk_full');

    await rm(filler);
    assert.is(await store.commit((d) => void d.items.push('after')), 2);
    assert.equal(outcomes.at(-1)?.ok, true);
  } finally {
    await store.close();
  }
  const reopened = await open_();
  try {
    assert.is(reopened.rev, 2);
    assert.equal(reopened.data.items, ['before', 'after']);
  } finally {
    await reopened.close();
  }
});

test('key ring: a change whose beforeReplace fails leaves the old passphrase working and logs the failure, not the change', async () => {
  const file = path.join(mnt, 'keyring.json');
  const ring = new KeyRing({ file, logger, scrypt: FAST_SCRYPT });
  const { dataKey } = await ring.create('old-pass');
  const before = readFileSync(file, 'utf8');
  const seen = logLines.length;
  const err = await ring.changePassphrase(dataKey, 'new-pass', async () => {
    throw new DiskFullError(0);
  }).catch((e) => e);
  assert.instance(err, DiskFullError);
  assert.is(readFileSync(file, 'utf8'), before);
  assert.equal(readdirSync(mnt).filter((n) => n.startsWith('.keyring.json.')), []);
  (await ring.unlockWithPassphrase('old-pass')).wipe();
  assert.is((await ring.unlockWithPassphrase('new-pass').catch((e) => e)).status, 401);
  const messages = logLines.slice(seen).map((l) => l.msg);
  assert.ok(messages.includes('admin passphrase change failed; the old passphrase still works'), messages.join(' | '));
  assert.not.ok(messages.includes('admin passphrase changed'));

  // The disk itself full: the staged write is refused before anything is replaced.
  const filler = await fill('filler-keyring');
  const full = await ring.changePassphrase(dataKey, 'new-pass').catch((e) => e);
  assert.is(full.code, 'ENOSPC');
  assert.is(readFileSync(file, 'utf8'), before);
  (await ring.unlockWithPassphrase('old-pass')).wipe();
  await rm(filler);

  // With room, beforeReplace runs and then the new passphrase is the one that works.
  let recorded = false;
  await ring.changePassphrase(dataKey, 'new-pass', async () => void (recorded = true));
  assert.ok(recorded);
  (await ring.unlockWithPassphrase('new-pass')).wipe();
  assert.is((await ring.unlockWithPassphrase('old-pass').catch((e) => e)).status, 401);
  assert.ok(logLines.slice(seen).some((l) => l.msg === 'admin passphrase changed'));
  dataKey.wipe();
  await rm(file);
});

test('disk-space watch: a refused write names the state with the free bytes; freeing space clears it by itself', async () => {
  const changes: DiskSpaceStatus[] = [];
  const watch = new DiskSpaceWatch({ stateDir: mnt, logger, onChange: (s) => changes.push(s), intervalMs: 60_000 });
  await watch.start();
  try {
    assert.is(watch.status.full, false);
    const filler = await fill('filler-watch');
    watch.noteWrite({ ok: false, noSpace: true, bytes: 4096 });
    const full = await waitFor(() => changes.find((c) => c.full), 5000, 'full reported');
    assert.is(full.reason, `state disk full: ${full.freeBytes} bytes free`);
    assert.ok(full.freeBytes! < 64 * 1024);
    const view = await watch.view();
    assert.is(view.full, true);
    const other = view.usage.find((u) => u.name === 'other')!;
    const fillerSize = (await statfs(mnt)).bsize; // at least one block of it
    assert.ok(other.bytes >= fillerSize, JSON.stringify(view.usage));
    await rm(filler);
    // No write needed: the watch polls while full (every second) and sees the room.
    const cleared = await waitFor(() => changes.find((c, i) => i > changes.indexOf(full) && !c.full), 5000, 'cleared');
    assert.is(cleared.reason, undefined);
    assert.ok(cleared.freeBytes! > 256 * 1024);
  } finally {
    await watch.stop();
  }
});

test.run();
