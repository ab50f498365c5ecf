// Boots the debian-qemu-aarch64 image under QEMU's TCG on `-M virt` with AAVMF (UEFI for arm64).
// The image has no EFI system partition (this build host has no vfat, so KIWI cannot make one):
// its kernel and initrd are read out of the root partition and handed to QEMU with -kernel and
// -initrd, which passes them to the firmware through fw_cfg; AAVMF then starts the kernel's EFI
// stub. Everything else (root filesystem, units, bundles) is the image's own.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const AAVMF_CODE = '/usr/share/AAVMF/AAVMF_CODE.fd';
export const AAVMF_VARS = '/usr/share/AAVMF/AAVMF_VARS.fd';
const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface BootFiles {
  kernel: string;
  initrd: string;
  rootUuid: string;
}

/** Copies /boot's kernel and initrd out of the image's root partition and reads its UUID. */
export async function extractBootFiles(image: string, outDir: string): Promise<BootFiles> {
  await mkdir(outDir, { recursive: true });
  const raw = path.join(outDir, 'disk.raw');
  await run('qemu-img', ['convert', '-O', 'raw', image, raw]);
  const mnt = await mkdtemp(path.join(tmpdir(), 'piccolo-aarch64-root-'));
  let loop = '';
  try {
    const table = JSON.parse((await run('sfdisk', ['-J', raw])).stdout) as { partitiontable: { sectorsize?: number; partitions: Array<{ start: number; size: number; type: string }> } };
    const sector = table.partitiontable.sectorsize ?? 512;
    // The root partition: the largest one (KIWI's custom-firmware layout has only that one).
    const root = [...table.partitiontable.partitions].sort((a, b) => b.size - a.size)[0];
    loop = (await run('losetup', ['--find', '--show', '--read-only', '--offset', String(root.start * sector), '--sizelimit', String(root.size * sector), raw])).stdout.trim();
    const rootUuid = (await run('blkid', ['-s', 'UUID', '-o', 'value', loop])).stdout.trim();
    await run('mount', ['-o', 'ro', loop, mnt]);
    try {
      const names = await readdir(path.join(mnt, 'boot'));
      const kernelName = names.find((n) => /^vmlinuz-/.test(n));
      const initrdName = names.find((n) => /^initrd(\.img)?-/.test(n));
      if (!kernelName || !initrdName) throw new Error(`no kernel/initrd in the image's /boot: ${names.join(' ')}`);
      const kernel = path.join(outDir, 'vmlinuz');
      const initrd = path.join(outDir, 'initrd');
      await copyFile(path.join(mnt, 'boot', kernelName), kernel);
      await copyFile(path.join(mnt, 'boot', initrdName), initrd);
      return { kernel, initrd, rootUuid };
    } finally {
      await run('umount', [mnt]);
    }
  } finally {
    if (loop) await run('losetup', ['-d', loop]).catch(() => {});
    await rm(mnt, { recursive: true, force: true });
    await rm(raw, { force: true });
  }
}

export interface Aarch64Guest {
  serialLog: string;
  healthUrl: string;
  portalUrl: string;
  startedAt: number;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

export interface Aarch64BootOptions {
  image: string;
  workDir: string;
  portalPort: number;
  healthPort: number;
  memoryMiB?: number;
  cpus?: number;
}

export async function bootAarch64(opts: Aarch64BootOptions): Promise<Aarch64Guest> {
  for (const file of [AAVMF_CODE, AAVMF_VARS]) if (!existsSync(file)) throw new Error(`${file} missing: install qemu-efi-aarch64`);
  await mkdir(opts.workDir, { recursive: true });
  const boot = await extractBootFiles(opts.image, path.join(opts.workDir, 'boot'));
  const overlay = path.join(opts.workDir, 'disk.qcow2');
  const vars = path.join(opts.workDir, 'AAVMF_VARS.fd');
  const serialLog = path.join(opts.workDir, 'serial.log');
  await rm(overlay, { force: true });
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', path.resolve(opts.image), overlay]);
  await copyFile(AAVMF_VARS, vars); // the firmware writes its variables: a private copy
  await writeFile(serialLog, '');
  const fwd = `hostfwd=tcp:127.0.0.1:${opts.portalPort}-:80,hostfwd=tcp:127.0.0.1:${opts.healthPort}-:4040`;
  const args = [
    '-name', 'piccolo-os-aarch64',
    '-machine', 'virt',
    '-cpu', 'cortex-a72',
    '-accel', 'tcg',
    '-m', String(opts.memoryMiB ?? 1536),
    '-smp', String(opts.cpus ?? 2),
    '-drive', `if=pflash,format=raw,readonly=on,file=${AAVMF_CODE}`,
    '-drive', `if=pflash,format=raw,file=${vars}`,
    '-drive', `file=${overlay},if=virtio,format=qcow2`,
    '-kernel', boot.kernel,
    '-initrd', boot.initrd,
    '-append', `root=UUID=${boot.rootUuid} rw console=ttyAMA0,115200 net.ifnames=0`,
    '-netdev', `user,id=net0,${fwd}`,
    '-device', 'virtio-net-pci,netdev=net0',
    '-display', 'none',
    '-monitor', 'none',
    '-serial', `file:${serialLog}`,
  ];
  const startedAt = Date.now();
  const qemu: ChildProcess = spawn('qemu-system-aarch64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  qemu.stderr?.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => qemu.on('close', (code) => resolve(code)));
  const killNow = () => qemu.exitCode === null && qemu.signalCode === null && qemu.kill('SIGKILL');
  process.once('exit', killNow);
  if (await Promise.race([exited.then(() => true), delay(1500).then(() => false)])) {
    throw new Error(`qemu-system-aarch64 exited at start: ${stderr.trim()}`);
  }
  return {
    serialLog,
    healthUrl: `http://127.0.0.1:${opts.healthPort}`,
    portalUrl: `http://127.0.0.1:${opts.portalPort}/`,
    startedAt,
    exited,
    stop: async () => {
      if (qemu.exitCode === null && qemu.signalCode === null) {
        qemu.kill('SIGTERM');
        if (!(await Promise.race([exited.then(() => true), delay(5000).then(() => false)]))) qemu.kill('SIGKILL');
      }
      process.removeListener('exit', killNow);
      await rm(overlay, { force: true });
    },
  };
}
