// What a backup holds, as one tar stream (tar-stream; folders packed by tar-fs), before encryption:
//
//   piccolo-backup.json        the manifest, always first: what follows, and from which device
//   control/control.json       the control store's file (apps, settings), as the store writes it
//   volumes/<volume>/...       each volume's files: bootstrap and app-<name>, with owners and modes
//
// The reader is strict about names (no "..", nothing outside volumes/<listed volume>/) and writes
// each volume itself rather than through tar-fs's extract, which refuses absolute symlinks that
// app data holds (they point inside the app's container, not at the host); nothing is ever written
// through a symlink the archive made.
import { createWriteStream } from 'node:fs';
import { chmod, lchown, link, mkdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack as packFolder } from 'tar-fs';
import { extract as tarExtract, pack as tarPack, type Headers, type Pack } from 'tar-stream';
import { PiccoloError } from '../../common/errors.js';
import { validateVolumeName } from '../volumes/volumes.js';
import { SIZE_LIMIT_DIR } from '../volumes/size-limited.js';
import { BackupArchiveError } from './errors.js';

// tar-fs 2.x reads opts.umask and opts.sort (its index.js); @types/tar-fs leaves them out. umask 0 keeps the files' modes.
declare module 'tar-fs' {
  interface PackOptions {
    umask?: number;
    sort?: boolean;
  }
}

export const MANIFEST_NAME = 'piccolo-backup.json';
export const CONTROL_NAME = 'control/control.json';
export const CONTENTS_FORMAT = 1;
const MAX_MANIFEST_BYTES = 64 * 1024;
/** The control store refuses documents over 1 MiB; a little room for its framing. */
const MAX_CONTROL_BYTES = 2 * 1024 * 1024;

export interface BackupManifest {
  format: typeof CONTENTS_FORMAT;
  createdAt: string;
  device: { name: string; version: string };
  /** The control store snapshot: its schema and revision. */
  control: { schemaVersion: number; rev: number };
  /** Every volume in the archive but control (whose one file is CONTROL_NAME): bootstrap, app-<name>. */
  volumes: string[];
  /** Apps installed at the time (their specs are in the control store). */
  apps: string[];
}

/** The pack side: entries in order, folders streamed file by file. */
export class ContentsWriter {
  readonly stream: Pack = tarPack();
  /** File bytes added so far (progress). */
  bytes = 0;

  async addFile(name: string, content: Buffer | string): Promise<void> {
    const data = Buffer.from(content);
    await this.whileOpen((resolve, reject) => this.stream.entry({ name, mode: 0o600, mtime: new Date(), type: 'file' }, data, (err) => (err ? reject(err) : resolve())));
    this.bytes += data.length;
  }

  /** Adds a folder's tree under volumes/<volume>/, keeping modes, owners, times and symlinks; sockets and fifos are skipped. */
  addVolume(volume: string, dir: string): Promise<void> {
    const prefix = `volumes/${volume}`;
    return this.whileOpen((resolve) => {
      packFolder(dir, {
        pack: this.stream,
        finalize: false,
        umask: 0,
        strict: false,
        sort: true,
        // A size-limited volume's image (volumes/size-limited.ts) is sparse and mounted: its files
        // come through the mounted folder, and a restore moves them into a new image.
        ignore: (file) => path.relative(dir, file) === SIZE_LIMIT_DIR,
        map: (header) => {
          this.bytes += header.size ?? 0;
          return { ...header, name: header.name === '.' ? `${prefix}/` : `${prefix}/${header.name}` };
        },
        finish: () => resolve(),
      });
    });
  }

  /**
   * A step that the pack ends by calling back. A pack destroyed meanwhile (the client went away)
   * never calls back: the step then rejects, so that whoever waits (an app stopped for the copy)
   * gets on with it.
   */
  private whileOpen(step: (resolve: () => void, reject: (err: Error) => void) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      const onClose = () => reject(new Error('the backup stream was closed before it ended'));
      const settle = (fn: () => void) => {
        this.stream.off('error', onError);
        this.stream.off('close', onClose);
        fn();
      };
      this.stream.once('error', onError);
      this.stream.once('close', onClose);
      step(() => settle(resolve), (err) => settle(() => reject(err)));
    });
  }

  finalize(): void {
    this.stream.finalize();
  }
}

