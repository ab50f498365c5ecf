// kiwi/editbootinstall_rpi.sh, run as KIWI runs it (working directory = image root, $2 = the root
// partition's device), on a loop-device disk with an msdos table: it copies the Pi firmware from
// boot/vc, fetches the armstub config.txt names, and turns partition 1's type into 0x0c.
// Stand-ins forced by this host: the kernel has no vfat, so partition 1 carries ext4; loop devices
// get no partition nodes (no partscan, no device-mapper), so partition 1 is a second loop device at
// the partition's offset, and the "disk" and "partition" nodes are symlinks named like KIWI's.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'kiwi', 'editbootinstall_rpi.sh');
const MiB = 1024 * 1024;

let tmp: string;
const loops: string[] = [];

interface Disk {
  rootPartition: string; // what KIWI passes as $2
  whole: string; // the disk's loop device
  efi: string; // partition 1's loop device
  imageRoot: string;
}

async function losetup(args: string[]): Promise<string> {
  const device = (await run('losetup', ['--find', '--show', ...args])).stdout.trim();
  loops.push(device);
  return device;
}

/** A 64 MiB disk like KIWI's msdos layout: p1 (EFI, left at type 83), p2 (root). */
async function makeDisk(name: string, files: Record<string, string>): Promise<Disk> {
  const dir = path.join(tmp, name);
  await mkdir(path.join(dir, 'dev'), { recursive: true });
  const file = path.join(dir, 'disk.raw');
  await run('truncate', ['-s', '64M', file]);
  await run('sh', ['-c', `printf 'start=2048, size=32768, type=83\\nstart=34816, type=83\\n' | sfdisk -q ${file}`]);
  const whole = await losetup([file]);
  const efi = await losetup(['--offset', String(MiB), '--sizelimit', String(16 * MiB), file]);
  await run('mkfs.ext4', ['-q', '-F', efi]);
  await symlink(whole, path.join(dir, 'dev', 'pidisk'));
  await symlink(efi, path.join(dir, 'dev', 'pidiskp1'));
  const imageRoot = path.join(dir, 'root');
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(imageRoot, rel)), { recursive: true });
    await writeFile(path.join(imageRoot, rel), content);
  }
  return { rootPartition: path.join(dir, 'dev', 'pidiskp2'), whole, efi, imageRoot };
}

async function runScript(disk: Disk): Promise<{ code: number; stderr: string }> {
  return run('bash', ['--norc', SCRIPT, 'disk.raw', disk.rootPartition], { cwd: disk.imageRoot }).then(
    (r) => ({ code: 0, stderr: r.stderr }),
    (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
  );
}

async function partType(device: string, n: number): Promise<string> {
  return (await run('sfdisk', ['--part-type', device, String(n)])).stdout.trim();
}

/** Reads files off the EFI partition (mounted read-only for the look). */
async function efiFiles(disk: Disk, names: string[]): Promise<Record<string, string | null>> {
  const mnt = path.join(tmp, `look-${path.basename(disk.efi)}`);
  await mkdir(mnt, { recursive: true });
  await run('mount', ['-o', 'ro', disk.efi, mnt]);
  try {
    const out: Record<string, string | null> = {};
    for (const name of names) out[name] = await readFile(path.join(mnt, name), 'utf8').catch(() => null);
    return out;
  } finally {
    await run('umount', [mnt]);
  }
}

const CONFIG_TXT = '# Pi firmware configuration\narm_64bit=1\nkernel=u-boot.bin\n[pi4]\narmstub=armstub8-gic.bin\n[all]\n';
const FIRMWARE = {
  'boot/vc/config.txt': CONFIG_TXT,
  'boot/vc/u-boot.bin': 'u-boot for the Pi',
  'boot/vc/start4.elf': 'gpu firmware',
  'boot/vc/bcm2711-rpi-4-b.dtb': 'device tree',
};

test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'piccolo-rpi-'));
});
test.after(async () => {
  for (const device of loops.reverse()) await run('losetup', ['-d', device]).catch(() => {});
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('firmware, u-boot and the armstub land on partition 1, which becomes type 0x0c', async () => {
  const disk = await makeDisk('good', { ...FIRMWARE, 'usr/share/arm-trusted-firmware-rpi4/armstub8-gic.bin': 'trusted firmware' });
  assert.is(await partType(disk.whole, 1), '83');
  const result = await runScript(disk);
  assert.is(result.code, 0, result.stderr);
  assert.is(await partType(disk.whole, 1), 'c');
  assert.is(await partType(disk.whole, 2), '83', 'the root partition keeps its type');
  const files = await efiFiles(disk, ['config.txt', 'u-boot.bin', 'start4.elf', 'bcm2711-rpi-4-b.dtb', 'armstub8-gic.bin']);
  assert.equal(files, {
    'config.txt': CONFIG_TXT,
    'u-boot.bin': 'u-boot for the Pi',
    'start4.elf': 'gpu firmware',
    'bcm2711-rpi-4-b.dtb': 'device tree',
    'armstub8-gic.bin': 'trusted firmware',
  });
});

test('a config.txt naming an armstub the image does not have fails the build', async () => {
  const disk = await makeDisk('no-armstub', FIRMWARE);
  const result = await runScript(disk);
  assert.is.not(result.code, 0);
  assert.match(result.stderr, 'config.txt names armstub8-gic.bin, which is not in the image');
  assert.is(await partType(disk.whole, 1), '83', 'a failed run must not half-finish the disk');
});

test('u-boot missing from boot/vc fails before touching the disk', async () => {
  const { 'boot/vc/u-boot.bin': _uboot, ...withoutUboot } = FIRMWARE;
  const disk = await makeDisk('no-uboot', { ...withoutUboot, 'boot/u-boot.bin': 'the old, wrong place' });
  const result = await runScript(disk);
  assert.is.not(result.code, 0);
  assert.match(result.stderr, 'boot/vc/u-boot.bin missing');
  assert.equal(await efiFiles(disk, ['config.txt']), { 'config.txt': null });
});

test.run();
