// Encrypted volumes against the real gocryptfs and FUSE.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../services/common/logger.js';
import { KeyRing } from '../../services/daemon/crypto/keyring.js';
import { InvalidVolumeNameError, VolumeBusyError, VolumeError, VolumeExistsError, VolumeModeConflictError, WrongVolumePassphraseError } from '../../services/daemon/volumes/errors.js';
import { VolumeManager } from '../../services/daemon/volumes/volumes.js';
import { rejects } from '../support/assertions.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-volumes-'));
const root = path.join(dir, 'volumes');
const logger = createLogger({ service: 'test', level: 'error' });
const manager = () => new VolumeManager({ root, logger });
const PASS = 'Rk3XGzv0a5f2-example-volume-passphrase_0123';

/** Mount table lines for one mount point: more than one would be a stacked second mount. */
function mountLines(mountpoint: string): number {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((line) => line.split(' ')[4] === mountpoint).length;
}

/** gocryptfs processes serving one cipher folder. */
function gocryptfsPids(cipherDir: string): number[] {
  const ps = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return ps
    .split('\n')
    .filter((line) => /\bgocryptfs\b/.test(line) && line.includes(` ${cipherDir} `))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}

test.after(async () => {
  // Whatever failed above, leave no mount behind.
  for (const volume of await manager().list().catch(() => [])) {
    if (!volume.mounted) continue;
    try {
      execFileSync('fusermount', ['-u', '-z', volume.mountpoint]);
    } catch (err) {
      console.error(`could not unmount ${volume.mountpoint}: ${(err as Error).message}`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

test('names: bootstrap, control and app-<name> only', async () => {
  for (const good of ['bootstrap', 'control', 'app-nextcloud', 'app-a1-b2']) assert.ok(manager().mountpoint(good).endsWith(`/${good}/mnt`));
  for (const bad of ['foo', 'app-', 'app', 'App-x', 'app-X', 'app-a_b', 'app--x', 'app-x-', '../control', 'app-x/..', 'control ', 'control\n', '', `app-${'a'.repeat(60)}`]) {
    const err = await rejects(manager().status(bad), InvalidVolumeNameError);
    assert.is(err.status, 400);
    assert.throws(() => manager().mountpoint(bad), (e: unknown) => e instanceof InvalidVolumeNameError);
  }
  await rejects(manager().create('app-x/../../etc', PASS), InvalidVolumeNameError);
});

test('create, mount read-write, write, unmount, mount read-only, read; writing fails with EROFS', async () => {
  const volumes = manager();
  const created = await volumes.create('control', PASS);
  assert.equal(created, { name: 'control', exists: true, mounted: false, readOnly: false, stale: false, mountpoint: path.join(root, 'control', 'mnt') });
  await rejects(volumes.create('control', PASS), VolumeExistsError);

  const rw = await volumes.mount('control', Buffer.from(PASS), { readOnly: false });
  assert.is(rw.mounted, true);
  assert.is(rw.readOnly, false);
  await writeFile(path.join(rw.mountpoint, 'hello.txt'), 'persisted');
  await volumes.unmount('control');
  assert.is((await volumes.status('control')).mounted, false);
  assert.not.ok(existsSync(path.join(rw.mountpoint, 'hello.txt')), 'plain files are gone after unmount');

  const ro = await volumes.mount('control', PASS, { readOnly: true });
  assert.is(ro.readOnly, true);
  assert.is(await readFile(path.join(ro.mountpoint, 'hello.txt'), 'utf8'), 'persisted');
  try {
    await writeFile(path.join(ro.mountpoint, 'other.txt'), 'nope');
    assert.unreachable('write on a read-only volume');
  } catch (err) {
    assert.is((err as NodeJS.ErrnoException).code, 'EROFS');
  }
  await volumes.unmount('control');
  assert.equal(await volumes.unmount('control').then((s) => s.mounted), false, 'unmounting twice is fine');
});

test('app volumes let in other users and groups (Podman, the containers), with file permissions checked; the control volume does not', async () => {
  const volumes = manager();
  // As the image runs it: root in group piccolo mounts, Podman (root:root) and container users read.
  // Started in the file's folder: a container reaches its volume through a bind mount, never
  // through the 0700 folders above the mount point.
  const asOther = (ids: string[], file: string) => {
    try {
      execFileSync('setpriv', [...ids, '--clear-groups', 'cat', path.basename(file)], { cwd: path.dirname(file), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      return 'read';
    } catch (err) {
      return /Permission denied/.test(String((err as { stderr?: string }).stderr)) ? 'denied' : `failed: ${(err as Error).message}`;
    }
  };
  await volumes.create('app-shared', PASS);
  const app = await volumes.mount('app-shared', PASS, { readOnly: false });
  await writeFile(path.join(app.mountpoint, 'open.txt'), 'for all', { mode: 0o644 });
  await writeFile(path.join(app.mountpoint, 'private.txt'), 'owner only', { mode: 0o600 });
  execFileSync('chmod', ['0755', app.mountpoint]);
  assert.is(asOther(['--regid=1234'], path.join(app.mountpoint, 'open.txt')), 'read', 'root in another group');
  assert.is(asOther(['--reuid=1234', '--regid=1234'], path.join(app.mountpoint, 'open.txt')), 'read', 'another user');
  assert.is(asOther(['--reuid=1234', '--regid=1234'], path.join(app.mountpoint, 'private.txt')), 'denied', 'file permissions still apply');
  await volumes.unmount('app-shared');

  const control = await volumes.mount('control', PASS, { readOnly: false });
  await writeFile(path.join(control.mountpoint, 'open.txt'), 'daemon only', { mode: 0o644 });
  execFileSync('chmod', ['0755', control.mountpoint]);
  assert.is(asOther(['--regid=1234'], path.join(control.mountpoint, 'open.txt')), 'denied', 'the control volume is the daemon own');
  await volumes.unmount('control');
  rmSync(path.join(root, 'app-shared'), { recursive: true, force: true });
});

test('a restarted daemon takes the mount over: no second FUSE process, other mode refused', async () => {
  const first = manager();
  await first.mount('control', PASS, { readOnly: false });
  const mountpoint = first.mountpoint('control');
  const cipher = path.join(root, 'control', 'cipher');
  assert.is(mountLines(mountpoint), 1);
  const pids = gocryptfsPids(cipher);
  assert.is(pids.length, 1);

  const second = manager();
  assert.is((await second.status('control')).mounted, true);
  const taken = await second.mount('control', PASS, { readOnly: false });
  assert.is(taken.mounted, true);
  assert.is(mountLines(mountpoint), 1);
  assert.equal(gocryptfsPids(cipher), pids);

  const err = await rejects(second.mount('control', PASS, { readOnly: true }), VolumeModeConflictError);
  assert.is(err.status, 409);
  assert.is(mountLines(mountpoint), 1);
  await second.unmount('control');
});

test('a mount made by a daemon process that has exited survives, and the next one takes it over', async () => {
  // The "old daemon": a separate Node process that mounts and exits.
  const script = path.join(dir, 'old-daemon.mts');
  const module = path.resolve('services/daemon/volumes/volumes.ts');
  const loggerModule = path.resolve('services/common/logger.ts');
  writeFileSync(
    script,
    `import { VolumeManager } from ${JSON.stringify(module)};
     import { createLogger } from ${JSON.stringify(loggerModule)};
     const volumes = new VolumeManager({ root: ${JSON.stringify(root)}, logger: createLogger({ service: 'old', level: 'error' }) });
     await volumes.mount('control', ${JSON.stringify(PASS)}, { readOnly: true });`,
  );
  execFileSync(process.execPath, ['--import', 'tsx', script], { stdio: 'inherit' });

  const volumes = manager();
  const status = await volumes.status('control');
  assert.is(status.mounted, true);
  assert.is(status.readOnly, true);
  assert.is(await readFile(path.join(status.mountpoint, 'hello.txt'), 'utf8'), 'persisted');
  const pids = gocryptfsPids(path.join(root, 'control', 'cipher'));
  await volumes.mount('control', PASS, { readOnly: true });
  assert.equal(gocryptfsPids(path.join(root, 'control', 'cipher')), pids);
  assert.is(mountLines(status.mountpoint), 1);
  await volumes.unmount('control');
});

test('a wrong passphrase is a typed error and nothing gets mounted', async () => {
  const volumes = manager();
  const err = await rejects(volumes.mount('control', 'not the passphrase', { readOnly: false }), WrongVolumePassphraseError);
  assert.instance(err, VolumeError);
  assert.is(err.reason, 'wrong_passphrase');
  assert.is((await volumes.status('control')).mounted, false);
  assert.is(mountLines(volumes.mountpoint('control')), 0);
});

test('a missing cipher folder or a damaged gocryptfs.conf fails with the reason', async () => {
  const volumes = manager();
  assert.is((await rejects(volumes.mount('app-never-made', PASS, { readOnly: false }), VolumeError)).reason, 'missing');

  await volumes.create('app-damaged', PASS);
  writeFileSync(path.join(root, 'app-damaged', 'cipher', 'gocryptfs.conf'), '{ not json');
  const err = await rejects(volumes.mount('app-damaged', PASS, { readOnly: false }), VolumeError);
  assert.is(err.reason, 'config_unreadable');
  assert.is(err.status, 503);
  assert.is((await volumes.status('app-damaged')).mounted, false);
});

test('a busy mount refuses to unmount with a clear error, then unmounts when released', async () => {
  const volumes = manager();
  const { mountpoint } = await volumes.mount('control', PASS, { readOnly: false });
  const handle = await open(path.join(mountpoint, 'hello.txt'), 'r');
  try {
    const err = await rejects(volumes.unmount('control'), VolumeBusyError);
    assert.is(err.status, 409);
    assert.is((await volumes.status('control')).mounted, true);
  } finally {
    await handle.close();
  }
  assert.is((await volumes.unmount('control')).mounted, false);
});

test('a mount whose gocryptfs died is seen as stale and mounted afresh', async () => {
  const volumes = manager();
  await volumes.mount('control', PASS, { readOnly: false });
  const [pid] = gocryptfsPids(path.join(root, 'control', 'cipher'));
  process.kill(pid!, 'SIGKILL');
  await new Promise((resolve) => setTimeout(resolve, 200));
  const stale = await volumes.status('control');
  assert.is(stale.mounted, true);
  assert.is(stale.stale, true);
  const fresh = await volumes.mount('control', PASS, { readOnly: false });
  assert.is(fresh.stale, false);
  assert.is(await readFile(path.join(fresh.mountpoint, 'hello.txt'), 'utf8'), 'persisted');
  assert.is(mountLines(fresh.mountpoint), 1);
  await volumes.unmount('control');
});

test('with the key ring: per-volume passphrases open their volumes; list and destroy', async () => {
  const ring = new KeyRing({ file: path.join(dir, 'keyring.json'), logger, scrypt: { N: 1024, r: 8, p: 1 } });
  const { dataKey } = await ring.create('pw');
  const volumes = manager();
  await volumes.create('bootstrap', await ring.volumePassphrase(dataKey, 'bootstrap'));
  await volumes.create('app-notes', await ring.volumePassphrase(dataKey, 'app-notes'));
  await volumes.mount('app-notes', await ring.volumePassphrase(dataKey, 'app-notes'), { readOnly: false });
  await rejects(volumes.mount('bootstrap', await ring.volumePassphrase(dataKey, 'app-notes'), { readOnly: false }), WrongVolumePassphraseError);

  const listed = await volumes.list();
  assert.equal(
    listed.map((v) => [v.name, v.mounted]),
    [['app-damaged', false], ['app-notes', true], ['bootstrap', false], ['control', false]],
  );

  await volumes.destroy('app-notes');
  assert.not.ok(existsSync(path.join(root, 'app-notes')));
  assert.is(mountLines(path.join(root, 'app-notes', 'mnt')), 0);
  assert.is((await volumes.status('app-notes')).exists, false);
});

test('a passphrase of more than one line is refused before gocryptfs sees it', async () => {
  await rejects(manager().mount('control', `${PASS}\nextra`, { readOnly: false }), Error);
  assert.is((await manager().status('control')).mounted, false);
});

test.run();
