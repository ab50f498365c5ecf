// Writes a built Piccolo OS image to an SD card or USB disk, then proves it: the bytes are read back
// from the device and their sha256 must equal the image's. Refuses, before anything is written:
// anything that is not a whole disk, a device that holds the running system, a device with a mounted
// filesystem or swap (these three even with --force), a device smaller than the image, and one
// larger than maxBytes (a guard against picking the big data disk instead of the card) unless
// forced. Asks for the device name to be typed unless --yes.
//   scripts/flash IMAGE DEVICE [--yes] [--force] [--max-size 256G]
// IMAGE is raw or qcow2 (converted to a sparse temporary raw file with qemu-img first).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, mkdir, mkdtemp, open, readFile, realpath, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { constants } from 'node:fs';

const run = promisify(execFile);
const GiB = 1024 ** 3;
export const DEFAULT_MAX_BYTES = 256 * GiB;
const CHUNK = 4 * 1024 * 1024;
/** Mount points whose devices make up the running system. */
export const SYSTEM_MOUNTS = ['/', '/usr', '/boot', '/boot/efi', '/var', '/etc'];

/** The tool said no before writing anything; `reason` names why. */
export class FlashRefused extends Error {
  constructor(message: string, readonly reason: 'not-a-disk' | 'system' | 'mounted' | 'too-large' | 'too-small' | 'image' | 'not-confirmed') {
    super(message);
    this.name = 'FlashRefused';
  }
}
/** The bytes read back differ from the image: the medium (or the write) is bad. */
export class FlashVerifyFailed extends Error {
  constructor(readonly expected: string, readonly actual: string, readonly device: string) {
    super(`verify failed: ${device} reads back sha256 ${actual}, the image is ${expected}; do not use this card`);
    this.name = 'FlashVerifyFailed';
  }
}

export interface BlockDevice {
  path: string;
  type: string; // lsblk TYPE: disk, loop, part, rom, ...
  size: number;
  model: string | null;
  serial: string | null;
  mountpoints: string[]; // of the device and everything on it (partitions, dm)
  members: string[]; // the device and its partitions, as paths
}

interface LsblkNode {
  path: string;
  type: string;
  size: number;
  model?: string | null;
  serial?: string | null;
  mountpoints?: Array<string | null>;
  children?: LsblkNode[];
}

async function lsblk(args: string[]): Promise<LsblkNode[]> {
  const { stdout } = await run('lsblk', ['-J', '-b', '-o', 'PATH,TYPE,SIZE,MODEL,SERIAL,MOUNTPOINTS', ...args]);
  return (JSON.parse(stdout) as { blockdevices: LsblkNode[] }).blockdevices;
}

function flatten(node: LsblkNode): LsblkNode[] {
  return [node, ...(node.children ?? []).flatMap(flatten)];
}

export async function inspectDevice(device: string): Promise<BlockDevice> {
  const resolved = await realpath(device).catch(() => {
    throw new FlashRefused(`no such device: ${device}`, 'not-a-disk');
  });
  if (!(await stat(resolved)).isBlockDevice()) throw new FlashRefused(`${resolved} is not a block device`, 'not-a-disk');
  const [node] = await lsblk([resolved]);
  const all = flatten(node);
  const swaps = (await readFile('/proc/swaps', 'utf8').catch(() => '')).split('\n').slice(1).map((l) => l.split(/\s+/)[0]).filter(Boolean);
  const mountpoints = all.flatMap((n) => (n.mountpoints ?? []).filter((m): m is string => !!m));
  for (const n of all) if (swaps.includes(n.path)) mountpoints.push(`[swap ${n.path}]`);
  return { path: resolved, type: node.type, size: Number(node.size), model: node.model ?? null, serial: node.serial ?? null, mountpoints, members: all.map((n) => n.path) };
}

/** Every block device under the running system's mounts, whole disks included (lsblk -s walks up). */
export async function systemDevices(mounts = SYSTEM_MOUNTS): Promise<Set<string>> {
  const devices = new Set<string>();
  for (const mount of mounts) {
    const source = await run('findmnt', ['-n', '-o', 'SOURCE', '--target', mount]).then((r) => r.stdout.trim().replace(/\[.*\]$/, ''), () => '');
    if (!source.startsWith('/dev/')) continue;
    const tree = await lsblk(['-s', source]).catch(() => [] as LsblkNode[]);
    for (const n of tree.flatMap(flatten)) devices.add(n.path);
  }
  return devices;
}

export interface TargetPolicy {
  force?: boolean;
  maxBytes?: number;
  systemMounts?: string[];
}

