// What state an app is in, derived (never stored) from its desired run state, its containers as
// the engine reports them, the job working on it and the last failure. An app is running only
// when each of its services is running (or, for a one-shot, has completed); a failed app names
// the service that failed. Pure.
import type { DesiredRunState, JobKind } from '../control-document.js';
import type { ContainerStatus } from './engine.js';
import { completed } from './planner.js';
import type { RestartPolicy } from './spec/types.js';

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

export interface ServiceState {
  service: string;
  container: ContainerStatus | undefined;
  restart: RestartPolicy;
}

export interface StateInput {
  run: DesiredRunState;
  /** Every service of the app, in start order. */
  services: readonly ServiceState[];
  /** The single-container short form: its reasons need not name the service. */
  shortForm: boolean;
  activeJob: JobKind | undefined;
  /** Why the last attempt to bring the app to its desired state failed. */
  failure: string | undefined;
  backoff: RestartBackoff | undefined;
  now: number;
}

export function deriveState({ run, services, shortForm, activeJob, failure, backoff, now }: StateInput): { state: AppState; reason?: string } {
  if (activeJob) return { state: JOB_STATES[activeJob] };
  if (failure) return { state: 'failed', reason: failure };
  if (run === 'stopped') return { state: 'stopped' };
  const down = services.find(({ container, restart }) => !container?.running && !(container && completed(container, { restart })));
  if (!down) return { state: 'running' };
  const who = shortForm ? 'the container' : `service ${down.service}: the container`;
  const { container } = down;
  if (!container) return { state: 'failed', reason: `${shortForm ? 'the app has no container' : `service ${down.service} has no container`}; the next reconcile creates it` };
  const exited = container.error ? `did not start: ${container.error}` : `exited with code ${container.exitCode ?? 'unknown'}`;
  const retry = backoff ? `; restart ${backoff.attempts + 1} in ${Math.max(0, Math.ceil((backoff.nextAt - now) / 1000))} s` : '';
  return { state: 'failed', reason: `${who} ${exited}${retry}` };
}
