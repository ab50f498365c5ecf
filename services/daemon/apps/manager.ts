// The app manager: what the API calls, and the wiring of the parts that do the work. Every
// change first commits the desired state (desired-changes.ts) with a job record (jobs.ts) to the
// control store; the job then converges the engine to it (job-runner.ts → reconciler.ts →
// converge.ts: plan → execute; allocation.ts moves an app whose subnet or port another daemon
// took). Jobs run one at a time; a daemon that dies mid-job finds the job at the next open() and
// runs it again (convergence is idempotent), so no job stays "running" forever. The supervisor
// (supervisor.ts) restarts what stopped and runs the healthchecks; views (views.ts) say what each
// app is doing, from the engine state kept in memory (live-state.ts) and activity.ts.
import type { Readable } from 'node:stream';
import { SerialQueue } from '../../common/serial-queue.js';
import type { Logger } from '../../common/logger.js';
import type { ControlStore, DeepReadonly } from '../store/store.js';
import { type AppRecord, type AppRevision, type ControlDocument, type DesiredRunState, type JobKind, type JobRecord } from '../control-document.js';
import { BadRequestError } from '../../common/errors.js';
import { containerName, isShortForm } from './container-spec.js';
import { AppActivity, type AppActivityOptions } from './activity.js';
import { Allocator, type AllocatorOptions } from './allocation.js';
import { DesiredChanges } from './desired-changes.js';
import { Converger } from './converge.js';
import type { ContainerStats, Engine, EngineState, LogOptions } from './engine.js';
import { Executor } from './executor.js';
import { HealthProbe } from './health-probe.js';
import { JobBook } from './jobs.js';
import { existingRecord, JobRunner } from './job-runner.js';
import { EngineHealthchecks } from './engine-healthchecks.js';
import { LiveEngineState } from './live-state.js';
import { Reconciler } from './reconciler.js';
import { Supervisor, type SupervisorOptions } from './supervisor.js';
import { hostPortProbe, type PortProbe } from './ports.js';
import { mainService, type AppSpec } from './spec/types.js';
import { appView, factsKey, serviceEntries, ViewsMemo, type AppEvent, type AppView, type ServiceEntry } from './views.js';
import type { AppVolumes } from './volumes.js';

export type { AppEvent, AppView, ContainerView, ServiceEntry } from './views.js';
export type { RestartPolicy } from './supervision.js';

/** subnetPool and subnetStart: allocation.ts; the supervision and health intervals and restart policy: supervisor.ts. */
export interface AppManagerOptions
  extends Pick<AllocatorOptions, 'subnetPool' | 'subnetStart'>,
    Pick<SupervisorOptions, 'superviseIntervalMs' | 'healthIntervalMs' | 'restart'> {
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
  private readonly reconciler: Reconciler;
  private readonly runner: JobRunner;
  private readonly supervisor: Supervisor;
  /** Serializes jobs, reconciles and supervision rounds. */
  private readonly queue = new SerialQueue();

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
    const common = { store: options.store, activity: this.activity, logger: options.logger };
    this.reconciler = new Reconciler({ ...common, converger: this.converger, allocator: this.allocator, live: this.live });
    this.runner = new JobRunner({ ...common, engine: options.engine, volumes: options.volumes, book: this.book, converger: this.converger, reconciler: this.reconciler });
    this.supervisor = new Supervisor({
      ...common,
      live: this.live,
      reconciler: this.reconciler,
      healthchecks: this.healthchecks,
      probe: this.probe,
      enqueue: (work) => this.enqueue(work),
      runOf: (name, record) => this.runOf(name, record),
      now: () => this.now(),
      superviseIntervalMs: options.superviseIntervalMs,
      healthIntervalMs: options.healthIntervalMs,
      restart: options.restart,
    });
  }

  // ---- life cycle ----

  /** Resumes interrupted jobs, brings every app back to its desired state, starts supervising. */
  async open(): Promise<void> {
    const interrupted = await this.book.resumeInterrupted();
    if (interrupted.length) this.options.logger.warn('resuming jobs interrupted by a restart', { jobs: interrupted });
    await this.live.start();
    this.supervisor.followEngine();
    await this.enqueue(() => this.supervisor.fullReconcile());
    for (const id of interrupted) void this.enqueue(() => this.runner.run(id));
    this.supervisor.startRounds();
  }

  /** Stops supervising and waits for the job in progress; the apps keep running. */
  async close(): Promise<void> {
    this.supervisor.stop();
    await this.queue.idle();
    await this.live.stop();
  }

  /** Converges one app again, e.g. after its effective run state changed; resolves when done. */
  converge(app: string): Promise<void> {
    return this.enqueue(async () => {
      await this.reconciler.reconcile(new Set([app]));
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
      await this.runner.stopContainersOf(name);
      try {
        return await work();
      } finally {
        await this.reconciler.reconcile(new Set([name])).catch((err) => this.options.logger.warn('could not start the app again after copying its data', { app: name, err }));
        await this.activity.publish();
      }
    });
  }

  // ---- jobs ----

  private async startJob(app: string, kind: JobKind, change: (draft: ControlDocument) => void | Promise<void>, extra: Pick<JobRecord, 'purge'> = {}): Promise<JobRecord> {
    const job = await this.book.create(app, kind, change, extra);
    // Marked active at once, so a read right after the call already says installing, stopping...
    this.activity.active.set(app, kind);
    void this.enqueue(() => this.runner.run(job.id));
    return job;
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
    return existingRecord(this.store, name);
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

  private enqueue(work: () => Promise<void>): Promise<void> {
    return this.queue.run(work).catch((err) => this.options.logger.error('app work failed', { err }));
  }
}

