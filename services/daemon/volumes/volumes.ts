// Encrypted volumes: one gocryptfs folder per volume, mounted through FUSE.
//
// Layout under the root (e.g. <stateDir>/volumes), all folders 0700:
//   <root>/<name>/cipher   the gocryptfs folder: gocryptfs.conf and encrypted files
//   <root>/<name>/mnt      its mount point, where the plain files appear while mounted
//
// gocryptfs daemonizes, so a mount outlives the daemon process that made it (the daemon's unit
// has KillMode=process for that). Nothing about mounts is remembered here: every answer comes
// from /proc/self/mountinfo, so a restarted daemon finds the mounts and takes them over.
// Passphrases go to gocryptfs on stdin; never on the command line, never on disk.
import { access, constants, mkdir, opendir, readdir, realpath, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { BadRequestError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { runTool, stderrTail, type ToolResult } from '../../common/run-tool.js';
import { InvalidVolumeNameError, VolumeBusyError, VolumeError, VolumeExistsError, VolumeModeConflictError, WrongVolumePassphraseError } from './errors.js';
import { readMountInfo, SELF_MOUNTINFO, topMountAt, type MountEntry } from './mountinfo.js';
import { KeyedSerialQueue } from '../../common/serial-queue.js';
import { unmountUnder } from './size-limited.js';

/**
 * bootstrap, control, media (the shared folders apps are granted), or app-<name>; lowercase
 * letters and digits, single dashes, at most 63 characters.
 */
const VOLUME_NAME = /^(?:bootstrap|control|media|app-[a-z0-9]+(?:-[a-z0-9]+)*)$/;
const MAX_NAME_LENGTH = 63;

export function validateVolumeName(name: string): void {
  if (typeof name !== 'string' || name.length > MAX_NAME_LENGTH || !VOLUME_NAME.test(name)) throw new InvalidVolumeNameError(String(name));
}

// gocryptfs exit codes (gocryptfs(1), internal/exitcodes).
const EXIT_MOUNTPOINT_NOT_EMPTY = 10;
const EXIT_PASSWORD_INCORRECT = 12;
const EXIT_LOAD_CONF = 23;

export interface VolumeManagerOptions {
  /** Folder holding one subfolder per volume, e.g. <stateDir>/volumes. */
  root: string;
  logger: Logger;
  binaries?: {
    gocryptfs?: string;
    /** Default: fusermount3 when installed, else fusermount. */
    fusermount?: string;
  };
  /**
   * log2 of gocryptfs' scrypt N for new volumes. Volume passphrases are random 256-bit keys from
   * the key ring, so stretching them buys nothing; gocryptfs' default (16) costs ~1 s per mount on
   * a Raspberry Pi 4. 10 is gocryptfs' minimum.
   */
  scryptLogN?: number;
  /** XChaCha20-Poly1305 content encryption for new volumes: much faster than AES-GCM on CPUs without AES instructions (Raspberry Pi 4). */
  xchacha?: boolean;
  mountInfoFile?: string;
  timeoutMs?: number;
}

export interface MountOptions {
  readOnly: boolean;
}

export interface VolumeStatus {
  name: string;
  /** The cipher folder holds a gocryptfs.conf. */
  exists: boolean;
  mounted: boolean;
  readOnly: boolean;
  /** Mounted, but its gocryptfs process is gone: every access fails with ENOTCONN. */
  stale: boolean;
  mountpoint: string;
}

type Passphrase = Uint8Array | string;

export class VolumeManager {
  private readonly root: string;
  private readonly logger: Logger;
  /** One operation per volume at a time; different volumes proceed in parallel. */
  private readonly locks = new KeyedSerialQueue();
  private fusermount: Promise<string> | undefined;

  constructor(private readonly options: VolumeManagerOptions) {
    this.root = path.resolve(options.root);
    this.logger = options.logger;
  }

  mountpoint(name: string): string {
    validateVolumeName(name);
    return path.join(this.root, name, 'mnt');
  }

  async status(name: string): Promise<VolumeStatus> {
    validateVolumeName(name);
    const { mount } = await this.inspect(name);
    return mount.status;
  }

  /** Every volume with a folder under the root, whether or not it is mounted. */
  async list(): Promise<VolumeStatus[]> {
    let entries: string[];
    try {
      entries = await readdir(this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const names = entries.filter((entry) => entry.length <= MAX_NAME_LENGTH && VOLUME_NAME.test(entry)).sort();
    return Promise.all(names.map((name) => this.status(name)));
  }

  /** gocryptfs -init in a new, empty cipher folder. */
  async create(name: string, passphrase: Passphrase): Promise<VolumeStatus> {
    validateVolumeName(name);
    const secret = passphraseBytes(passphrase);
    return this.locks.run(name, async () => {
      const paths = await this.paths(name, { create: true });
      if (await isFile(path.join(paths.cipher, 'gocryptfs.conf'))) throw new VolumeExistsError(name);
      const args = ['-init', '-q', '-scryptn', String(this.options.scryptLogN ?? 10)];
      if (this.options.xchacha) args.push('-xchacha');
      const result = await this.gocryptfs(name, [...args, paths.cipher], secret);
      if (result.code !== 0) throw new VolumeError(name, 'failed', 'gocryptfs -init failed', describe(result));
      this.logger.info('volume created', { volume: name, xchacha: Boolean(this.options.xchacha) });
      return (await this.inspect(name)).mount.status;
    }).finally(() => secret.fill(0));
  }

  /**
   * Mounts the volume, or takes over the mount a previous daemon process left: mounted already in
   * the same mode is a no-op (never a second FUSE process); in the other mode a VolumeModeConflictError.
   */
  async mount(name: string, passphrase: Passphrase, { readOnly }: MountOptions): Promise<VolumeStatus> {
    validateVolumeName(name);
    const secret = passphraseBytes(passphrase);
    return this.locks.run(name, async () => {
      const { mount, paths } = await this.inspect(name);
      if (mount.foreign) throw new VolumeError(name, 'mountpoint_busy', `something else is mounted on ${paths.mnt}`, `${mount.foreign.fsType} from ${mount.foreign.source}`);
      const current = mount.status;
      if (current.mounted && !current.stale) {
        if (current.readOnly !== readOnly) throw new VolumeModeConflictError(name, current.readOnly);
        this.logger.info('volume already mounted; taking it over', { volume: name, readOnly });
        return current;
      }
      if (current.stale) {
        this.logger.warn('volume mount is stale (its gocryptfs process is gone); remounting', { volume: name });
        await this.runFusermount(name, ['-u', '-z', paths.mnt]);
      }
      if (!(await isDirectory(paths.cipher))) throw new VolumeError(name, 'missing', `no cipher folder ${paths.cipher}`);
      if (!(await isFile(path.join(paths.cipher, 'gocryptfs.conf')))) throw new VolumeError(name, 'missing', `no gocryptfs.conf in ${paths.cipher}`);
      await mkdir(paths.mnt, { recursive: true, mode: 0o700 });

      const args = ['-q'];
      if (readOnly) args.push('-ro');
      // The kernel lets into a FUSE mount only processes with the mounter's uid AND gid: the daemon
      // runs in group piccolo, Podman and the containers' users do not. -allow_other lets them in,
      // with the kernel checking file permissions (gocryptfs adds default_permissions). The daemon's
      // own volumes (bootstrap, control) stay closed to everyone else.
      if (name === 'media' || name.startsWith('app-')) args.push('-allow_other');
      const result = await this.gocryptfs(name, [...args, paths.cipher, paths.mnt], secret);
      if (result.code !== 0) throw mountFailure(name, result);
      const after = (await this.inspect(name)).mount.status;
      if (!after.mounted) throw new VolumeError(name, 'failed', 'gocryptfs reported success but nothing is mounted', describe(result));
      this.logger.info('volume mounted', { volume: name, readOnly });
      return after;
    }).finally(() => secret.fill(0));
  }

  /** Unmounts; a volume that is not mounted is left as is. A mount in use throws VolumeBusyError. */
  async unmount(name: string): Promise<VolumeStatus> {
    validateVolumeName(name);
    return this.locks.run(name, () => this.unmountLocked(name));
  }

  /** Purges a volume for good (the caller has confirmed): unmounts it, then deletes its folder. */
  async destroy(name: string): Promise<void> {
    validateVolumeName(name);
    return this.locks.run(name, async () => {
      const status = await this.unmountLocked(name);
      // Deleting through a mount would follow it into other data; refuse unless really gone.
      const { mount } = await this.inspect(name);
      if (mount.status.mounted || mount.foreign) throw new VolumeError(name, 'mountpoint_busy', `still mounted on ${status.mountpoint}; not deleting`);
      await rm(path.join(this.root, name), { recursive: true, force: true });
      this.logger.info('volume destroyed', { volume: name });
    });
  }

  // ---- internals ----

  private async unmountLocked(name: string): Promise<VolumeStatus> {
    const { mount, paths } = await this.inspect(name);
    if (!mount.status.mounted) return mount.status;
    // Size-limited folders (size-limited.ts) are mounted inside the volume: they go first.
    if (!mount.status.stale) await unmountUnder(paths.mnt, { mountInfoFile: this.options.mountInfoFile, timeoutMs: this.options.timeoutMs });
    // A dead mount cannot be in use by anyone; detach it lazily so a stuck reader cannot block it.
    const args = mount.status.stale ? ['-u', '-z', paths.mnt] : ['-u', paths.mnt];
    await this.runFusermount(name, args);
    this.logger.info('volume unmounted', { volume: name });
    return (await this.inspect(name)).mount.status;
  }

  private async runFusermount(name: string, args: string[]): Promise<void> {
    const binary = await this.fusermountBinary();
    let result: ToolResult;
    try {
      result = await runTool(binary, args, { timeoutMs: this.options.timeoutMs ?? 30_000 });
    } catch (err) {
      throw new VolumeError(name, 'failed', `cannot run ${binary}`, (err as Error).message);
    }
    if (result.code === 0) return;
    if (/busy/i.test(result.stderr)) throw new VolumeBusyError(name, stderrTail(result.stderr));
    throw new VolumeError(name, 'failed', 'unmount failed', describe(result));
  }

  private async gocryptfs(name: string, args: string[], passphrase: Buffer): Promise<ToolResult> {
    const binary = this.options.binaries?.gocryptfs ?? 'gocryptfs';
    try {
      // With no -passfile and stdin not a terminal, gocryptfs reads the password from stdin.
      // (-passfile /dev/stdin fails: Node's stdin for a child is a socket, which cannot be open()ed.)
      return await runTool(binary, args, { stdin: passphrase, timeoutMs: this.options.timeoutMs ?? 60_000 });
    } catch (err) {
      throw new VolumeError(name, 'failed', `cannot run ${binary}`, (err as Error).message);
    }
  }

  /** Canonical paths, as the kernel writes them in mountinfo. */
  private async paths(name: string, { create }: { create: boolean }): Promise<{ dir: string; cipher: string; mnt: string }> {
    if (create) {
      await mkdir(this.root, { recursive: true, mode: 0o700 });
      for (const sub of ['', 'cipher', 'mnt']) await mkdir(path.join(this.root, name, sub), { recursive: true, mode: 0o700 });
    }
    let root: string;
    try {
      root = await realpath(this.root);
    } catch {
      root = this.root;
    }
    const dir = path.join(root, name);
    return { dir, cipher: path.join(dir, 'cipher'), mnt: path.join(dir, 'mnt') };
  }

  private async inspect(name: string): Promise<{
    paths: { dir: string; cipher: string; mnt: string };
    mount: { status: VolumeStatus; foreign?: MountEntry };
  }> {
    const paths = await this.paths(name, { create: false });
    const entry = topMountAt(await readMountInfo(this.options.mountInfoFile ?? SELF_MOUNTINFO), paths.mnt);
    const exists = await isFile(path.join(paths.cipher, 'gocryptfs.conf'));
    const status: VolumeStatus = { name, exists, mounted: false, readOnly: false, stale: false, mountpoint: this.mountpoint(name) };
    if (!entry) return { paths, mount: { status } };
    if (entry.fsType !== 'fuse.gocryptfs' || entry.source !== paths.cipher) return { paths, mount: { status, foreign: entry } };
    status.mounted = true;
    status.readOnly = entry.options.includes('ro');
    status.stale = await isStale(paths.mnt);
    return { paths, mount: { status } };
  }

  private fusermountBinary(): Promise<string> {
    const configured = this.options.binaries?.fusermount;
    if (configured) return Promise.resolve(configured);
    this.fusermount ??= findOnPath(['fusermount3', 'fusermount']).then((found) => found ?? 'fusermount');
    return this.fusermount;
  }
}

function passphraseBytes(passphrase: Passphrase): Buffer {
  // A copy the tool runner can wipe; the caller wipes its own.
  const bytes = typeof passphrase === 'string' ? Buffer.from(passphrase, 'utf8') : Buffer.from(passphrase);
  // gocryptfs reads one line: a newline would silently cut the passphrase short.
  if (bytes.length === 0 || bytes.includes(0x0a) || bytes.includes(0x0d) || bytes.includes(0x00)) {
    bytes.fill(0);
    throw new BadRequestError('a volume passphrase must be one non-empty line');
  }
  return bytes;
}

function mountFailure(name: string, result: ToolResult): VolumeError {
  if (result.code === EXIT_PASSWORD_INCORRECT) return new WrongVolumePassphraseError(name);
  // gocryptfs 2.3 exits 11 ("other"), not the documented 23, for a gocryptfs.conf it cannot parse.
  if (result.code === EXIT_LOAD_CONF || /Cannot open config file|Failed to unmarshal config/i.test(result.stderr)) {
    return new VolumeError(name, 'config_unreadable', 'gocryptfs.conf cannot be read (damaged?)', describe(result));
  }
  if (result.code === EXIT_MOUNTPOINT_NOT_EMPTY) return new VolumeError(name, 'mountpoint_busy', 'the mount point is not empty', describe(result));
  return new VolumeError(name, 'failed', 'gocryptfs could not mount it', describe(result));
}

function describe(result: ToolResult): string {
  if (result.timedOut) return 'timed out';
  const exit = result.code === null ? `killed by ${result.signal}` : `exit code ${result.code}`;
  return `${exit}: ${stderrTail(result.stderr) || 'no message'}`;
}

/**
 * A FUSE mount whose process died answers ENOTCONN. stat() is no probe: the kernel answers it from
 * cached attributes. Opening the directory always asks the FUSE process.
 */
async function isStale(mountpoint: string): Promise<boolean> {
  try {
    const handle = await opendir(mountpoint);
    await handle.close();
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOTCONN';
  }
}

async function isFile(file: string): Promise<boolean> {
  return stat(file).then((s) => s.isFile(), () => false);
}

async function isDirectory(dir: string): Promise<boolean> {
  return stat(dir).then((s) => s.isDirectory(), () => false);
}

async function findOnPath(names: string[]): Promise<string | undefined> {
  const dirs = (process.env.PATH ?? '/usr/bin:/bin').split(':').filter(Boolean);
  for (const name of names) {
    for (const dir of dirs) {
      const candidate = path.join(dir, name);
      if (await access(candidate, constants.X_OK).then(() => true, () => false)) return candidate;
    }
  }
  return undefined;
}
