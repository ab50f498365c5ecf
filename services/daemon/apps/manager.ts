// The app manager: what the API calls. Every change first commits the desired state (and a job
// record, jobs.ts) to the control store, then a job converges the engine to it (converge.ts:
// plan → execute). Jobs run one at a time; a daemon that dies mid-job finds the job at the next
// open() and runs it again (convergence is idempotent), so no job stays "running" forever.
// Supervision (supervision.ts) restarts what stopped; views (views.ts) say what each app is doing,
// from the engine state kept in memory (live-state.ts); engine-healthchecks.ts runs the services' checks.
import type { Readable } from 'node:stream';
import { SerialQueue } from '../../common/serial-queue.js';
import type { Logger } from '../../common/logger.js';
import type { ControlStore, DeepReadonly } from '../store/store.js';
import { type AppRecord, type AppRevision, type ControlDocument, type DesiredRunState, type JobKind, type JobRecord } from '../control-document.js';
import { BadRequestError } from '../../common/errors.js';
import { containerName, isShortForm } from './container-spec.js';
import { AppActivity, type AppActivityOptions } from './activity.js';
import { Allocator } from './allocation.js';
import { DesiredChanges } from './desired-changes.js';
import { appContainers, Converger, dependencyNodes, type ReconcileOptions } from './converge.js';
import type { ContainerStats, Engine, EngineState, LogOptions } from './engine.js';
import { AppNotFoundError } from './errors.js';
import { Executor } from './executor.js';
import { HealthProbe } from './health-probe.js';
import { JobBook } from './jobs.js';
import { EngineHealthchecks } from './engine-healthchecks.js';
import { LiveEngineState } from './live-state.js';
import { dependentsOf, withDependencies } from './order.js';
import { hostPortProbe, type PortProbe } from './ports.js';
import type { PullProgress } from './pull-progress.js';
import { mainService, type AppSpec } from './spec/types.js';
import { DEFAULT_RESTART, dueForRestart, healthTargets, type RestartPolicy, type SupervisedApp } from './supervision.js';
import { appView, factsKey, serviceEntries, ViewsMemo, type AppEvent, type AppView, type ServiceEntry } from './views.js';
import type { AppVolumes } from './volumes.js';

export type { AppEvent, AppView, ContainerView, ServiceEntry } from './views.js';
export type { RestartPolicy } from './supervision.js';

export interface AppManagerOptions {
  store: ControlStore<ControlDocument>;
  engine: Engine;
  volumes: AppVolumes;
  logger: Logger;
  /** Receives the "apps" component: degraded while an app has failed or fails its healthcheck. */
  health?: AppActivityOptions['health'];
  ports?: PortProbe;
  /** The engine's state kept in memory (reads, supervision); made from `engine` when not given. */
  live?: LiveEngineState;
  now?: () => number;
  /** A /16 from which each app's network gets a /24. */
  subnetPool?: string;
  /** Which /24 of the pool each search starts at (default random, so daemons sharing an engine rarely reach for the same one). */
  subnetStart?: () => number;
  /** How often crashed apps are looked for. */
  superviseIntervalMs?: number;
  healthIntervalMs?: number;
  restart?: RestartPolicy;
  /** How long an updated app must stay up before the update counts as good (default 3 s). */
  updateSettleMs?: number;
  /**
   * The run state to converge an app to, given its desired one: leadership (cluster/) stops here
   * the apps another node leads, without touching what the store says they should be doing.
   */
  effectiveRun?: (app: string, desired: DesiredRunState) => DesiredRunState;
}

export interface GrantOptions {
  /** Permission ids the person granted; an update without them keeps the app's grants. */
  granted?: string[];
}

export class AppManager {
  private readonly converger: Converger;
  private readonly allocator: Allocator;
  private readonly changes: DesiredChanges;
  private readonly book: JobBook;
  private readonly probe = new HealthProbe();
  private readonly activity: AppActivity;
  private readonly live: LiveEngineState;
  private readonly healthchecks: EngineHealthchecks;
  private readonly listed = new ViewsMemo();
  private stopFollowingEngine: (() => void) | undefined;
  /** Serializes jobs, reconciles and supervision rounds. */
  private readonly queue = new SerialQueue();
  private supervisionQueued = false;
  private healthRound = false;
  private timers: NodeJS.Timeout[] = [];
  private fullReconcileNeeded = true;
  private closed = false;