/** Throws FlashRefused when `device` must not be written with an image of imageBytes. */
export async function checkTarget(device: BlockDevice, imageBytes: number, policy: TargetPolicy = {}): Promise<void> {
  if (!['disk', 'loop'].includes(device.type)) {
    throw new FlashRefused(`${device.path} is a ${device.type}, not a whole disk: give the disk (/dev/sdX, /dev/mmcblkN), not a partition`, 'not-a-disk');
  }
  const system = await systemDevices(policy.systemMounts ?? SYSTEM_MOUNTS);
  const held = device.members.filter((m) => system.has(m));
  if (held.length) throw new FlashRefused(`${device.path} holds the running system (${held.join(', ')}); refusing even with --force`, 'system');
  if (device.mountpoints.length) {
    throw new FlashRefused(`${device.path} is in use: mounted at ${device.mountpoints.join(', ')}; unmount it first (refused even with --force)`, 'mounted');
  }
  if (imageBytes > device.size) throw new FlashRefused(`the image (${formatBytes(imageBytes)}) does not fit on ${device.path} (${formatBytes(device.size)})`, 'too-small');
  const maxBytes = policy.maxBytes ?? DEFAULT_MAX_BYTES;
  if (device.size > maxBytes && !policy.force) {
    throw new FlashRefused(`${device.path} is ${formatBytes(device.size)}, larger than ${formatBytes(maxBytes)}: that is rarely an SD card or USB stick. Check the device; --force writes anyway`, 'too-large');
  }
}

export interface ImageSource {
  rawFile: string;
  format: 'raw' | 'qcow2';
  bytes: number;
  cleanup: () => Promise<void>;
}

/** The image as a raw file: raw as is, qcow2 converted (sparse) into a temporary folder. */
export async function openImage(image: string, tmpRoot = os.tmpdir()): Promise<ImageSource> {
  const info = await run('qemu-img', ['info', '--output=json', image]).catch((e: { stderr?: string }) => {
    throw new FlashRefused(`cannot read image ${image}: ${e.stderr?.trim() ?? 'qemu-img info failed'}`, 'image');
  });
  const { format, 'virtual-size': virtualSize } = JSON.parse(info.stdout) as { format: string; 'virtual-size': number };
  if (format === 'raw') return { rawFile: image, format, bytes: (await stat(image)).size, cleanup: async () => {} };
  if (format !== 'qcow2') throw new FlashRefused(`image ${image} is ${format}; flash takes raw or qcow2`, 'image');
  const dir = await mkdtemp(path.join(tmpRoot, 'piccolo-flash-'));
  const rawFile = path.join(dir, 'image.raw');
  await run('qemu-img', ['convert', '-O', 'raw', image, rawFile], { maxBuffer: 1 << 20 });
  return { rawFile, format, bytes: virtualSize, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export type Progress = (phase: 'write' | 'verify', done: number, total: number) => void;

/** Copies rawFile onto the device and returns the sha256 of the bytes written. */
async function writeDevice(rawFile: string, device: string, total: number, progress: Progress): Promise<string> {
  // O_EXCL on a block device is an exclusive open: the kernel refuses it (EBUSY) while anything
  // is mounted from the device, a last guard should it be mounted after our checks.
  const handle = await open(device, constants.O_WRONLY | constants.O_EXCL);
  const hash = createHash('sha256');
  let done = 0;
  try {
    for await (const chunk of createReadStream(rawFile, { highWaterMark: CHUNK }) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      let offset = 0;
      while (offset < chunk.length) {
        const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset, done + offset);
        offset += bytesWritten;
      }
      done += chunk.length;
      progress('write', done, total);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  if (done !== total) throw new Error(`wrote ${done} bytes, the image has ${total}`);
  return hash.digest('hex');
}

/** sha256 of the first `total` bytes on the device, read from the medium (buffer cache dropped). */
async function readBack(device: string, total: number, progress: Progress): Promise<string> {
  // BLKFLSBUF: write out and drop the device's cached pages, so the reads below reach the medium
  // instead of returning what we just wrote from memory.
  await run('blockdev', ['--flushbufs', device]);
  const handle = await open(device, constants.O_RDONLY);
  const hash = createHash('sha256');
  const buffer = Buffer.alloc(CHUNK);
  let done = 0;
  try {
    while (done < total) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(CHUNK, total - done), done);
      if (bytesRead === 0) throw new Error(`${device} ended after ${done} bytes`);
      hash.update(buffer.subarray(0, bytesRead));
      done += bytesRead;
      progress('verify', done, total);
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

export interface FlashOptions extends TargetPolicy {
  image: string;
  device: string;
  yes?: boolean;
  /** Asks the question and returns the typed answer (the CLI reads a line from stdin). */
  confirm?: (question: string) => Promise<string>;
  progress?: Progress;
  log?: (line: string) => void;
  /** Audit trail: one line per start, result (default: none). */
  logFile?: string;
  tmpDir?: string;
  /** Test hook: runs after the write is synced and before the read-back. */
  afterWrite?: (device: string) => Promise<void>;
}

export interface FlashResult {
  device: string;
  bytes: number;
  sha256: string;
  format: 'raw' | 'qcow2';
  writeSeconds: number;
  verifySeconds: number;
}

export async function flashImage(opts: FlashOptions): Promise<FlashResult> {
  const log = opts.log ?? (() => {});
  const progress = opts.progress ?? (() => {});
  const audit = async (line: string) => {
    if (!opts.logFile) return;
    await mkdir(path.dirname(opts.logFile), { recursive: true });
    await appendFile(opts.logFile, `${new Date().toISOString()} ${line}\n`);
  };
  const device = await inspectDevice(opts.device);
  const source = await openImage(opts.image, opts.tmpDir);
  try {
    await checkTarget(device, source.bytes, opts);
    log(`Image:  ${opts.image} (${source.format}, ${formatBytes(source.bytes)})`);
    log(`Device: ${device.path}  ${formatBytes(device.size)}  ${[device.model, device.serial].filter(Boolean).join(' ') || device.type}`);
    if (!opts.yes) {
      if (!opts.confirm) throw new FlashRefused('no confirmation: pass --yes to write without asking', 'not-confirmed');
      log(`ALL DATA ON ${device.path} WILL BE DESTROYED.`);
      const answer = (await opts.confirm(`Type the device name (${device.path}) to continue: `)).trim();
      if (answer !== device.path && answer !== opts.device) throw new FlashRefused(`confirmation "${answer}" did not match ${device.path}; nothing written`, 'not-confirmed');
    }
    await audit(`flash start image=${opts.image} device=${device.path} size=${device.size} user=${os.userInfo().username}`);
    let started = Date.now();
    const sha256 = await writeDevice(source.rawFile, device.path, source.bytes, progress);
    const writeSeconds = (Date.now() - started) / 1000;
    await opts.afterWrite?.(device.path);
    started = Date.now();
    const readSha = await readBack(device.path, source.bytes, progress);
    const verifySeconds = (Date.now() - started) / 1000;
    if (readSha !== sha256) {
      await audit(`flash VERIFY FAILED device=${device.path} image-sha256=${sha256} read-sha256=${readSha}`);
      throw new FlashVerifyFailed(sha256, readSha, device.path);
    }
    await audit(`flash done device=${device.path} bytes=${source.bytes} sha256=${sha256} verified`);
    return { device: device.path, bytes: source.bytes, sha256, format: source.format, writeSeconds, verifySeconds };
  } finally {
    await source.cleanup();
  }
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** "256G", "64M", "1T" or plain bytes. */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  if (!match) throw new Error(`not a size: ${text}`);
  const power = ['', 'K', 'M', 'G', 'T'].indexOf(match[2].toUpperCase());
  return Math.round(Number(match[1]) * 1024 ** power);
}

/** A one-line progress bar: redrawn in place on a terminal, a line per 10% otherwise (logs, CI). */
export function progressBar(stream: NodeJS.WriteStream | { write: (s: string) => unknown; isTTY?: boolean }): Progress {
  let lastPhase = '';
  let lastStep = -1;
  let phaseStarted = Date.now();
  return (phase, done, total) => {
    if (phase !== lastPhase) {
      if (lastPhase && stream.isTTY) stream.write('\n');
      lastPhase = phase;
      lastStep = -1;
      phaseStarted = Date.now();
    }
    const fraction = total ? done / total : 1;
    const seconds = (Date.now() - phaseStarted) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const width = 30;
    const filled = Math.round(fraction * width);
    const line = `${phase === 'write' ? 'writing  ' : 'verifying'} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${formatBytes(done)} / ${formatBytes(total)}${rate ? `  ${formatBytes(rate)}/s` : ''}`;
    if (stream.isTTY) {
      stream.write(`\r${line}${done === total ? '\n' : ''}`);
    } else {
      const step = Math.floor(fraction * 10);
      if (step !== lastStep) {
        lastStep = step;
        stream.write(`${line}\n`);
      }
    }
  };
}

/** One line from stdin; '' when stdin ends first (a script that forgot --yes must not hang). */
function askLine(question: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: !!process.stdin.isTTY });
    let answered = false;
    rl.question(question, (answer) => {
      answered = true;
      rl.close();
      resolve(answer);
    });
    rl.once('close', () => answered || resolve(''));
  });
}

