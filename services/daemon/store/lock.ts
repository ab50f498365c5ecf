// The single-writer lock of a store: a file naming the process that holds it. It appears whole
// or not at all (written to a temp file, then link()ed into place, which fails if it exists),
// so a lock file is never half-written. A holder that died (SIGKILL, power loss) leaves it
// behind; the next opener recognizes it as stale and takes over.
import { link, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Logger } from '../../common/logger.js';
import { StoreInUseError } from './errors.js';

/** Who holds a lock. bootId and startTime tell a dead holder from a new process that got its pid. */
export interface LockHolder {
  pid: number;
  bootId: string | null;
  startTime: string | null;
}

export interface WriterLockOptions {
  file: string;
  logger: Logger;
}

// Taking over a stale lock can race with another process doing the same; a few rounds settle it.
const MAX_ATTEMPTS = 5;

export class WriterLock {
  private released = false;

  private constructor(
    readonly file: string,
    private readonly content: string,
    private readonly logger: Logger,
  ) {}

  /** Takes the lock or throws StoreInUseError when a live process holds it. */
  static async acquire({ file, logger }: WriterLockOptions): Promise<WriterLock> {
    const content = JSON.stringify(await describeProcess(process.pid)) + '\n';
    let holder: LockHolder | undefined;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (await createExclusive(file, content)) {
        await removeAbandonedTemps(file);
        return new WriterLock(file, content, logger);
      }
      const current = await readLock(file);
      if (current === undefined) continue; // released between our attempt and the read
      holder = parseHolder(current);
      if (holder && (await isHolderAlive(holder))) throw new StoreInUseError(file, holder.pid);
      logger.warn('taking over a stale control store lock', { lockFile: file, holder: holder ?? current.slice(0, 200) });
      await removeIfUnchanged(file, current);
    }
    throw new StoreInUseError(file, holder?.pid ?? -1);
  }

  /** Removes the lock if it is still ours. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const current = await readLock(this.file);
    if (current === this.content) await rm(this.file, { force: true });
    else this.logger.warn('control store lock was replaced while held; leaving it', { lockFile: this.file });
  }
}

/** Describes a process as a lock records it; null fields where /proc is not available. */
export async function describeProcess(pid: number): Promise<LockHolder> {
  return { pid, bootId: await readBootId(), startTime: (await readProcStat(pid))?.startTime ?? null };
}

export async function isHolderAlive(holder: LockHolder): Promise<boolean> {
  const bootId = await readBootId();
  // Lock files outlive reboots on a persistent volume, and pids repeat from boot to boot.
  if (holder.bootId && bootId && holder.bootId !== bootId) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    // EPERM: the process exists but belongs to someone else; it still counts as a holder.
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const stat = await readProcStat(holder.pid);
  if (!stat) return true; // no /proc: the pid exists, which is all we can know
  if (stat.state === 'Z') return false; // exited, not yet reaped by its parent
  return !holder.startTime || holder.startTime === stat.startTime;
}

async function createExclusive(file: string, content: string): Promise<boolean> {
  const temp = tempName(file);
  await writeFile(temp, content, { flag: 'wx', mode: 0o600 });
  try {
    await link(temp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await rm(temp, { force: true });
  }
}

/**
 * Removes the stale lock only if it is still the one we judged stale: it is first renamed
 * aside (atomic), and if what we moved turns out to be a fresh lock another process took in
 * the meantime, it is linked back. (A third process creating a lock in that instant could
 * still win alongside; one daemon per device makes that theoretical.)
 */
async function removeIfUnchanged(file: string, staleContent: string): Promise<void> {
  const aside = tempName(file);
  try {
    await rename(file, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    if ((await readFile(aside, 'utf8')) !== staleContent) await link(aside, file);
  } catch (err) {
    // EEXIST: someone holds the lock again; the caller's next round finds out who.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await rm(aside, { force: true });
  }
}

async function readLock(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function parseHolder(content: string): LockHolder | undefined {
  try {
    const parsed = JSON.parse(content);
    // A pid <= 0 would address process groups in kill(); such a lock is garbage.
    if (!Number.isSafeInteger(parsed?.pid) || parsed.pid <= 0) return undefined;
    return { pid: parsed.pid, bootId: stringOrNull(parsed.bootId), startTime: stringOrNull(parsed.startTime) };
  } catch {
    return undefined;
  }
}

/** Side files of the lock carry their creator's pid, so only a dead creator's are cleaned up. */
function tempName(file: string): string {
  return `${file}.${process.pid}.${randomBytes(6).toString('hex')}`;
}

/** Side files left by a process killed between creating and removing them. */
async function removeAbandonedTemps(file: string): Promise<void> {
  const dir = path.dirname(file);
  const pattern = new RegExp(`^${escapeRegExp(path.basename(file))}\\.(\\d+)\\.[0-9a-f]{12}$`);
  for (const name of await readdir(dir)) {
    const pid = Number(pattern.exec(name)?.[1]);
    if (!pid || (await isHolderAlive({ pid, bootId: null, startTime: null }))) continue;
    await rm(path.join(dir, name), { force: true });
  }
}

async function readBootId(): Promise<string | null> {
  try {
    return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  } catch {
    return null;
  }
}

/** State and start time (clock ticks since boot) from /proc/<pid>/stat, or undefined. */
async function readProcStat(pid: number): Promise<{ state: string; startTime: string } | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces: split after it.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTime = fields[19]; // field 22 of proc(5); fields[0] is field 3
  return state && startTime ? { state, startTime } : undefined;
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
