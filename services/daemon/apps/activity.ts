// What the daemon knows about each app beyond the store and the engine: the job working on it,
// why its last convergence failed, its restart backoff and its healthcheck verdict. Shared by
// the job runner, supervision and the views; kept in memory only, since a restarted daemon
// learns it all again. Changes go out as events, and the "apps" health component follows them.
import type { ComponentState } from '../../common/health-report.js';
import type { Logger } from '../../common/logger.js';
import type { ControlStore, DeepReadonly } from '../store/store.js';
import type { AppRecord, ControlDocument, DesiredRunState, JobKind } from '../control-document.js';
import type { EngineState } from './engine.js';
import type { HealthProbe } from './health-probe.js';
import type { LiveEngineState } from './live-state.js';
import type { RestartBackoff } from './status.js';
import { appState, type AppEvent, type RuntimeFacts } from './views.js';

export interface AppActivityOptions {
  store: ControlStore<ControlDocument>;
  live: LiveEngineState;
  probe: HealthProbe;
  logger: Logger;
  /** Receives the "apps" component: degraded while an app has failed or fails its healthcheck. */
  health?: { set(component: string, state: ComponentState, reason?: string): void };
  runOf: (name: string, record: DeepReadonly<AppRecord>) => DesiredRunState;
  now: () => number;
}

export class AppActivity {
  /** The kind of job working on each app right now. */
  readonly active = new Map<string, JobKind>();
  /** Why the last attempt to converge each app failed. */
  readonly failures = new Map<string, string>();
  readonly backoff = new Map<string, RestartBackoff>();
  /** What was last said about each app, so only changes become events. */
  private readonly reported = new Map<string, string>();
  private readonly listeners = new Set<(event: AppEvent) => void>();

  constructor(private readonly options: AppActivityOptions) {}

  subscribe(listener: (event: AppEvent) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  facts(name: string): RuntimeFacts {
    const record = this.options.store.data.apps[name]!;
    return { run: this.options.runOf(name, record), activeJob: this.active.get(name), failure: this.failures.get(name), backoff: this.backoff.get(name), now: this.options.now() };
  }

  /** An uninstalled app: nothing about it stays, and listeners are told. */
  removed(app: string): void {
    this.failures.delete(app);
    this.reported.delete(app);
    this.options.probe.forget(app);
    this.emit({ type: 'app-removed', app });
  }

  /** Emits an event for each app whose state or reason changed, and reports to health. */
  async publish(): Promise<void> {
    let engine: EngineState;
    try {
      engine = this.options.live.current();
    } catch {
      return;
    }
    for (const [name, record] of Object.entries(this.options.store.data.apps)) {
      const { state, reason } = appState(name, record, engine, this.facts(name));
      // The restart countdown changes every second; the state and its cause are what matter.
      const key = `${state}|${reason?.replace(/ in \d+ s$/, '')}`;
      if (this.reported.get(name) === key) continue;
      this.reported.set(name, key);
      this.emit({ type: 'app-state', app: name, state, ...(reason ? { reason } : {}) });
    }
    this.reportHealth();
  }

  reportHealth(): void {
    const problems = Object.keys(this.options.store.data.apps).flatMap((name) => {
      const failure = this.failures.get(name);
      if (failure) return [`${name}: ${failure}`];
      const verdict = this.options.probe.verdict(name);
      return verdict.health === 'degraded' ? [`${name}: ${verdict.reason}`] : [];
    });
    this.options.health?.set('apps', problems.length ? 'degraded' : 'ok', problems.length ? problems.join('; ') : undefined);
  }

  emit(event: AppEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (err) {
        this.options.logger.error('app event listener failed', { err });
      }
    }
  }
}
