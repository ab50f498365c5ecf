// Size limits for folders of an app's volume (storage.persistent.<name>.size_limit), enforced by
// the kernel: the folder is its own ext4 file system, an image file loop-mounted on it.
//
// Why an image file: app data is a gocryptfs folder on the device's one data file system, and
// gocryptfs on ext4 has no per-folder quota (project quotas would need the data file system made
// with them, and gocryptfs' encrypted names hide which folder a file belongs to). The image lives
// INSIDE the app's mounted gocryptfs volume (<volume>/.size-limits/<name>.ext4), so what the app
// writes is as encrypted at rest as the rest of its data, and a write past the limit fails with
// ENOSPC in the app. A limit is fixed once its file system is made. The image is sparse: it takes on disk what the app has stored (plus the
// file system's bookkeeping), not the limit; the limit is a ceiling, the disk's free space still
// the other one. The limit counts the file system's own bookkeeping (about 2-5% of it).
//
// Nothing is remembered here: whether a folder is mounted comes from /proc/self/mountinfo, so a
// restarted daemon finds the loop mounts it left and keeps them.
import { mkdir, readdir, readFile, realpath, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PiccoloError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { runTool, stderrTail, type ToolResult } from '../../common/run-tool.js';
import { readMountInfo, SELF_MOUNTINFO, topMountAt, type MountEntry } from './mountinfo.js';

/** Where the images live in the volume: a name no volume has (volume names are DNS labels). */
export const SIZE_LIMIT_DIR = '.size-limits';

/** A limit that cannot be put in place (made, or the files already in the folder do not fit). */
export class SizeLimitError extends PiccoloError {
  constructor(field: string, message: string, detail?: string) {
    super(409, 'size_limit_unavailable', `${field}: ${message}`, { field, ...(detail && { detail }) });
  }
}

export interface SizeLimitedFoldersOptions {
  logger: Logger;
  mountInfoFile?: string;
  timeoutMs?: number;
}

export class SizeLimitedFolders {
  constructor(private readonly options: SizeLimitedFoldersOptions) {}

  /**
   * Makes `<root>/<folder>` the volume's own file system of `bytes`, or mounts the one it already
   * has. A limit is fixed once its file system exists (the API refuses to change it: growing an
   * ext4 online needs CAP_SYS_RESOURCE, offline it needs the app stopped); `bytes` undefined
   * mounts an existing image (its data must not be hidden) or leaves a plain folder. `field` names
   * the spec field in errors. Files already in a folder that gets its limit now (a restored
   * backup, data kept from an install without it) are moved in, or refused when they do not fit.
   * The API never adds a limit to a running app's volume: its files would change under the copy.
   */
  async ensure(root: string, folder: string, bytes: number | undefined, field: string): Promise<void> {
    // Canonical, as the kernel writes mount points in mountinfo.
    const canonical = await realpath(root);
    const target = path.join(canonical, folder);
    const image = path.join(canonical, SIZE_LIMIT_DIR, `${folder}.ext4`);
    const size = await stat(image).then((s) => s.size, () => undefined);
    if (size === undefined && bytes === undefined) {
      await mkdir(target, { recursive: true });
      return;
    }
    if (size === undefined) {
      await mkdir(path.dirname(image), { recursive: true, mode: 0o700 });
      // Made under another name and renamed when whole: a crash midway leaves no half-made image
      // that would be taken for the volume's file system.
      const making = `${image}.new`;
      try {
        // A sparse file of the limit's size: it takes on disk only what is written into it.
        await writeFile(making, '', { mode: 0o600 })
          .then(() => truncate(making, bytes))
          .catch((err: Error) => {
            throw new SizeLimitError(field, `cannot make its ${bytes}-byte file system`, err.message);
          });
        // No reserved blocks (-m 0): the app may use the whole limit. Lazy init and no discard: the
        // sparse image stays small, and gocryptfs underneath cannot punch holes anyway.
        await this.tool(field, 'mkfs.ext4', ['-q', '-F', '-m', '0', '-E', 'nodiscard,lazy_itable_init=1,lazy_journal_init=1', making]);
        // Files already there (a restored backup, data kept from an install without the limit) move in.
        if (await holdsFiles(target)) await this.copyInto(making, target, field);
      } catch (err) {
        await rm(making, { force: true });
        throw err;
      }
      await rename(making, image);
      await emptyFolder(target);
      this.options.logger.info('size-limited folder made', { folder, bytes });
    } else if (bytes !== size) {
      // The API refuses an update that changes a limit; this is a reinstall over data kept from an
      // earlier install (or another spec asking for it): refused, never a different limit in silence.
      throw new SizeLimitError(field, `the volume ${folder} was made with a limit of ${size} bytes (its data is kept from before), and a limit is fixed when a volume is made: set size_limit to ${size} bytes, or uninstall with "delete data" first`);
    }
    if (await this.mountAt(target)) return;
    await mkdir(target, { recursive: true });
    // noinit_itable: the kernel would otherwise write out every inode table in the background,
    // filling the sparse image (gocryptfs stores zeros encrypted, not as holes).
    await this.tool(field, 'mount', ['-t', 'ext4', '-o', 'loop,noinit_itable,nodev,nosuid', image, target]);
    if (!(await this.mountAt(target))) throw new SizeLimitError(field, 'mount reported success but nothing is mounted', target);
  }

  /**
   * Mounts every limited folder the volume at `root` was made with: whenever the volume is open,
   * so are they (a backup of data an uninstall kept reads them through their folders too).
   */
  async mountAll(root: string): Promise<void> {
    const canonical = await realpath(root);
    const images = await readdir(path.join(canonical, SIZE_LIMIT_DIR)).catch(() => [] as string[]);
    for (const file of images) {
      if (!file.endsWith('.ext4')) continue; // a .new being made, or its staging mount point
      const folder = file.slice(0, -'.ext4'.length);
      const target = path.join(canonical, folder);
      if (await this.mountAt(target)) continue;
      await mkdir(target, { recursive: true });
      await this.tool(`storage.persistent.${folder}.size_limit`, 'mount', ['-t', 'ext4', '-o', 'loop,noinit_itable,nodev,nosuid', path.join(canonical, SIZE_LIMIT_DIR, file), target]);
    }
  }

  /**
   * Copies the folder's files into the new file system (the caller then empties the folder): all
   * or nothing for the limit, since what does not fit leaves the folder as it was and no image. A
   * crash between the rename and the emptying leaves the originals under the mount, hidden, and
   * the copy in use: nothing is lost.
   */
  private async copyInto(image: string, target: string, field: string): Promise<void> {
    const staging = `${image}.mnt`;
    await mkdir(staging, { recursive: true, mode: 0o700 });
    await this.tool(field, 'mount', ['-t', 'ext4', '-o', 'loop,noinit_itable,nodev,nosuid', image, staging]);
    let copied: ToolResult | undefined;
    try {
      copied = await runTool('cp', ['-a', '--', `${target}/.`, `${staging}/`], { timeoutMs: this.options.timeoutMs ?? 10 * 60_000 });
    } finally {
      await unmountUnder(path.dirname(staging), this.options);
      await rm(staging, { recursive: true, force: true });
    }
    if (copied.code !== 0) {
      const full = /No space left/i.test(copied.stderr);
      throw new SizeLimitError(field, full ? `the files already in the volume ${path.basename(target)} do not fit in its limit; raise size_limit or make room` : 'cannot move the files already in the volume into its limit', stderrTail(copied.stderr));
    }
    this.options.logger.info('copied existing files into a size-limited folder', { folder: path.basename(target) });
  }

  /** The loop-mounted ext4 at `target`, if any. */
  private async mountAt(target: string): Promise<MountEntry | undefined> {
    const entry = topMountAt(await readMountInfo(this.options.mountInfoFile ?? SELF_MOUNTINFO), target);
    return entry?.fsType === 'ext4' ? entry : undefined;
  }

  private async tool(field: string, binary: string, args: string[]): Promise<void> {
    const result = await runTool(binary, args, { timeoutMs: this.options.timeoutMs ?? 60_000 }).catch((err: Error) => {
      throw new SizeLimitError(field, `cannot run ${binary}`, err.message);
    });
    if (result.code !== 0) throw new SizeLimitError(field, `${binary} failed`, stderrTail(result.stderr) || `exit code ${result.code}`);
  }
}

/**
 * Unmounts every mount under `dir` (not `dir` itself), deepest first: the size-limited folders of
 * a volume, before the volume itself is unmounted or deleted (a lock, an uninstall).
 */
export async function unmountUnder(dir: string, options: { mountInfoFile?: string; timeoutMs?: number } = {}): Promise<void> {
  const prefix = `${dir.replace(/\/$/, '')}/`;
  const nested = (await readMountInfo(options.mountInfoFile ?? SELF_MOUNTINFO)).filter((entry) => entry.mountPoint.startsWith(prefix));
  const points = [...new Set(nested.map((entry) => entry.mountPoint))].sort((a, b) => b.length - a.length);
  for (const point of points) {
    const source = nested.filter((entry) => entry.mountPoint === point).at(-1)?.source;
    const backing = source && (await loopBackingFile(source));
    const result = await runTool('umount', [point], { timeoutMs: options.timeoutMs ?? 30_000 });
    if (result.code !== 0) throw new PiccoloError(409, 'volume_busy', `${point} is in use (open files or a process inside it) and cannot be unmounted`, { detail: stderrTail(result.stderr) });
    // Seen here on a loaded machine: up to a minute after a container using the folder was removed.
    if (source && backing) await loopReleased(source, backing, Math.max(options.timeoutMs ?? 0, 120_000));
  }
}

/** The file a loop device is attached to (/sys/block/loopN/loop/backing_file), or undefined. */
async function loopBackingFile(device: string): Promise<string | undefined> {
  const loop = /^\/dev\/(loop\d+)$/.exec(device)?.[1];
  if (!loop) return undefined;
  return readFile(`/sys/block/${loop}/loop/backing_file`, 'utf8').then((text) => text.trim(), () => undefined);
}

/**
 * The kernel detaches an auto-clearing loop device after its last unmount, asynchronously; until
 * then it holds its image open, and the volume the image is in cannot be unmounted (busy).
 */
async function loopReleased(device: string, image: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // Gone, or attached to another file already: loop devices are reused as soon as they are free.
  while ((await loopBackingFile(device)) === image) {
    if (Date.now() > deadline) throw new PiccoloError(409, 'volume_busy', `${device} still holds ${image} after the unmount`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Removes what is in a folder, keeping the folder (absent: nothing to do). */
async function emptyFolder(dir: string): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  for (const entry of entries) await rm(path.join(dir, entry), { recursive: true, force: true });
}

async function holdsFiles(dir: string): Promise<boolean> {
  return readdir(dir).then((entries) => entries.length > 0, () => false);
}
