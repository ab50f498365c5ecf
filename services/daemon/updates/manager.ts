// OS updates on MicroOS: status read from the tools, one `transactional-update dup` at a time in a
// transient systemd unit (so it outlives a daemon restart and runs outside the daemon's sandbox),
// reboot, and rollback to a chosen snapshot. An image without transactional-update (the Debian
// QEMU image, a dev machine) answers "not available on this image", never an error.
import { readFile } from 'node:fs/promises';
import { BadRequestError, ConflictError, PiccoloError, UnavailableError } from '../../common/errors.js';
import { writeFileDurable } from '../../common/durable.js';
import { stderrTail } from '../../common/run-tool.js';
import type { Logger } from '../../common/logger.js';
import type { AuditLog } from '../auth/audit.js';
import { newSnapshotOf, parseFindmnt, parseSnapperJson, parseSystemctlShow, parseTukitSnapshots, progressOf } from './parse.js';
import type { CommandRunner } from './runner.js';
import type { OsRollback, OsSnapshot, OsUpdateEvent, OsUpdateProgress, OsUpdateRun, OsUpdateStatus } from './types.js';

/**
 * Each apply runs in its own transient unit, piccolo-os-update-<time>.service: its journal is that
 * run's alone, and the record names it, which is how a daemon restarted mid-run finds it again.
 */
export const UNIT_PREFIX = 'piccolo-os-update-';
export const NOT_AVAILABLE = 'OS updates are not available on this image: it has no transactional-update (only the MicroOS images update themselves).';
const JOURNAL_LINES = 40;

export class OsUpdatesUnavailableError extends PiccoloError {
  constructor() {
    super(409, 'not_available', NOT_AVAILABLE);
  }
}

export interface OsUpdateOptions {
  runner: CommandRunner;
  /** What this device's owner did (last run, last rollback), kept across restarts. */
  recordFile: string;
  /** An apply still running after this long is stopped. */
  timeoutMs: number;
  publish: (type: string, data: unknown) => void;
  audit: Pick<AuditLog, 'record'>;
  logger: Logger;
  now: () => number;
}

interface Record_ {
  lastRun?: OsUpdateRun;
  /** The last run that made a new snapshot: what a rollback undoes. */
  lastUpdate?: OsUpdateRun;
  lastRollback?: OsRollback;
}

export class OsUpdateManager {
  /** Set synchronously when an apply or a rollback begins: a second request meets it and gets 409. */
  private busy: 'apply' | 'rollback' | undefined;
  private running: { run: OsUpdateRun; progress?: OsUpdateProgress } | undefined;
  private version: string | undefined;

  constructor(private readonly options: OsUpdateOptions) {}

  get available(): boolean {
    return this.options.runner.which('transactional-update') !== undefined;
  }

  async status(): Promise<OsUpdateStatus> {
    if (!this.available) return { available: false, reason: NOT_AVAILABLE };
    // A run of ours that was going when this read began is never "reconciled" as lost.
    const ownRunGoing = this.running !== undefined;
    const unitName = (await this.load()).lastRun?.unit;
    const [snapshots, root, unit, journal, version] = await Promise.all([this.snapshots(), this.root(), this.unit(unitName), this.journal(unitName), this.toolVersion()]);
    const loaded = await this.load();
    const record = ownRunGoing || this.running ? loaded : await this.reconcile(loaded, snapshots, unit?.activeState);
    const current = snapshots.find((s) => s.current)?.number;
    const next = snapshots.find((s) => s.default)?.number;
    const adopted = !this.running && record.lastRun?.result === 'running' && isActive(unit?.activeState) ? { run: record.lastRun } : undefined;
    return {
      available: true,
      version,
      currentSnapshot: current,
      defaultSnapshot: next,
      rebootPending: current !== undefined && next !== undefined && current !== next,
      snapshots,
      root,
      running: this.running ?? adopted,
      lastRun: record.lastRun,
      lastRollback: record.lastRollback,
      rolledBack: rolledBack(record, current, next),
      unit: unit && unitName ? { name: unitName, ...unit } : undefined,
      journal,
    };
  }

