// The OS update states in words a person reads, shared by the Updates screen and the dashboard.
import type { OsUpdateProgress, OsUpdateRun, OsUpdateStatus, RunResult } from '../../../../updates/types.js';

export type AvailableStatus = Extract<OsUpdateStatus, { available: true }>;

export const RESULT_WORDS: Record<RunResult, string> = {
  running: 'running',
  updated: 'updated',
  'up-to-date': 'up to date',
  failed: 'failed',
  'timed-out': 'timed out',
  interrupted: 'interrupted',
};

export const PHASE_WORDS: Record<OsUpdateProgress['phase'], string> = {
  preparing: 'Preparing',
  downloading: 'Downloading packages',
  installing: 'Installing into a new snapshot',
  finishing: 'Finishing',
};

export function rolledBackText(status: AvailableStatus): string | undefined {
  const back = status.rolledBack;
  if (!back) return undefined;
  const who = back.by === 'owner' ? 'You rolled it back.' : 'The device went back by itself: the update did not start properly (health check).';
  const next = status.defaultSnapshot !== undefined && status.defaultSnapshot !== status.currentSnapshot ? ` It starts snapshot ${status.defaultSnapshot} at the next reboot.` : '';
  return `The update's snapshot ${back.snapshot} is no longer used. ${who} The device runs snapshot ${status.currentSnapshot ?? '?'}.${next}`;
}

export function lastRunText(run: OsUpdateRun | undefined): string {
  if (!run) return 'No update has been run from here yet.';
  return run.message ? `${RESULT_WORDS[run.result]}: ${run.message}` : RESULT_WORDS[run.result];
}