const USAGE = 'usage: scripts/flash IMAGE DEVICE [--yes] [--force] [--max-size SIZE]   (SIZE e.g. 256G; default 256G)';

async function main(argv: string[]): Promise<number> {
  const positional: string[] = [];
  const opts: Partial<FlashOptions> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--yes' || arg === '-y') opts.yes = true;
    else if (arg === '--force') opts.force = true;
    else if (arg === '--max-size') opts.maxBytes = parseSize(argv[++i] ?? '');
    else if (arg === '--help' || arg === '-h') return console.log(USAGE), 0;
    else if (arg.startsWith('-')) return console.error(`flash: unknown option ${arg}\n${USAGE}`), 2;
    else positional.push(arg);
  }
  if (positional.length !== 2) return console.error(USAGE), 2;
  const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  try {
    const result = await flashImage({
      ...opts,
      image: positional[0],
      device: positional[1],
      log: (line) => console.error(line),
      progress: progressBar(process.stderr),
      logFile: process.env.PICCOLO_FLASH_LOG || path.join(repoRoot, 'build', 'flash.log'),
      confirm: (question) => askLine(question),
    });
    console.log(`flash: wrote and verified ${formatBytes(result.bytes)} on ${result.device} (sha256 ${result.sha256}; write ${result.writeSeconds.toFixed(1)} s, verify ${result.verifySeconds.toFixed(1)} s)`);
    return 0;
  } catch (error) {
    console.error(`flash: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