  /** Starts `transactional-update dup`; resolves once it runs (progress follows as os.update events). */
  async apply(): Promise<OsUpdateRun> {
    if (!this.available) throw new OsUpdatesUnavailableError();
    this.claim('apply');
    let run: OsUpdateRun;
    try {
      const previous = (await this.load()).lastRun?.unit;
      if (previous && isActive((await this.unit(previous))?.activeState)) throw new ConflictError(`an OS update is already running (${previous}, started before the daemon restarted); wait for it to finish`);
      const before = (await this.snapshots()).find((s) => s.default)?.number;
      const startedAt = this.iso();
      run = { startedAt, unit: `${UNIT_PREFIX}${startedAt.replace(/\D/g, '').slice(0, 17)}.service`, result: 'running', fromSnapshot: before };
      this.running = { run, progress: { phase: 'preparing', percent: 0 } };
      await this.save({ ...(await this.load()), lastRun: run });
    } catch (err) {
      this.busy = this.running = undefined;
      throw err;
    }
    this.publish({ state: 'running', run, progress: this.running.progress });
    void this.execute(run).finally(() => (this.busy = this.running = undefined));
    return run;
  }

  async reboot(): Promise<void> {
    if (!this.available) throw new OsUpdatesUnavailableError();
    if (this.busy) throw new ConflictError(this.busy === 'apply' ? 'an OS update is being applied; reboot once it has finished' : 'a rollback is being made; try again in a moment');
    // systemctl returns once the reboot job is queued, so this reply still goes out.
    const result = await this.options.runner.run('systemctl', ['reboot']);
    if (result.code !== 0) throw new UnavailableError(`the reboot was refused: ${stderrTail(result.stderr) || `systemctl exited with ${result.code}`}`);
  }

  /** Makes `snapshot` the one the next boot starts (transactional-update rollback N). */
  async rollback(snapshot: number): Promise<OsRollback> {
    if (!this.available) throw new OsUpdatesUnavailableError();
    this.claim('rollback');
    try {
      const snapshots = await this.snapshots();
      const target = snapshots.find((s) => s.number === snapshot);
      if (!target) throw new BadRequestError(`snapshot: there is no snapshot ${snapshot} on this device`);
      const from = snapshots.find((s) => s.default)?.number;
      if (target.default) throw new ConflictError(`snapshot ${snapshot} is already the one the device starts next`);
      const result = await this.options.runner.run('transactional-update', ['rollback', String(snapshot)], 120_000);
      if (result.code !== 0) throw new UnavailableError(`transactional-update rollback ${snapshot} failed: ${stderrTail(result.stderr) || `exit status ${result.code}`}`);
      const rollback: OsRollback = { at: this.iso(), from: from ?? snapshot, to: snapshot };
      await this.save({ ...(await this.load()), lastRollback: rollback });
      return rollback;
    } finally {
      this.busy = undefined;
    }
  }

  private claim(what: 'apply' | 'rollback'): void {
    if (this.busy === 'apply') throw new ConflictError(`an OS update is already running (started ${this.running?.run.startedAt ?? 'just now'}); wait for it to finish`);
    if (this.busy === 'rollback') throw new ConflictError('a rollback is being made; try again in a moment');
    this.busy = what;
  }

