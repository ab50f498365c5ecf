// A full state disk as a named state: the store (and the key ring) tell this watch how their
// writes went; it reads statfs of the state folder and says "full" while a write was refused
// for space and there is still no room for it (or almost nothing is left at all). Nothing here
// blocks writes: each write just tries again, so they resume by themselves once space is back,
// and this watch notices that on its own (it polls faster while full). What uses the space is
// measured only when asked (du of the known folders, the engine's image size).
//
// It also keeps a reserve: a file of random bytes in the state folder, given up when the disk is
// full and space is needed to get out of it (opening the store, which writes its lock file; an
// uninstall, whose job is recorded in the store). Without it a disk filled to the last byte could
// not even be emptied through the portal. It is made again once there is room for it twice over.
import { randomBytes } from 'node:crypto';
import { lstat, opendir, readdir, rm, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { freeBytesAt, writeFileDurable } from '../../common/durable.js';
import type { Module } from '../../common/lifecycle.js';
import type { Logger } from '../../common/logger.js';

export interface DiskSpaceStatus {
  full: boolean;
  /** What this process may still write; null when statfs failed. */
  freeBytes: number | null;
  totalBytes: number | null;
  /** "state disk full: N bytes free" while full. */
  reason?: string;
}

export type DiskUsageName = 'store' | 'apps' | 'media' | 'images' | 'reserve' | 'other';

export interface DiskUsageEntry {
  name: DiskUsageName;
  bytes: number;
  /** false: it lives on another filesystem (e.g. images on their own disk), so freeing it gains nothing here. */
  onStateDisk: boolean;
}

export interface DiskSpaceView extends DiskSpaceStatus {
  /** The state folder whose filesystem this is. */
  path: string;
  /** Largest first; `other` is what the state disk uses beyond the known folders. */
  usage: DiskUsageEntry[];
}

export interface WriteReport {
  ok: boolean;
  noSpace?: boolean;
  bytes: number;
}

export interface DiskSpaceOptions {
  stateDir: string;
  logger: Logger;
  onChange: (status: DiskSpaceStatus) => void;
  /** statfs polling while all is well; while full it polls every second. */
  intervalMs?: number;
  /** Below this the disk counts as full even before a write fails. */
  lowBytes?: number;
  /** The container engine's images: their size and where they are stored. */
  images?: () => Promise<{ bytes: number; dir: string | undefined }>;
  /** Size of the reserve file; 0 keeps none. */
  reserveBytes?: number;
}

/** In the state folder, outside the encrypted volumes: it holds nothing but random bytes. */
export const RESERVE_FILE = 'disk-reserve';

/** Room a refused write needs besides its own bytes: file system blocks and the temp file's inode. */
const WRITE_MARGIN_BYTES = 64 * 1024;
const FULL_POLL_MS = 1000;
/** du is slow on big app volumes: one measurement serves the banner for a while. */
const USAGE_CACHE_MS = 10_000;
/** du stops counting here; the sizes are then lower bounds, which is enough to see what is big. */
const MAX_DU_ENTRIES = 200_000;

export class DiskSpaceWatch implements Module {
  readonly name = 'disk-space';
  private refusedWriteBytes: number | undefined;
  private current: DiskSpaceStatus = { full: false, freeBytes: null, totalBytes: null };
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private checking: Promise<void> | undefined;
  private usageCache: { at: number; usage: DiskUsageEntry[] } | undefined;

  constructor(private readonly options: DiskSpaceOptions) {}

  get status(): DiskSpaceStatus {
    return this.current;
  }

  /** From the store and the key ring after each write. */
  noteWrite({ ok, noSpace, bytes }: WriteReport): void {
    if (ok) this.refusedWriteBytes = undefined;
    else if (noSpace) this.refusedWriteBytes = bytes;
    else return;
    void this.check();
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.check();
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.checking;
  }

  /**
   * Gives the reserve up so that `why` (e.g. an uninstall) has room on a full disk. Resolves
   * with whether there was one to give. Only while full: otherwise nothing needs it.
   */
  async releaseReserveIfFull(why: string): Promise<boolean> {
    await this.check();
    return this.current.full ? this.releaseReserve(why) : false;
  }

  /** Gives the reserve up (see releaseReserveIfFull); for a caller that was just refused space. */
  async releaseReserve(why: string): Promise<boolean> {
    const file = this.reserveFile;
    const bytes = await stat(file).then((s) => s.size, () => 0);
    if (!bytes) return false;
    await rm(file, { force: true });
    this.options.logger.warn('released the disk reserve', { why, bytes });
    this.usageCache = undefined;
    await this.check();
    return true;
  }

  private get reserveFile(): string {
    return path.join(this.options.stateDir, RESERVE_FILE);
  }

  /** Makes the reserve when it is missing and there is room for it twice over (so it never fills the disk). */
  private async keepReserve(free: number | undefined): Promise<void> {
    const bytes = this.options.reserveBytes ?? 0;
    if (!bytes || free === undefined || this.refusedWriteBytes !== undefined || this.stopped) return;
    if ((await stat(this.reserveFile).then((s) => s.size, () => 0)) >= bytes) return;
    if (free < 2 * bytes + WRITE_MARGIN_BYTES) return;
    try {
      // Random, not zeros: a compressing file system (btrfs compress on the Pi) stores zeros in nothing.
      await writeFileDurable(this.reserveFile, randomBytes(bytes), 0o600);
      this.options.logger.info('disk reserve in place', { bytes });
    } catch (err) {
      this.options.logger.warn('could not make the disk reserve', { err });
    }
  }

  /** Reads statfs and reports a change; concurrent callers share one reading. */
  check(): Promise<void> {
    this.checking ??= this.read().finally(() => (this.checking = undefined));
    return this.checking;
  }

  async view(): Promise<DiskSpaceView> {
    await this.check();
    return { ...this.current, path: this.options.stateDir, usage: await this.usage() };
  }

  /** The next reading; replaces a pending one, so turning full shortens the wait at once. */
  private schedule(): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    const delay = this.current.full ? FULL_POLL_MS : (this.options.intervalMs ?? 10_000);
    this.timer = setTimeout(() => void this.check().finally(() => this.schedule()), delay);
  }

  private async read(): Promise<void> {
    const free = await freeBytesAt(this.options.stateDir);
    const total = await totalBytesAt(this.options.stateDir);
    const low = this.options.lowBytes ?? WRITE_MARGIN_BYTES;
    const refused = this.refusedWriteBytes;
    // No statfs answer: only a refused write says anything, and it says full.
    const full = free === undefined ? refused !== undefined : free < low || (refused !== undefined && free < refused + WRITE_MARGIN_BYTES);
    const next: DiskSpaceStatus = { full, freeBytes: free ?? null, totalBytes: total ?? null };
    if (full) next.reason = free === undefined ? 'state disk full' : `state disk full: ${free} bytes free`;
    const previous = this.current;
    this.current = next;
    if (!next.full) await this.keepReserve(free);
    if (previous.full === next.full && previous.reason === next.reason) return;
    if (next.full) this.options.logger.error('state disk full: writes fail until space is freed', { freeBytes: free, refusedWriteBytes: refused });
    else if (previous.full) this.options.logger.info('state disk has room again: writes resume', { freeBytes: free });
    if (next.full !== previous.full) {
      this.usageCache = undefined;
      this.schedule();
    }
    this.options.onChange(next);
  }

  private async usage(): Promise<DiskUsageEntry[]> {
    const cached = this.usageCache;
    if (cached && Date.now() - cached.at < USAGE_CACHE_MS) return cached.usage;
    const { stateDir } = this.options;
    const volumes = path.join(stateDir, 'volumes');
    const names = await listDir(volumes);
    const sizeOf = async (dirs: string[]) => (await Promise.all(dirs.map((dir) => du(dir)))).reduce((a, b) => a + b, 0);
    // The store: the control and bootstrap volumes and the key ring (volumes are du'd through
    // their cipher folders; their plain mounts are other file systems and are not crossed).
    const store = (await sizeOf(['control', 'bootstrap'].map((n) => path.join(volumes, n)))) + (await du(path.join(stateDir, 'keyring.json')));
    const apps = await sizeOf(names.filter((n) => n.startsWith('app-')).map((n) => path.join(volumes, n)));
    const media = await sizeOf(names.filter((n) => n === 'media').map((n) => path.join(volumes, n)));
    const usage: DiskUsageEntry[] = [
      { name: 'store', bytes: store, onStateDisk: true },
      { name: 'apps', bytes: apps, onStateDisk: true },
    ];
    if (media) usage.push({ name: 'media', bytes: media, onStateDisk: true });
    const reserve = await du(this.reserveFile);
    if (reserve) usage.push({ name: 'reserve', bytes: reserve, onStateDisk: true });
    const images = await this.options.images?.().catch((err) => void this.options.logger.warn('cannot read the images\' size', { err }));
    if (images) usage.push({ name: 'images', bytes: images.bytes, onStateDisk: images.dir ? await sameFilesystem(images.dir, stateDir) : false });
    const total = await totalBytesAt(stateDir);
    const free = await freeBytesAt(stateDir);
    if (total !== undefined && free !== undefined) {
      const known = usage.filter((u) => u.onStateDisk).reduce((sum, u) => sum + u.bytes, 0);
      usage.push({ name: 'other', bytes: Math.max(0, total - free - known), onStateDisk: true });
    }
    usage.sort((a, b) => b.bytes - a.bytes);
    this.usageCache = { at: Date.now(), usage };
    return usage;
  }
}

