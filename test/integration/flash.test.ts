// scripts/flash against real loop devices (losetup on sparse files): it writes and verifies raw and
// qcow2 images, asks for the typed device name, refuses mounted, system, partition and oversized
// devices without touching their bytes, and catches a byte that differs on the medium after the
// write. Needs root and loop devices.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { rejects } from '../support/assertions.js';

const run = promisify(execFile);
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const FLASH = path.join(REPO_ROOT, 'scripts', 'flash');
const MiB = 1024 * 1024;
const flash = () => import('../../image/flash.js');

let tmp: string;
let image: string; // 12 MiB of random bytes: any misplaced or missing byte changes the hash
let imageSha: string;
const loops: string[] = [];
const mounts: string[] = [];

async function sha256(file: string, length?: number): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const size = length ?? (await handle.stat()).size;
    const buffer = Buffer.alloc(size);
    await handle.read(buffer, 0, size, 0);
    return createHash('sha256').update(buffer).digest('hex');
  } finally {
    await handle.close();
  }
}

/** A loop device on a new sparse file; returns [device, backing file]. */
async function loopDevice(name: string, size: string): Promise<[string, string]> {
  const file = path.join(tmp, `${name}.disk`);
  await run('truncate', ['-s', size, file]);
  const { stdout } = await run('losetup', ['--find', '--show', file]);
  const device = stdout.trim();
  loops.push(device);
  return [device, file];
}

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], input?: string): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(FLASH, args, { env: { ...process.env, PICCOLO_FLASH_LOG: path.join(tmp, 'flash.log') }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'piccolo-flash-test-'));
  image = path.join(tmp, 'image.raw');
  await writeFile(image, randomBytes(12 * MiB));
  imageSha = await sha256(image);
});