  private async execute(run: OsUpdateRun): Promise<void> {
    const { runner, timeoutMs, logger } = this.options;
    const unit = run.unit!;
    // Progress from the unit's journal, not from a pipe: the unit must outlive a daemon restart,
    // and a service writing to a dead daemon's pipe would die of SIGPIPE.
    const lines: string[] = [];
    const follow = new AbortController();
    const following = runner
      .stream('journalctl', ['-u', unit, '-f', '-n', 'all', '-o', 'cat', '--no-pager'], {
        timeoutMs: timeoutMs + 120_000,
        signal: follow.signal,
        onLine: (line) => {
          lines.push(line);
          if (lines.length > 200) lines.shift();
          if (!this.running) return;
          const progress = progressOf(line) ?? { ...this.running.progress, phase: this.running.progress?.phase ?? 'preparing', line };
          this.running.progress = progress;
          this.publish({ state: 'running', run, progress });
        },
      })
      .catch((err) => logger.warn('could not follow the update journal', { err }));
    // systemd stops the unit a minute after our own timeout, should this daemon be gone by then.
    const args = ['--unit', unit, '--collect', '--wait', '--quiet', '-p', `RuntimeMaxSec=${Math.ceil(timeoutMs / 1000) + 60}`, 'transactional-update', '--non-interactive', 'dup'];
    let finished: OsUpdateRun;
    try {
      const result = await runner.run('systemd-run', args, timeoutMs);
      if (result.timedOut) await runner.run('systemctl', ['stop', unit]).catch((err) => logger.warn('could not stop the timed-out update', { err }));
      // The journal's last lines arrive just after the unit ends.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const output = lines.join('\n');
      const after = await this.snapshots().catch(() => undefined);
      const nextDefault = after?.find((s) => s.default)?.number ?? newSnapshotOf(output);
      finished = { ...run, finishedAt: this.iso(), exitCode: result.code, ...outcome({ ...result, output }, run.fromSnapshot, nextDefault, timeoutMs) };
    } catch (err) {
      finished = { ...run, finishedAt: this.iso(), result: 'failed', message: `the update could not start: ${(err as Error).message}` };
    } finally {
      follow.abort();
      await following;
    }
    const updated = finished.result === 'updated' ? { lastUpdate: finished } : {};
    await this.save({ ...(await this.load()), lastRun: finished, ...updated }).catch((err) => logger.error('could not record the OS update run', { err }));
    logger.info('os update finished', { result: finished.result, snapshot: finished.snapshot, exitCode: finished.exitCode });
    await this.options.audit.record({ event: 'os.update.result', outcome: finished.result === 'updated' || finished.result === 'up-to-date' ? 'ok' : 'error', detail: `${finished.result}${finished.snapshot ? ` (snapshot ${finished.snapshot})` : ''}` });
    this.publish({ state: 'finished', run: finished });
  }

  /** A run recorded as running that no unit carries any more: the daemon restarted meanwhile. */
  private async reconcile(record: Record_, snapshots: OsSnapshot[], activeState: string | undefined): Promise<Record_> {
    const run = record.lastRun;
    if (!run || run.result !== 'running' || isActive(activeState)) return record;
    const nextDefault = snapshots.find((s) => s.default)?.number;
    const changed = nextDefault !== undefined && nextDefault !== run.fromSnapshot;
    const lastRun: OsUpdateRun = changed
      ? { ...run, result: 'updated', snapshot: nextDefault, message: `snapshot ${nextDefault} is ready; reboot to start it` }
      : { ...run, result: 'interrupted', message: 'the daemon restarted while the update ran; the journal below says how it ended' };
    const next = { ...record, lastRun, ...(lastRun.result === 'updated' ? { lastUpdate: lastRun } : {}) };
    await this.save(next).catch((err) => this.options.logger.warn('could not record the reconciled run', { err }));
    return next;
  }