export interface ReadHandlers {
  /** The manifest, checked; resolves with each listed volume's folder to write into, and control's. */
  onManifest(manifest: BackupManifest): Promise<{ volumes: ReadonlyMap<string, string>; controlStoreDir: string }>;
  /** Told as each volume starts (progress). */
  onVolume?(volume: string): void;
}

/**
 * Reads a decrypted contents stream to its end, writing as it goes. Rejects with a
 * BackupArchiveError for contents that are not a backup's; the caller throws away what was written.
 */
export async function readContents(source: Readable, handlers: ReadHandlers): Promise<BackupManifest> {
  const extract = tarExtract();
  let manifest: BackupManifest | undefined;
  let targets: { volumes: ReadonlyMap<string, string>; controlStoreDir: string } | undefined;
  let controlSeen = false;
  const writers = new Map<string, VolumeWriter>();
  extract.on('entry', (header, stream, next) => {
    handleEntry(header, stream).then(() => next(), (err) => {
      stream.resume();
      next(err);
    });
  });

  async function handleEntry(header: Headers, stream: Readable): Promise<void> {
    if (!manifest) {
      if (header.name !== MANIFEST_NAME || header.type !== 'file') throw contentsError(`the first entry is ${JSON.stringify(header.name)}, not the manifest`);
      manifest = parseManifest(await readAll(stream, MAX_MANIFEST_BYTES, 'the manifest'));
      targets = await handlers.onManifest(manifest);
      return;
    }
    if (header.name === CONTROL_NAME && header.type === 'file') {
      if (controlSeen) throw contentsError('the control store appears twice');
      controlSeen = true;
      const bytes = await readAll(stream, MAX_CONTROL_BYTES, 'the control store');
      await mkdir(targets!.controlStoreDir, { recursive: true, mode: 0o700 });
      await writeFile(path.join(targets!.controlStoreDir, 'control.json'), bytes, { mode: 0o600 });
      return;
    }
    const match = /^volumes\/([^/]+)(?:\/(.*))?$/.exec(header.name);
    const volume = match?.[1];
    const root = volume === undefined ? undefined : targets!.volumes.get(volume);
    if (!match || !root) throw contentsError(`unexpected entry ${JSON.stringify(header.name.slice(0, 200))}`);
    let writer = writers.get(volume!);
    if (!writer) {
      writer = new VolumeWriter(root);
      writers.set(volume!, writer);
      handlers.onVolume?.(volume!);
    }
    await writer.write(match[2] ?? '', header, stream);
  }

  try {
    await pipeline(source, extract);
  } catch (err) {
    // tar-stream's own words for a cut or garbled tar ("Unexpected end of data", "Invalid tar header");
    // anything else (a wrong key, a full disk, a volume that would not mount) goes on as it is.
    if (/unexpected end of data|invalid tar header|size mismatch/i.test((err as Error).message) && !(err instanceof PiccoloError)) {
      throw contentsError(`the contents are not a readable tar: ${(err as Error).message}`);
    }
    throw err;
  }
  if (!manifest) throw contentsError('no manifest');
  if (!controlSeen) throw contentsError('no control store');
  const missing = manifest.volumes.filter((volume) => !writers.has(volume));
  if (missing.length) throw contentsError(`volumes listed but missing: ${missing.join(', ')}`);
  for (const writer of writers.values()) await writer.finish();
  return manifest;
}

export function parseManifest(bytes: Buffer): BackupManifest {
  let value: any;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw contentsError('the manifest is not JSON');
  }
  if (typeof value !== 'object' || value === null) throw contentsError('the manifest is not an object');
  if (value.format !== CONTENTS_FORMAT) throw new BackupArchiveError('unsupported_format', `contents format ${JSON.stringify(value.format)}; this version reads ${CONTENTS_FORMAT}`);
  const names = (list: unknown) => Array.isArray(list) && list.every((item) => typeof item === 'string');
  if (!names(value.volumes) || !names(value.apps)) throw contentsError('the manifest lists no volumes or apps');
  if (!Number.isSafeInteger(value.control?.schemaVersion) || !Number.isSafeInteger(value.control?.rev)) throw contentsError('the manifest does not describe the control store');
  for (const volume of value.volumes as string[]) {
    try {
      validateVolumeName(volume);
    } catch {
      throw contentsError(`the manifest lists a bad volume name ${JSON.stringify(volume.slice(0, 80))}`);
    }
    if (volume === 'control') throw contentsError('the control volume is carried as the control store file, not as a folder');
  }
  if (new Set(value.volumes).size !== value.volumes.length) throw contentsError('the manifest lists a volume twice');
  return value as BackupManifest;
}

