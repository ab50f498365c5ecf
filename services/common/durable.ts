// Durable small files: a write either lands whole or not at all, and survives power loss once
// the promise resolves (temp file, fsync, rename, directory fsync).
import { open, rename, rm, statfs } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

/**
 * A durable write that failed. `replaced` tells the caller what is on disk: false, the target
 * still holds its old bytes (the temp file was removed), so nothing needs repair and the same
 * write may simply be tried again (e.g. once a full disk has room); true, the rename happened but
 * the directory fsync failed, so the new bytes are visible and only their durability is in doubt.
 * `code` is the system error's (ENOSPC, EIO...), so callers checking err.code keep working.
 */
export class DurableWriteError extends Error {
  readonly code: string | undefined;

  constructor(
    readonly file: string,
    readonly replaced: boolean,
    cause: unknown,
  ) {
    super((cause as Error)?.message ?? String(cause), { cause });
    this.name = 'DurableWriteError';
    this.code = (cause as NodeJS.ErrnoException)?.code;
  }
}

/** The new content, written and fsynced beside the target; nothing replaced until commit(). */
export interface StagedFile {
  /** Renames it over the target and fsyncs the directory. Throws DurableWriteError. */
  commit(): Promise<void>;
  /** Removes the staged file; the target keeps its old bytes. Idempotent, never throws. */
  discard(): Promise<void>;
}

/**
 * Writes and fsyncs `data` to a temp file beside `file`. This is the step that needs space, so a
 * caller can stage every file of a change before replacing any (all-or-nothing across files).
 * Throws DurableWriteError (replaced: false) with nothing left behind.
 */
export async function stageFileDurable(file: string, data: string | Uint8Array, mode = 0o600): Promise<StagedFile> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (err) {
    await rm(temp, { force: true }).catch(() => {});
    throw new DurableWriteError(file, false, err);
  }
  let settled = false;
  return {
    async commit() {
      if (settled) throw new Error(`${file}: staged write already committed or discarded`);
      settled = true;
      try {
        await rename(temp, file);
      } catch (err) {
        await rm(temp, { force: true }).catch(() => {});
        throw new DurableWriteError(file, false, err);
      }
      try {
        await syncDirectory(path.dirname(file));
      } catch (err) {
        throw new DurableWriteError(file, true, err);
      }
    },
    async discard() {
      if (settled) return;
      settled = true;
      await rm(temp, { force: true }).catch(() => {});
    },
  };
}

/** Throws DurableWriteError; see its `replaced` for what the disk then holds. */
export async function writeFileDurable(file: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  await (await stageFileDurable(file, data, mode)).commit();
}

/** Makes a rename or a new file in dir itself durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Bytes this process may still write on the filesystem holding dir: root may use the blocks
 * reserved for it (ext4's 5 %), others only the available ones. undefined when statfs fails.
 */
export async function freeBytesAt(dir: string): Promise<number | undefined> {
  try {
    const fs = await statfs(dir);
    return (process.getuid?.() === 0 ? fs.bfree : fs.bavail) * fs.bsize;
  } catch {
    return undefined;
  }
}