test.after(async () => {
  for (const dir of mounts.reverse()) await run('umount', [dir]).catch(() => {});
  for (const device of loops) await run('losetup', ['-d', device]).catch(() => {});
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('a raw image is written, read back and verified, with progress and an audit line', async () => {
  const [device, backing] = await loopDevice('raw', '64M');
  const result = await cli([image, device, '--yes']);
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stdout, `wrote and verified 12.0 MiB on ${device} (sha256 ${imageSha}`);
  // Independently of the tool: the medium holds the image's bytes.
  assert.is(await sha256(backing, 12 * MiB), imageSha);
  assert.match(result.stderr, /writing\s+\[#{30}\] 100% 12\.0 MiB \/ 12\.0 MiB/);
  assert.match(result.stderr, /verifying \[#{30}\] 100% 12\.0 MiB \/ 12\.0 MiB/);
  assert.ok(result.stderr.indexOf('writing') < result.stderr.indexOf('verifying'), 'verify ran before the write');
  const log = await readFile(path.join(tmp, 'flash.log'), 'utf8');
  assert.match(log, `flash start image=${image} device=${device}`);
  assert.match(log, `flash done device=${device} bytes=${12 * MiB} sha256=${imageSha} verified`);
});

test('a qcow2 image is converted and what lands on the device is its raw content', async () => {
  const qcow2 = path.join(tmp, 'image.qcow2');
  await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', image, qcow2]);
  assert.is.not(await sha256(qcow2), imageSha);
  const [device, backing] = await loopDevice('qcow2', '64M');
  const result = await cli([qcow2, device, '--yes']);
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stderr, /\(qcow2, 12\.0 MiB\)/);
  assert.is(await sha256(backing, 12 * MiB), imageSha);
  assert.match(result.stdout, imageSha);
});

test('without --yes it writes only after the device name is typed', async () => {
  const [device, backing] = await loopDevice('confirm', '64M');
  const untouched = await sha256(backing, 12 * MiB);
  for (const answer of ['', 'yes', '/dev/sda']) {
    const refused = await cli([image, device], `${answer}\n`);
    assert.is(refused.code, 1, `answer "${answer}" was accepted`);
    assert.match(refused.stderr, `Type the device name (${device}) to continue`);
    assert.match(refused.stderr, 'nothing written');
    assert.is(await sha256(backing, 12 * MiB), untouched);
  }
  const accepted = await cli([image, device], `${device}\n`);
  assert.is(accepted.code, 0, accepted.stderr);
  assert.is(await sha256(backing, 12 * MiB), imageSha);
});

test('a mounted device is refused, even with --force, and its filesystem is left intact', async () => {
  const [device, backing] = await loopDevice('mounted', '64M');
  await run('mkfs.ext4', ['-q', '-F', device]);
  const mountpoint = path.join(tmp, 'mnt');
  await mkdir(mountpoint);
  await run('mount', [device, mountpoint]);
  mounts.push(mountpoint);
  await writeFile(path.join(mountpoint, 'keep.txt'), 'still here');
  await run('sync');
  const before = await sha256(backing, 12 * MiB);
  const result = await cli([image, device, '--yes', '--force']);
  assert.is(result.code, 1);
  assert.match(result.stderr, `${device} is in use: mounted at ${mountpoint}`);
  assert.not.match(result.stderr, 'writing');
  assert.is(await sha256(backing, 12 * MiB), before);
  assert.is(await readFile(path.join(mountpoint, 'keep.txt'), 'utf8'), 'still here');
});

test('a device holding the running system is refused before the mount check, even with --force', async () => {
  const { inspectDevice, checkTarget, systemDevices, FlashRefused } = await flash();
  // Stand-in for the system disk: a mounted loop device named as a system mount.
  const [device] = await loopDevice('system', '64M');
  await run('mkfs.ext4', ['-q', '-F', device]);
  const mountpoint = path.join(tmp, 'sysroot');
  await mkdir(mountpoint);
  await run('mount', [device, mountpoint]);
  mounts.push(mountpoint);
  const refusal = await rejects(checkTarget(await inspectDevice(device), 12 * MiB, { force: true, systemMounts: [mountpoint] }), FlashRefused);
  assert.is(refusal.reason, 'system');
  assert.match(refusal.message, `${device} holds the running system`);
  // The real default: the device behind this machine's "/" counts as system.
  const { stdout } = await run('findmnt', ['-n', '-o', 'SOURCE', '/']);
  const rootSource = stdout.trim().replace(/\[.*\]$/, '');
  if (rootSource.startsWith('/dev/')) assert.ok((await systemDevices()).has(rootSource), `${rootSource} not among ${[...(await systemDevices())].join(' ')}`);
});

test('a device larger than the limit is refused without --force and written with it', async () => {
  // 300 GiB, sparse: only the image's 12 MiB ever take space.
  const [device, backing] = await loopDevice('large', '300G');
  const refused = await cli([image, device, '--yes']);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, `${device} is 300.0 GiB, larger than 256.0 GiB`);
  assert.match(refused.stderr, '--force writes anyway');
  assert.is(await sha256(backing, 12 * MiB), createHash('sha256').update(Buffer.alloc(12 * MiB)).digest('hex'));
  const limited = await cli([image, device, '--yes', '--max-size', '1T']);
  assert.is(limited.code, 0, `--max-size 1T: ${limited.stderr}`);
  await run('dd', [`of=${device}`, 'if=/dev/zero', 'bs=1M', 'count=12', 'conv=fsync', 'status=none']);
  const forced = await cli([image, device, '--yes', '--force']);
  assert.is(forced.code, 0, forced.stderr);
  assert.is(await sha256(backing, 12 * MiB), imageSha);
});

test('an image larger than the device, and a partition instead of a disk, are refused', async () => {
  const [small, smallBacking] = await loopDevice('small', '8M');
  const tooSmall = await cli([image, small, '--yes', '--force']);
  assert.is(tooSmall.code, 1);
  assert.match(tooSmall.stderr, `does not fit on ${small}`);
  assert.is(await sha256(smallBacking), createHash('sha256').update(Buffer.alloc(8 * MiB)).digest('hex'));

  // Loop devices here get no partition nodes (no partscan, no udev): the partition case goes
  // through checkTarget with the device as lsblk describes a partition.
  const { checkTarget, FlashRefused } = await flash();
  const partition = { path: '/dev/sdz1', type: 'part', size: 64 * MiB, model: null, serial: null, mountpoints: [], members: ['/dev/sdz1'] };
  const refusal = await rejects(checkTarget(partition, 12 * MiB, { force: true }), FlashRefused);
  assert.is(refusal.reason, 'not-a-disk');
  assert.match(refusal.message, '/dev/sdz1 is a part, not a whole disk');
});

test('a byte that differs on the medium after the write fails the verify', async () => {
  const { flashImage, FlashVerifyFailed } = await flash();
  const [device, backing] = await loopDevice('corrupt', '64M');
  const offset = 5 * MiB + 12345;
  const logFile = path.join(tmp, 'corrupt.log');
  const error = await rejects(
    flashImage({
      image,
      device,
      yes: true,
      logFile,
      // A bad card: one bit flips in the medium (the loop device's backing file) after the write.
      afterWrite: async () => {
        const handle = await open(backing, 'r+');
        const byte = Buffer.alloc(1);
        await handle.read(byte, 0, 1, offset);
        byte[0] ^= 0x01;
        await handle.write(byte, 0, 1, offset);
        await handle.sync();
        await handle.close();
      },
    }),
    FlashVerifyFailed,
  );
  assert.is(error.expected, imageSha);
  assert.is.not(error.actual, imageSha);
  // The tool's "actual" is what the medium really holds.
  assert.is(error.actual, await sha256(backing, 12 * MiB));
  assert.match(await readFile(logFile, 'utf8'), `flash VERIFY FAILED device=${device} image-sha256=${imageSha}`);

  // The same write without the flipped bit verifies: the failure above is the byte, nothing else.
  const ok = await flashImage({ image, device, yes: true });
  assert.is(ok.sha256, imageSha);
});

test.run();