  /** snapper first (over D-Bus, then without), tukit's list if snapper cannot answer. */
  private async snapshots(): Promise<OsSnapshot[]> {
    const { runner } = this.options;
    const problems: string[] = [];
    for (const args of [['--utc', '--iso', '--json', 'list'], ['--no-dbus', '--utc', '--iso', '--json', 'list']]) {
      const result = await runner.run('snapper', args).catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message, timedOut: false }));
      if (result.code === 0) {
        try {
          return parseSnapperJson(result.stdout);
        } catch (err) {
          problems.push((err as Error).message);
        }
      } else problems.push(`snapper ${args.join(' ')}: ${stderrTail(result.stderr, 2) || `exit ${result.code}`}`);
    }
    const tukit = await runner.run('tukit', ['snapshots', '-f', 'default,active,number,date,description']).catch(() => undefined);
    if (tukit?.code === 0) return parseTukitSnapshots(tukit.stdout);
    throw new UnavailableError(`could not read the snapshots: ${problems.join('; ')}`);
  }

  private async root(): Promise<{ source: string; fstype: string; readOnly: boolean } | undefined> {
    const result = await this.options.runner.run('findmnt', ['--json', '--output', 'SOURCE,FSTYPE,OPTIONS', '/']).catch(() => undefined);
    if (result?.code !== 0) return undefined;
    try {
      return parseFindmnt(result.stdout);
    } catch {
      return undefined;
    }
  }

  private async unit(name: string | undefined): Promise<{ activeState: string; result: string } | undefined> {
    if (!name) return undefined;
    const result = await this.options.runner.run('systemctl', ['show', name, '-p', 'ActiveState,Result']).catch(() => undefined);
    const values = result?.code === 0 ? parseSystemctlShow(result.stdout) : {};
    return { activeState: values.ActiveState ?? 'unknown', result: values.Result ?? 'unknown' };
  }

  private async journal(name: string | undefined): Promise<string[]> {
    if (!name) return [];
    const result = await this.options.runner.run('journalctl', ['-u', name, '-n', String(JOURNAL_LINES), '-o', 'cat', '--no-pager']).catch(() => undefined);
    return result?.code === 0 ? result.stdout.split('\n').filter((line) => line.trim()) : [];
  }

  private async toolVersion(): Promise<string | undefined> {
    if (this.version) return this.version;
    const result = await this.options.runner.run('transactional-update', ['--version']).catch(() => undefined);
    if (result?.code === 0) this.version = result.stdout.trim().replace(/^transactional-update\s*/, '');
    return this.version;
  }

  private async load(): Promise<Record_> {
    try {
      return JSON.parse(await readFile(this.options.recordFile, 'utf8')) as Record_;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.options.logger.warn('unreadable OS update record; starting a new one', { err });
      return {};
    }
  }

  private save(record: Record_): Promise<void> {
    return writeFileDurable(this.options.recordFile, JSON.stringify(record, null, 2));
  }

  private publish(event: OsUpdateEvent): void {
    this.options.publish('os.update', event);
  }

  private iso(): string {
    return new Date(this.options.now()).toISOString();
  }
}

function isActive(state: string | undefined): boolean {
  return state === 'active' || state === 'activating' || state === 'deactivating' || state === 'reloading';
}

function outcome(result: { code: number | null; output: string; timedOut: boolean }, from: number | undefined, nextDefault: number | undefined, timeoutMs: number): Pick<OsUpdateRun, 'result' | 'snapshot' | 'message'> {
  if (result.timedOut) return { result: 'timed-out', message: `the update did not finish within ${Math.round(timeoutMs / 60_000) || '<1'} min and was stopped; the system is unchanged` };
  if (result.code !== 0) return { result: 'failed', message: failureOf(result.output) ?? `transactional-update exited with status ${result.code}` };
  if (nextDefault !== undefined && nextDefault !== from) return { result: 'updated', snapshot: nextDefault, message: `snapshot ${nextDefault} is ready; reboot to start it` };
  return { result: 'up-to-date', message: 'nothing to update: the system is up to date' };
}

/**
 * The last update's snapshot no longer starts next: the owner rolled back (from the portal, before
 * or after booting it), or health-checker did after a bad first boot.
 */
function rolledBack(record: Record_, current: number | undefined, next: number | undefined): Extract<OsUpdateStatus, { available: true }>['rolledBack'] {
  const run = record.lastUpdate;
  if (run?.snapshot === undefined || next === undefined || run.snapshot === next) return undefined;
  const byOwner = record.lastRollback !== undefined && run.finishedAt !== undefined && record.lastRollback.at >= run.finishedAt;
  return { snapshot: run.snapshot, by: byOwner ? 'owner' : 'automatic', runningSnapshot: current };
}

/** The lines that say why: transactional-update's ERROR lines, else the output's last lines. */
function failureOf(output: string): string | undefined {
  const lines = output.split('\n').filter((line) => line.trim());
  const errors = lines.filter((line) => /\bERROR\b|Couldn't get lock|\[error\]/i.test(line));
  const chosen = (errors.length ? errors : lines).slice(-3);
  return chosen.length ? chosen.join('\n') : undefined;
}
