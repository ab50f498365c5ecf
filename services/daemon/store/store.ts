// The daemon's control store: one small typed JSON document (app specs, port allocations,
// settings) in a directory, in production the mounted gocryptfs `control` volume. One writer
// per store (a lock file), commits serialized through a queue, each one atomic and durable
// before it resolves, and a checksum so damage is found at open instead of being served.
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { DurableWriteError, freeBytesAt, syncDirectory, writeFileDurable } from '../../common/durable.js';
import { DiskFullError, isNoSpaceError, UnavailableError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { StoreMigrationError, StoreTooLargeError } from './errors.js';
import { decodeStoreFile, encodeStoreFile, type StoreSnapshot } from './file-format.js';
import { deepFreeze, type DeepReadonly } from './freeze.js';
import { WriterLock } from './lock.js';
import { SerialQueue } from '../../common/serial-queue.js';

export * from './errors.js';
export type { DeepReadonly } from './freeze.js';

export const STORE_FILE_NAME = 'control.json';
export const LOCK_FILE_NAME = 'control.lock';
/** Control data, not bulk data: a document this large means something is stored in the wrong place. */
export const DEFAULT_MAX_BYTES = 1024 * 1024;

/**
 * Upgrades a document by one schema version and returns the result. Must be pure: it may run
 * again after a crash. `any` because each migration knows its own input shape.
 */
export type Migration = (data: any) => unknown;

export interface ControlStoreOptions<T> {
  /** Directory of the store; created if missing, but its parent must exist (a mounted volume). */
  dir: string;
  logger: Logger;
  /** The schema version this code reads and writes, from 1. */
  schemaVersion: number;
  /** migrations[i] upgrades schema i+1 to i+2, so there are exactly schemaVersion - 1 of them. */
  migrations: readonly Migration[];
  /** The document of a new store (schema `schemaVersion`, rev 0). */
  initial: () => T;
  maxBytes?: number;
  /** Told how each commit's write went, so a full disk can be shown (system/disk-space.ts). */
  onWrite?: (outcome: WriteOutcome) => void;
}

/** A commit's write: done, or refused for lack of space (`bytes` is what it tried to write). */
export type WriteOutcome = { ok: true; bytes: number } | { ok: false; noSpace: boolean; bytes: number };

export interface CommitEvent<T> {
  rev: number;
  data: DeepReadonly<T>;
}

export type CommitListener<T> = (event: CommitEvent<T>) => void;

interface Committed<T> {
  rev: number;
  data: DeepReadonly<T>;
}

export class ControlStore<T extends object> {
  private state: Committed<T>;
  private readonly listeners = new Set<CommitListener<T>>();
  /** Commits in call order; one failed commit does not block the next. */
  private readonly queue = new SerialQueue();
  private closing = false;
  /**
   * Set when a write failed after its rename (the directory fsync): the file may then hold a
   * commit that memory does not, so the next commit first reads the file back. A write that
   * failed before its rename (a full disk) left the old file whole and sets nothing: the next
   * commit simply tries again, so writes resume by themselves once there is space.
   */
  private rereadBeforeNextCommit = false;

  private constructor(
    readonly file: string,
    private readonly schemaVersion: number,
    private readonly maxBytes: number,
    private readonly lock: WriterLock,
    private readonly logger: Logger,
    initial: Committed<T>,
    private readonly onWrite: ((outcome: WriteOutcome) => void) | undefined,
  ) {
    this.state = initial;
  }

  /**
   * Opens the store for writing: takes the writer lock, reads and verifies the file (or creates
   * it), migrates it to `schemaVersion` and commits that, all before returning.
   * Throws StoreCorruptError, StoreSchemaTooNewError, StoreMigrationError (each leaving the
   * file untouched), StoreInUseError, or UnavailableError when the parent of `dir` does not exist.
   */
  static async open<T extends object>(options: ControlStoreOptions<T>): Promise<ControlStore<T>> {
    const { dir, logger, schemaVersion, migrations, initial, maxBytes = DEFAULT_MAX_BYTES } = options;
    if (!Number.isSafeInteger(schemaVersion) || schemaVersion < 1) throw new TypeError(`schemaVersion must be an integer >= 1, got ${schemaVersion}`);
    if (migrations.length !== schemaVersion - 1) throw new TypeError(`schema v${schemaVersion} needs ${schemaVersion - 1} migrations, got ${migrations.length}`);
    await ensureStoreDirectory(dir);
    const file = path.join(dir, STORE_FILE_NAME);
    const lock = await WriterLock.acquire({ file: path.join(dir, LOCK_FILE_NAME), logger });
    try {
      const existing = await readIfExists(file);
      // Verified before anything else is touched: a damaged store stays exactly as found.
      let snapshot: StoreSnapshot | undefined = existing === undefined ? undefined : decodeStoreFile(existing, file, schemaVersion);
      await removeLeftoverTemps(dir, logger);
      if (!snapshot) {
        snapshot = { schemaVersion, rev: 0, data: initial() };
        await writeFileDurable(file, encodeWithinLimit(snapshot, maxBytes), 0o600);
        logger.info('created control store', { file, schemaVersion });
      } else if (snapshot.schemaVersion < schemaVersion) {
        const from = snapshot.schemaVersion;
        snapshot = { schemaVersion, rev: snapshot.rev + 1, data: migrate(snapshot.data, from, migrations) };
        await writeFileDurable(file, encodeWithinLimit(snapshot, maxBytes), 0o600);
        logger.info('migrated control store', { file, from, to: schemaVersion, rev: snapshot.rev });
      }
      const data = deepFreeze(roundTrip(snapshot.data) as T);
      return new ControlStore<T>(file, schemaVersion, maxBytes, lock, logger, { rev: snapshot.rev, data }, options.onWrite);
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  /** Revision of the last durable commit; 0 for a store just created. */
  get rev(): number {
    return this.state.rev;
  }

  /** The last durable document, deeply frozen. */
  get data(): DeepReadonly<T> {
    return this.state.data;
  }

  /**
   * Applies `mutate` to a copy of the document and makes the result durable; resolves with the
   * new rev. Commits run one at a time in call order, each on the result of the one before.
   * If `mutate` throws, or the result is not JSON or too large, nothing changes.
   */
  commit(mutate: (draft: T) => void | Promise<void>): Promise<number> {
    if (this.closing) return Promise.reject(new UnavailableError('the control store is closed'));
    return this.queue.run(() => this.apply(mutate));
  }

  /** Calls `listener` after each durable commit, in rev order. Returns the unsubscribe function. */
  subscribe(listener: CommitListener<T>): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Refuses new commits, waits for queued ones, releases the writer lock. Idempotent. */
  async close(): Promise<void> {
    this.closing = true;
    await this.queue.idle();
    this.listeners.clear();
    await this.lock.release();
  }

  private async apply(mutate: (draft: T) => void | Promise<void>): Promise<number> {
    if (this.rereadBeforeNextCommit) await this.rereadFile();
    const draft = structuredClone(this.state.data) as T;
    await mutate(draft);
    const snapshot: StoreSnapshot = { schemaVersion: this.schemaVersion, rev: this.state.rev + 1, data: draft };
    const text = encodeWithinLimit(snapshot, this.maxBytes);
    const bytes = Buffer.byteLength(text);
    try {
      await writeFileDurable(this.file, text, 0o600);
    } catch (err) {
      // Only a failure after the rename leaves disk and memory possibly apart (see the field).
      if (!(err instanceof DurableWriteError) || err.replaced) this.rereadBeforeNextCommit = true;
      const noSpace = isNoSpaceError(err);
      this.onWrite?.({ ok: false, noSpace, bytes });
      if (noSpace) {
        const free = await freeBytesAt(path.dirname(this.file));
        this.logger.error('control store write failed: the state disk is full; the commit was not made, the store is unchanged', { file: this.file, bytes, freeBytes: free });
        throw new DiskFullError(free);
      }
      this.logger.error('control store write failed; the commit was not made', { file: this.file, err, rereadNext: this.rereadBeforeNextCommit });
      throw new UnavailableError(`the control store could not be written: ${(err as Error).message}`);
    }
    // Readers get what a reopen would read, not the draft (e.g. undefined fields dropped).
    this.state = { rev: snapshot.rev, data: deepFreeze(JSON.parse(text).data as T) };
    this.logger.debug('control store commit', { rev: snapshot.rev, bytes: text.length });
    this.onWrite?.({ ok: true, bytes });
    this.notify();
    return snapshot.rev;
  }

  /**
   * After a write whose rename may have happened: adopts what the file holds, so the next rev is
   * built on what a reopen would read. A file that fails verification throws (503) and is left
   * as it is; the next commit checks again.
   */
  private async rereadFile(): Promise<void> {
    const snapshot = decodeStoreFile(await readFile(this.file), this.file, this.schemaVersion);
    this.rereadBeforeNextCommit = false;
    if (snapshot.rev === this.state.rev) return;
    this.logger.warn('control store file holds a commit that failed to report; adopting it', { rev: snapshot.rev, was: this.state.rev });
    this.state = { rev: snapshot.rev, data: deepFreeze(snapshot.data as T) };
    this.notify();
  }

  private notify(): void {
    const event: CommitEvent<T> = { rev: this.state.rev, data: this.state.data };
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (err) {
        // The commit is durable already; a failing listener is its own problem.
        this.logger.error('control store listener failed', { rev: event.rev, err });
      }
    }
  }
}

/** The file text for a snapshot; throws, before anything is written, if it is not JSON or too large. */
function encodeWithinLimit(snapshot: StoreSnapshot, maxBytes: number): string {
  const text = encodeStoreFile(snapshot);
  const size = Buffer.byteLength(text);
  if (size > maxBytes) throw new StoreTooLargeError(size, maxBytes);
  return text;
}

function migrate(data: unknown, from: number, migrations: readonly Migration[]): unknown {
  for (let version = from; version <= migrations.length; version++) {
    try {
      // A copy, so a migration that edits its input in place still cannot touch the original.
      data = migrations[version - 1]!(structuredClone(data));
    } catch (err) {
      throw new StoreMigrationError(version, err);
    }
    if (typeof data !== 'object' || data === null) throw new StoreMigrationError(version, new TypeError('the migration returned no document'));
  }
  return data;
}

/** The value as the store file will hold it (JSON), so the first read matches a later reopen. */
function roundTrip(data: unknown): unknown {
  return JSON.parse(JSON.stringify(data));
}

/**
 * Creates the store's own directory if needed, but never its parent: in production the parent
 * is a mounted volume, and a missing one must not be papered over by writing to whatever lies
 * underneath. (An unmounted, empty mountpoint is the caller's check: it mounts the volume.)
 */
async function ensureStoreDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o700 });
    await syncDirectory(path.dirname(dir));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UnavailableError(`the parent of control store directory ${dir} does not exist`);
    if (code !== 'EEXIST' || !(await stat(dir)).isDirectory()) throw err;
  }
}

async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Temp files of writeFileDurable() (".control.json.<hex>.tmp") left by a crash before their
 * rename. Never acknowledged, so never needed; only removed while holding the writer lock.
 */
async function removeLeftoverTemps(dir: string, logger: Logger): Promise<void> {
  const leftovers = (await readdir(dir)).filter((name) => /^\.control\.json\.[0-9a-f]+\.tmp$/.test(name));
  for (const name of leftovers) await rm(path.join(dir, name), { force: true });
  if (leftovers.length) logger.warn('removed leftover control store temp files', { dir, count: leftovers.length });
}