function totalBytesAt(dir: string): Promise<number | undefined> {
  return statfs(dir).then((fs) => fs.blocks * fs.bsize, () => undefined);
}

function listDir(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

/** Allocated bytes under a path (blocks, as du counts), staying on its file system. 0 when missing. */
export async function du(root: string): Promise<number> {
  let rootStat;
  try {
    rootStat = await lstat(root);
  } catch {
    return 0;
  }
  let total = rootStat.blocks * 512;
  if (!rootStat.isDirectory()) return total;
  const pending = [root];
  let seen = 0;
  while (pending.length && seen < MAX_DU_ENTRIES) {
    const dir = pending.pop()!;
    let handle;
    try {
      handle = await opendir(dir);
    } catch {
      continue; // gone or unreadable meanwhile: counted as nothing
    }
    for await (const entry of handle) {
      if (++seen > MAX_DU_ENTRIES) break;
      const full = path.join(dir, entry.name);
      const info = await lstat(full).catch(() => undefined);
      if (!info || info.dev !== rootStat.dev) continue;
      total += info.blocks * 512;
      if (info.isDirectory()) pending.push(full);
    }
  }
  return total;
}

async function sameFilesystem(a: string, b: string): Promise<boolean> {
  try {
    return (await stat(a)).dev === (await stat(b)).dev;
  } catch {
    return false;
  }
}