/** Writes one volume's entries under its root: modes, owners and times as archived. */
class VolumeWriter {
  private readonly symlinks = new Set<string>();
  /** Folders get their mode and times at the end: a read-only folder must not stop its own files. */
  private readonly folders: { target: string; header: Headers }[] = [];

  constructor(private readonly root: string) {}

  async write(relative: string, header: Headers, stream: Readable): Promise<void> {
    const segments = relative.split('/').filter((segment, index, all) => !(segment === '' && index === all.length - 1));
    if (relative === '' || relative === '.') segments.length = 0;
    if (segments.some((segment) => segment === '' || segment === '.' || segment === '..' || segment.includes('\0'))) {
      throw contentsError(`a path that leaves its volume: ${JSON.stringify(relative.slice(0, 200))}`);
    }
    for (let i = 1; i < segments.length; i++) {
      if (this.symlinks.has(segments.slice(0, i).join('/'))) throw contentsError(`a path through a symlink: ${JSON.stringify(relative.slice(0, 200))}`);
    }
    const key = segments.join('/');
    const target = path.join(this.root, ...segments);
    if (segments.length) await mkdir(path.dirname(target), { recursive: true });
    switch (header.type) {
      case 'directory':
        await mkdir(target, { recursive: true });
        this.folders.push({ target, header });
        return;
      case 'file':
      case 'contiguous-file':
        if (!segments.length) throw contentsError('a file in place of a volume\'s root');
        await this.clear(key, target);
        await pipeline(stream, createWriteStream(target, { flags: 'wx' }));
        await this.own(target, header);
        await chmod(target, modeOf(header));
        if (header.mtime) await utimes(target, header.mtime, header.mtime);
        return;
      case 'symlink':
        if (!segments.length || !header.linkname) throw contentsError(`a bad symlink ${JSON.stringify(relative.slice(0, 200))}`);
        await this.clear(key, target);
        await symlink(header.linkname, target);
        this.symlinks.add(key);
        await this.own(target, header);
        return;
      case 'link': {
        // A hard link names an earlier entry of the same volume, by its archive path.
        const prefix = /^volumes\/[^/]+\//.exec(header.linkname ?? '')?.[0];
        const source = prefix ? header.linkname!.slice(prefix.length) : undefined;
        if (!segments.length || !source || source.split('/').some((segment) => segment === '..' || segment === '') || this.symlinks.has(source)) {
          throw contentsError(`a bad hard link ${JSON.stringify(relative.slice(0, 200))}`);
        }
        await this.clear(key, target);
        await link(path.join(this.root, source), target);
        return;
      }
      default:
        // Devices and fifos are never packed (tar-fs skips them); another tool's archive may have them.
        stream.resume();
    }
  }

  async finish(): Promise<void> {
    // Deepest first, so setting a parent's time is not undone by its child's change.
    for (const { target, header } of this.folders.reverse()) {
      await this.own(target, header);
      await chmod(target, modeOf(header));
      if (header.mtime) await utimes(target, header.mtime, header.mtime);
    }
  }

  /** An entry repeated later in the archive replaces the earlier one, never writing through it. */
  private async clear(key: string, target: string): Promise<void> {
    this.symlinks.delete(key);
    await rm(target, { force: true });
  }

  private async own(target: string, header: Headers): Promise<void> {
    try {
      await lchown(target, header.uid ?? 0, header.gid ?? 0);
    } catch (err) {
      // Not root (a development run): the files stay the daemon's own.
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    }
  }
}

function modeOf(header: Headers): number {
  return (header.mode ?? 0o644) & 0o7777;
}

async function readAll(stream: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limit) throw contentsError(`${what} is larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function contentsError(message: string): BackupArchiveError {
  return new BackupArchiveError('bad_contents', message);
}
