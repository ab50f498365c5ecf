// The engine healthchecks of the apps' services, run by the daemon: Podman schedules them through
// systemd timers, which a device without systemd as the engine's parent does not have, and a stale
// verdict would hide a service gone bad. Each runs once its interval has passed; the verdicts are
// the containers' state, so the kept engine state is read back after a round that ran any.
import type { Logger } from '../../common/logger.js';
import type { Engine, EngineState } from './engine.js';
import type { LiveEngineState } from './live-state.js';
import type { SupervisedApp } from './supervision.js';
import { serviceContainers } from './views.js';

export interface EngineHealthchecksOptions {
  engine: Pick<Engine, 'runHealthcheck'>;
  live: Pick<LiveEngineState, 'current' | 'refresh'>;
  logger: Logger;
  now: () => number;
}

export class EngineHealthchecks {
  /** When each container's healthcheck last ran (ms), by container ID. */
  private readonly lastRun = new Map<string, number>();

  constructor(private readonly options: EngineHealthchecksOptions) {}

  /** One round over the apps that should be running. */
  async round(apps: readonly SupervisedApp[]): Promise<void> {
    let engine: EngineState;
    try {
      engine = this.options.live.current();
    } catch {
      return;
    }
    const now = this.options.now();
    let ran = false;
    for (const { name, record } of apps) {
      for (const { service, container } of serviceContainers(name, record.spec, engine)) {
        const check = service.healthcheck;
        if (!check || check.test[0] === 'NONE' || !container?.running) continue;
        if (now - (this.lastRun.get(container.id) ?? 0) < check.interval_ms) continue;
        this.lastRun.set(container.id, now);
        ran = true;
        await this.options.engine.runHealthcheck(container.name).catch((err) => this.options.logger.debug('healthcheck run failed', { app: name, service: service.name, err }));
      }
    }
    for (const id of [...this.lastRun.keys()]) if (!engine.containers.some((c) => c.id === id)) this.lastRun.delete(id);
    if (ran) await this.options.live.refresh().catch(() => {});
  }
}