  constructor(private readonly options: AppManagerOptions) {
    const executor = new Executor({ engine: options.engine, ports: this.portProbe, logger: options.logger });
    this.converger = new Converger({
      store: options.store,
      engine: options.engine,
      volumes: options.volumes,
      executor,
      logger: options.logger,
      runOf: (name, record) => this.runOf(name, record),
      updateSettleMs: options.updateSettleMs,
    });
    this.allocator = new Allocator({
      store: options.store,
      engine: options.engine,
      ports: this.portProbe,
      logger: options.logger,
      converger: this.converger,
      subnetPool: options.subnetPool,
      subnetStart: options.subnetStart,
    });
    this.changes = new DesiredChanges({ allocator: this.allocator, timestamp: () => this.timestamp() });
    this.book = new JobBook({ store: options.store, timestamp: () => this.timestamp(), onChange: (job) => this.activity.emit({ type: 'job', job }) });
    this.live = options.live ?? new LiveEngineState({ engine: options.engine, logger: options.logger, now: options.now });
    this.activity = new AppActivity({
      store: options.store,
      live: this.live,
      probe: this.probe,
      logger: options.logger,
      health: options.health,
      runOf: (name, record) => this.runOf(name, record),
      now: () => this.now(),
    });
    this.healthchecks = new EngineHealthchecks({ engine: options.engine, live: this.live, logger: options.logger, now: () => this.now() });
  }

  // ---- life cycle ----

  /** Resumes interrupted jobs, brings every app back to its desired state, starts supervising. */
  async open(): Promise<void> {
    const interrupted = await this.book.resumeInterrupted();
    if (interrupted.length) this.options.logger.warn('resuming jobs interrupted by a restart', { jobs: interrupted });
    await this.live.start();
    // A change the daemon did not make (a container stopped or removed behind its back) is
    // looked at at once, not only at the next supervision round.
    this.stopFollowingEngine = this.live.onChange(() => this.queueSupervision());
    await this.enqueue(() => this.fullReconcile());
    for (const id of interrupted) void this.enqueue(() => this.runJob(id));
    this.timers = [
      setInterval(() => this.queueSupervision(), this.options.superviseIntervalMs ?? 2000),
      setInterval(() => void this.checkHealth(), this.options.healthIntervalMs ?? 10_000),
    ];
  }

