// Supervision: which apps that should run have a service that stopped and may be restarted, each
// app with its own growing delay, honouring each service's restart policy (no: never again by
// itself; on-failure: only after a non-zero exit; always / unless-stopped: whatever the exit).
// Also the targets of the apps' HTTP healthchecks. Pure, apart from the backoff map it keeps.
import type { DeepReadonly } from '../store/store.js';
import type { AppRecord } from '../control-document.js';
import type { EngineState } from './engine.js';
import type { HealthTarget } from './health-probe.js';
import { completed } from './planner.js';
import type { RestartBackoff } from './status.js';
import { serviceContainers } from './views.js';

export interface RestartPolicy {
  /** Wait before the first automatic restart; doubles with each further one. */
  initialMs: number;
  maxMs: number;
  /** Running this long resets the count. */
  stableMs: number;
}

export const DEFAULT_RESTART: RestartPolicy = { initialMs: 2_000, maxMs: 300_000, stableMs: 60_000 };

export interface SupervisedApp {
  name: string;
  record: DeepReadonly<AppRecord>;
}

/** A service's container is down and its policy lets the supervisor start it again (or it is missing). */
export function restartable(name: string, record: DeepReadonly<AppRecord>, engine: EngineState): boolean {
  return serviceContainers(name, record.spec, engine).some(({ service, container }) => {
    if (!container) return true;
    if (container.running || completed(container, service)) return false;
    return service.restart !== 'no';
  });
}

/** Names of an app's exited containers that must stay down: their service's restart is "no". */
export function heldContainers(name: string, record: DeepReadonly<AppRecord>, engine: EngineState): Set<string> {
  return new Set(
    serviceContainers(name, record.spec, engine)
      .filter(({ service, container }) => service.restart === 'no' && container && !container.running)
      .map(({ container }) => container!.name),
  );
}

/**
 * One round: apps whose restart is due now. An app gets its first restart `initialMs` after it
 * was seen down, then each further one twice as late (up to maxMs); running for `stableMs` forgets it.
 */
export function dueForRestart(apps: readonly SupervisedApp[], engine: EngineState, backoff: Map<string, RestartBackoff>, policy: RestartPolicy, now: number): Set<string> {
  const due = new Set<string>();
  for (const { name, record } of apps) {
    const current = backoff.get(name);
    if (!restartable(name, record, engine)) {
      const started = serviceContainers(name, record.spec, engine).flatMap(({ container }) => (container?.running && container.startedAt ? [Date.parse(container.startedAt)] : []));
      const upFor = started.length ? now - Math.max(...started) : 0;
      if (current && upFor >= policy.stableMs) backoff.delete(name);
      continue;
    }
    if (!current) {
      backoff.set(name, { attempts: 0, nextAt: now + policy.initialMs });
    } else if (now >= current.nextAt) {
      due.add(name);
      current.attempts++;
      current.nextAt = now + Math.min(policy.maxMs, policy.initialMs * 2 ** current.attempts);
    }
  }
  return due;
}

/** The HTTP healthcheck of each app that has one, through its listener's host-bind port. */
export function healthTargets(apps: readonly SupervisedApp[]): HealthTarget[] {
  return apps.flatMap(({ name, record }) => {
    const check = record.spec.healthcheck?.http;
    const port = check && record.ports[check.port];
    if (!check || !port) return [];
    return [{ app: name, url: `http://127.0.0.1:${port.hostBind}${check.path}`, timeoutMs: check.timeout_ms, retries: check.retries }];
  });
}
