// What state an app is in, derived (never stored) from its desired run state, its container as
// the engine reports it, the job working on it and the last failure. Pure.
import type { DesiredRunState, JobKind } from '../control-document.js';
import type { ContainerStatus } from './engine.js';

export const APP_STATES = ['installing', 'starting', 'running', 'stopping', 'stopped', 'updating', 'failed', 'removing'] as const;
export type AppState = (typeof APP_STATES)[number];

const JOB_STATES: Record<JobKind, AppState> = {
  install: 'installing',
  start: 'starting',
  stop: 'stopping',
  restart: 'starting',
  update: 'updating',
  revert: 'updating',
  uninstall: 'removing',
};

export interface RestartBackoff {
  attempts: number;
  /** When the next automatic restart is due (ms since the epoch). */
  nextAt: number;
}

export interface StateInput {
  run: DesiredRunState;
  container: ContainerStatus | undefined;
  activeJob: JobKind | undefined;
  /** Why the last attempt to bring the app to its desired state failed. */
  failure: string | undefined;
  backoff: RestartBackoff | undefined;
  now: number;
}

export function deriveState({ run, container, activeJob, failure, backoff, now }: StateInput): { state: AppState; reason?: string } {
  if (activeJob) return { state: JOB_STATES[activeJob] };
  if (failure) return { state: 'failed', reason: failure };
  if (run === 'stopped') return { state: 'stopped' };
  if (container?.running) return { state: 'running' };
  if (!container) return { state: 'failed', reason: 'the app has no container; the next reconcile creates it' };
  const exited = container.error ? `did not start: ${container.error}` : `exited with code ${container.exitCode ?? 'unknown'}`;
  const retry = backoff ? `; restart ${backoff.attempts + 1} in ${Math.max(0, Math.ceil((backoff.nextAt - now) / 1000))} s` : '';
  return { state: 'failed', reason: `the container ${exited}${retry}` };
}