  /** Stops supervising and waits for the job in progress; the apps keep running. */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    this.stopFollowingEngine?.();
    await this.queue.idle();
    await this.live.stop();
  }

  /** Converges one app again, e.g. after its effective run state changed; resolves when done. */
  converge(app: string): Promise<void> {
    return this.enqueue(async () => {
      await this.reconcile(new Set([app]));
      await this.activity.publish();
    });
  }

  subscribe(listener: (event: AppEvent) => void): () => void {
    return this.activity.subscribe(listener);
  }

  // ---- reading (from the engine state kept in memory, not from the engine per request) ----

  /** Every app's view; the same array while nothing it shows changed (do not change it). */
  async list(): Promise<AppView[]> {
    const engine = this.live.current();
    const names = Object.keys(this.doc.apps).sort();
    const key = names.map((name) => factsKey(name, this.activity.facts(name), this.probe.verdict(name))).join('\n');
    return this.listed.get([this.doc, engine, key], () => names.map((name) => this.view(name, engine)));
  }

  async get(name: string): Promise<AppView> {
    this.record(name);
    return this.view(name, this.live.current());
  }

  /** The current spec first, then the kept previous ones. */
  history(name: string): DeepReadonly<AppRevision[]> {
    const record = this.record(name);
    return [{ revision: record.revision, spec: record.spec, at: record.updatedAt }, ...record.history];
  }

  /** Every listener of every app (or of one app). */
  services(app?: string): ServiceEntry[] {
    if (app !== undefined) this.record(app);
    const names = app === undefined ? Object.keys(this.doc.apps).sort() : [app];
    return names.flatMap((name) => serviceEntries(name, this.doc.apps[name]!));
  }

  /** A service's output; the main service's (the one the first listener is on) by default. */
  logs(name: string, options: LogOptions & { service?: string }): Promise<Readable> {
    return this.options.engine.logs(this.containerOf(name, options.service), options);
  }

  stats(name: string, service?: string): Promise<ContainerStats> {
    return this.options.engine.stats(this.containerOf(name, service));
  }

  jobs(): DeepReadonly<JobRecord[]> {
    return this.book.list();
  }

  job(id: string): DeepReadonly<JobRecord> | undefined {
    return this.book.get(id);
  }

  /** Resolves with the job once it has finished, succeeded or failed. */
  waitForJob(id: string): Promise<DeepReadonly<JobRecord>> {
    return this.book.waitFor(id, (listener) => this.subscribe((event) => event.type === 'job' && listener(event.job)));
  }

  // ---- changing (each returns the job, which runs in the background) ----

  install(spec: AppSpec, { granted }: GrantOptions = {}): Promise<JobRecord> {
    return this.startJob(spec.name, 'install', (draft) => this.changes.install(draft, spec, granted));
  }

  /** Starts the app, and whatever it depends on first. */
  start(name: string): Promise<JobRecord> {
    return this.startJob(name, 'start', (draft) => this.changes.start(draft, name));
  }

  stop(name: string): Promise<JobRecord> {
    return this.startJob(name, 'stop', (draft) => this.changes.setRun(draft, name, 'stopped'));
  }

  restart(name: string): Promise<JobRecord> {
    return this.startJob(name, 'restart', (draft) => this.changes.setRun(draft, name, 'running'));
  }

  /** New images or spec, atomically: the current revision goes to the history, and comes back if the new one fails. */
  update(name: string, spec: AppSpec, { granted }: GrantOptions = {}): Promise<JobRecord> {
    return this.startJob(name, 'update', (draft) => this.changes.update(draft, name, spec, granted));
  }

  revert(name: string, revision: number): Promise<JobRecord> {
    return this.startJob(name, 'revert', (draft) => this.changes.revert(draft, name, revision));
  }

  /** Removes the app; its data stays unless `purge` (which the API has the user confirm). */
  uninstall(name: string, options: { purge: boolean }): Promise<JobRecord> {
    return this.startJob(name, 'uninstall', (draft) => this.changes.uninstall(draft, name), { purge: options.purge });
  }

  /**
   * Runs `work` with the app's containers stopped, then converges the app back (started again if
   * it should run). In the job queue, so no supervision round restarts it meanwhile; the desired
   * state is untouched, so a daemon that dies during `work` brings the app back when it starts.
   * A backup copies an app's volume this way.
   */
  quiesce<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.queue.run(async () => {
      this.record(name);
      await this.stopContainersOf(name);
      try {
        return await work();
      } finally {
        await this.reconcile(new Set([name])).catch((err) => this.options.logger.warn('could not start the app again after copying its data', { app: name, err }));
        await this.activity.publish();
      }
    });
  }

  // ---- jobs ----

  private async startJob(app: string, kind: JobKind, change: (draft: ControlDocument) => void | Promise<void>, extra: Pick<JobRecord, 'purge'> = {}): Promise<JobRecord> {
    const job = await this.book.create(app, kind, change, extra);
    // Marked active at once, so a read right after the call already says installing, stopping...
    this.activity.active.set(app, kind);
    void this.enqueue(() => this.runJob(job.id));
    return job;
  }

  private async runJob(id: string): Promise<void> {
    const job = this.book.get(id);
    if (!job || job.status !== 'running') return;
    const { app, kind } = job;
    this.activity.active.set(app, kind);
    this.activity.failures.delete(app);
    this.activity.backoff.delete(app);
    await this.activity.publish();
    let error: unknown;
    let total = 0;
    const pulls = this.book.pullReporter(id);
    const onStep = (step: { kind: string }, done: number, steps: number) => {
      total = steps;
      void this.book.update(id, { progress: { done, total, step: step.kind, ...pulls.finished } });
    };
    try {
      if (kind === 'restart') {
        await this.book.update(id, { progress: { done: 0, total: 0, step: 'stop-container' } });
        await this.stopContainersOf(app);
      }
      if (kind === 'update' || kind === 'revert') {
        error = await this.runUpdate(app, { onStep, onPull: pulls.onPull });
      } else {
        const failures = await this.reconcile(this.scopeOf(app, kind), { onStep, onPull: pulls.onPull });
        error = failures.get(app);
        if (!error && kind === 'uninstall') await this.closeOrPurgeVolume(app, job.purge === true);
      }
    } catch (err) {
      error = err;
    }
    pulls.close();
    this.activity.active.delete(app);
    // A rolled-back update failed as a job; the app itself runs its previous revision.
    if (error && !(error instanceof UpdateRolledBackError)) this.activity.failures.set(app, (error as Error).message);
    await this.book.update(id, error ? { status: 'failed', error: (error as Error).message } : { status: 'succeeded', progress: { done: total, total, ...pulls.finished } });
    if (kind === 'uninstall' && !error) {
      this.activity.removed(app);
    }
    await this.activity.publish();
  }

  /**
   * An update or revert, atomic: the new revision's containers start while the replaced ones
   * wait aside; the healthchecks decide. On failure the previous revision comes back, its
   * containers as they were, and the job fails saying why and what runs now.
   */
  private async runUpdate(app: string, hooks: { onStep: (step: { kind: string }, done: number, total: number) => void; onPull: (p: PullProgress) => void }): Promise<Error | undefined> {
    const revision = this.record(app).revision;
    const scope = this.scopeOf(app, 'update');
    let problem: Error | undefined;
    try {
      problem = (await this.reconcile(scope, { ...hooks, updating: app })).get(app);
      if (!problem) await this.converger.verify(app);
    } catch (err) {
      problem = err as Error;
    }
    if (!problem) {
      await this.converger.dropRetired(app);
      return undefined;
    }
    this.options.logger.warn('update failed; rolling back', { app, revision, err: problem });
    const restored = await this.converger.rollBack(app);
    if (restored === undefined) return problem;
    const after = (await this.reconcile(scope, { onStep: hooks.onStep })).get(app);
    const message = `update to revision ${revision} failed: ${problem.message}`;
    return after ? new Error(`${message}; the rollback failed too: ${after.message}`) : new UpdateRolledBackError(`${message}; rolled back to revision ${restored}`);
  }

  /** Which apps a job converges: the app, plus what its change can affect. */
  private scopeOf(app: string, kind: JobKind): Set<string> {
    const nodes = dependencyNodes(this.doc);
    switch (kind) {
      case 'start':
        return new Set(withDependencies(app, nodes));
      case 'update':
      case 'revert':
        // Dependents are given the app's URLs, so they may need recreating too.
        return new Set([app, ...dependentsOf(app, nodes)]);
      default:
        return new Set([app]);
    }
  }

  /** Stops each of an app's containers, dependents first (the reverse of the start order). */
  private async stopContainersOf(app: string): Promise<void> {
    const engine = await this.options.engine.state();
    for (const container of appContainers(this.record(app).spec, engine).reverse()) {
      if (container.running) await this.options.engine.stopContainer(container.id, container.stopTimeoutS);
    }
  }

  // ---- converging ----

  private async fullReconcile(): Promise<void> {
    try {
      await this.reconcile(undefined);
      this.fullReconcileNeeded = false;
    } catch (err) {
      this.options.logger.error('reconcile failed; retrying on the next supervision round', { err });
    }
    await this.activity.publish();
  }

  /** Converges the apps in `scope` (all, strays included, when undefined) and keeps each one's failure. */
  private async reconcile(scope: ReadonlySet<string> | undefined, options: Omit<ReconcileOptions, 'scope'> = {}): Promise<Map<string, Error>> {
    await this.allocator.moveTakenSubnets(scope).catch((err) => this.options.logger.warn('could not check the apps\' subnets', { err }));
    const failures = await this.allocator.retryTaken(await this.converger.reconcile({ ...options, ...(scope ? { scope } : {}) }), options);
    // Read back before the job is said to be done: the answers that follow show what it did.
    await this.live.refresh().catch((err) => this.options.logger.warn('cannot read the engine state', { err }));
    for (const name of scope ?? Object.keys(this.doc.apps)) {
      const failure = failures.get(name);
      if (failure) this.activity.failures.set(name, failure.message);
      else this.activity.failures.delete(name);
    }
    return failures;
  }

  /**
   * At most one supervision round waits in the queue: on a busy engine a round can take longer
   * than the interval, and rounds queued behind each other would hold every job up.
   */
  private queueSupervision(): void {
    if (this.supervisionQueued) return;
    this.supervisionQueued = true;
    void this.enqueue(async () => {
      this.supervisionQueued = false;
      await this.supervise();
    });
  }

  /** Restarts apps that should run but do not, each with its own growing delay. */
  private async supervise(): Promise<void> {
    if (this.closed) return;
    if (this.fullReconcileNeeded) return this.fullReconcile();
    let engine: EngineState;
    try {
      engine = this.live.current();
    } catch (err) {
      this.options.logger.warn('cannot read the engine state', { err });
      return;
    }
    const due = dueForRestart(this.supervised(), engine, this.activity.backoff, this.options.restart ?? DEFAULT_RESTART, this.now());
    if (due.size) {
      this.options.logger.info('restarting apps that stopped running', { apps: [...due] });
      await this.reconcile(due, { honourRestartPolicy: true }).catch((err) => this.options.logger.warn('restart failed', { err }));
    }
    await this.activity.publish();
  }

  /** One round at a time: a slow one is not overlapped by the next. */
  private async checkHealth(): Promise<void> {
    if (this.healthRound) return;
    this.healthRound = true;
    try {
      await this.healthchecks.round(this.supervised());
      const targets = healthTargets(this.supervised().filter(({ name }) => !this.activity.failures.has(name)));
      await this.probe.round(targets, (app, verdict) => {
        this.activity.emit({ type: 'health', app, ...verdict });
        this.activity.reportHealth();
      });
    } finally {
      this.healthRound = false;
    }
  }

  /** The apps that should be running and no job is working on. */
  private supervised(): SupervisedApp[] {
    return Object.entries(this.doc.apps)
      .filter(([name, record]) => this.runOf(name, record) === 'running' && !this.activity.active.has(name))
      .map(([name, record]) => ({ name, record }));
  }

  // ---- state and events ----

  private view(name: string, engine: EngineState): AppView {
    return appView(name, this.doc.apps[name]!, engine, this.activity.facts(name), this.probe.verdict(name));
  }

  // ---- helpers ----

  private get store(): ControlStore<ControlDocument> {
    return this.options.store;
  }

  private get doc(): DeepReadonly<ControlDocument> {
    return this.store.data;
  }

  private runOf(name: string, record: DeepReadonly<AppRecord>): DesiredRunState {
    return this.options.effectiveRun?.(name, record.run) ?? record.run;
  }

  private get portProbe(): PortProbe {
    return this.options.ports ?? hostPortProbe;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private timestamp(): string {
    return new Date(this.now()).toISOString();
  }

  private record(name: string): DeepReadonly<AppRecord> {
    const record = this.doc.apps[name];
    if (!record) throw new AppNotFoundError(name);
    return record;
  }

  /** The engine name of a service's container; an unknown service is a 404 naming the ones there are. */
  private containerOf(name: string, service?: string): string {
    const { spec } = this.record(name);
    const wanted = service ?? mainService(spec).name;
    if (!spec.services.some((candidate) => candidate.name === wanted)) {
      throw new BadRequestError(`service: app ${name} has no service ${JSON.stringify(wanted)} (its services: ${spec.services.map((s) => s.name).join(', ')})`);
    }
    return containerName(name, wanted, isShortForm(spec as AppSpec));
  }

  /**
   * After an uninstall: purged, the data goes; kept, the volume is closed (unmounted) at once
   * rather than staying open, decrypted, until the next lock.
   */
  private async closeOrPurgeVolume(app: string, purge: boolean): Promise<void> {
    if (purge) return this.options.volumes.remove(app);
    await this.options.volumes.close?.(app).catch((err) => this.options.logger.warn('could not close the volume of an uninstalled app', { app, err }));
  }

  private enqueue(work: () => Promise<void>): Promise<void> {
    return this.queue.run(work).catch((err) => this.options.logger.error('app work failed', { err }));
  }
}

/** An update that failed and was undone: the job failed, the app runs as before. */
class UpdateRolledBackError extends Error {}
