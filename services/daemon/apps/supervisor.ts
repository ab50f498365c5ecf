// The rounds that keep apps running without a job: a supervision round restarts what should run
// but stopped (each app with its own growing delay, supervision.ts decides which), a health round
// runs the engine healthchecks and the HTTP probes. Rounds go through the manager's job queue, so
// they never overlap a job; an engine change seen in the live state queues a round at once.
import type { Logger } from '../../common/logger.js';
import type { ControlStore, DeepReadonly } from '../store/store.js';
import type { AppRecord, ControlDocument, DesiredRunState } from '../control-document.js';
import type { AppActivity } from './activity.js';
import type { EngineState } from './engine.js';
import type { EngineHealthchecks } from './engine-healthchecks.js';
import type { HealthProbe } from './health-probe.js';
import type { LiveEngineState } from './live-state.js';
import type { Reconciler } from './reconciler.js';
import { DEFAULT_RESTART, dueForRestart, healthTargets, type RestartPolicy, type SupervisedApp } from './supervision.js';

export interface SupervisorOptions {
  store: ControlStore<ControlDocument>;
  live: LiveEngineState;
  reconciler: Reconciler;
  activity: AppActivity;
  healthchecks: EngineHealthchecks;
  probe: HealthProbe;
  logger: Logger;
  /** Runs work in the manager's job queue. */
  enqueue: (work: () => Promise<void>) => Promise<void>;
  runOf: (name: string, record: DeepReadonly<AppRecord>) => DesiredRunState;
  now: () => number;
  /** How often crashed apps are looked for. */
  superviseIntervalMs?: number;
  healthIntervalMs?: number;
  restart?: RestartPolicy;
}

export class Supervisor {
  private supervisionQueued = false;
  private healthRound = false;
  private fullReconcileNeeded = true;
  private closed = false;
  private timers: NodeJS.Timeout[] = [];
  private stopFollowingEngine: (() => void) | undefined;

  constructor(private readonly options: SupervisorOptions) {}

  /**
   * A change the daemon did not make (a container stopped or removed behind its back) is
   * looked at at once, not only at the next supervision round.
   */
  followEngine(): void {
    this.stopFollowingEngine = this.options.live.onChange(() => this.queueSupervision());
  }

  startRounds(): void {
    this.timers = [
      setInterval(() => this.queueSupervision(), this.options.superviseIntervalMs ?? 2000),
      setInterval(() => void this.checkHealth(), this.options.healthIntervalMs ?? 10_000),
    ];
  }

  /** No round starts after this; one already queued finds it closed. */
  stop(): void {
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    this.stopFollowingEngine?.();
  }

  /** Every app and the strays; until one succeeds, each supervision round tries it again. */
  async fullReconcile(): Promise<void> {
    try {
      await this.options.reconciler.reconcile(undefined);
      this.fullReconcileNeeded = false;
    } catch (err) {
      this.options.logger.error('reconcile failed; retrying on the next supervision round', { err });
    }
    await this.options.activity.publish();
  }

  /**
   * At most one supervision round waits in the queue: on a busy engine a round can take longer
   * than the interval, and rounds queued behind each other would hold every job up.
   */
  private queueSupervision(): void {
    if (this.supervisionQueued) return;
    this.supervisionQueued = true;
    void this.options.enqueue(async () => {
      this.supervisionQueued = false;
      await this.supervise();
    });
  }

  /** Restarts apps that should run but do not, each with its own growing delay. */
  private async supervise(): Promise<void> {
    if (this.closed) return;
    if (this.fullReconcileNeeded) return this.fullReconcile();
    const { live, activity, logger } = this.options;
    let engine: EngineState;
    try {
      engine = live.current();
    } catch (err) {
      logger.warn('cannot read the engine state', { err });
      return;
    }
    const due = dueForRestart(this.supervised(), engine, activity.backoff, this.options.restart ?? DEFAULT_RESTART, this.options.now());
    if (due.size) {
      logger.info('restarting apps that stopped running', { apps: [...due] });
      await this.options.reconciler.reconcile(due, { honourRestartPolicy: true }).catch((err) => logger.warn('restart failed', { err }));
    }
    await activity.publish();
  }

  /** One round at a time: a slow one is not overlapped by the next. */
  private async checkHealth(): Promise<void> {
    if (this.healthRound) return;
    this.healthRound = true;
    const { activity } = this.options;
    try {
      await this.options.healthchecks.round(this.supervised());
      const targets = healthTargets(this.supervised().filter(({ name }) => !activity.failures.has(name)));
      await this.options.probe.round(targets, (app, verdict) => {
        activity.emit({ type: 'health', app, ...verdict });
        activity.reportHealth();
      });
    } finally {
      this.healthRound = false;
    }
  }

  /** The apps that should be running and no job is working on. */
  private supervised(): SupervisedApp[] {
    return Object.entries(this.options.store.data.apps)
      .filter(([name, record]) => this.options.runOf(name, record) === 'running' && !this.options.activity.active.has(name))
      .map(([name, record]) => ({ name, record }));
  }
}
