// The app manager: what the API calls. Every change first commits the desired state (and a job
// record) to the control store, then a job converges the engine to it through plan → execute.
// Jobs run one at a time; a daemon that dies mid-job finds the job at the next open() and runs
// it again (convergence is idempotent), so no job stays "running" forever.
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { ComponentState } from '../../common/health-report.js';
import { SerialQueue } from '../../common/serial-queue.js';
import type { Logger } from '../../common/logger.js';
import type { ControlStore, DeepReadonly } from '../store/store.js';
import { APP_HISTORY_LIMIT, FINISHED_JOBS_LIMIT, type AppRecord, type AppRevision, type ControlDocument, type DesiredRunState, type JobKind, type JobRecord } from '../control-document.js';
import { engineName, renderApp, type DesiredApp } from './container-spec.js';
import { checkDependencies } from './dependencies.js';
import type { ContainerStats, ContainerStatus, Engine, EngineState, LogOptions } from './engine.js';
import { AppBusyError, AppExistsError, AppNotFoundError, RevisionNotFoundError } from './errors.js';
import { Executor } from './executor.js';
import { HealthProbe, type AppHealth, type HealthTarget } from './health-probe.js';
import { dependentsOf, withDependencies } from './order.js';
import { plan, type DesiredAppState, type Step } from './planner.js';
import { allocatePorts, hostPortProbe, type PortProbe } from './ports.js';
import { throttled, type PullProgress } from './pull-progress.js';
import type { AppSpec, ListenerFlow, ListenerProtocol } from './spec/types.js';
import { deriveState, type AppState, type RestartBackoff } from './status.js';
import { allocateSubnet, DEFAULT_SUBNET_POOL } from './subnets.js';
import type { AppVolumes } from './volumes.js';

export interface RestartPolicy {
  /** Wait before the first automatic restart; doubles with each further one. */
  initialMs: number;
  maxMs: number;
  /** Running this long resets the count. */
  stableMs: number;
}

export interface AppManagerOptions {
  store: ControlStore<ControlDocument>;
  engine: Engine;
  volumes: AppVolumes;
  logger: Logger;
  /** Receives the "apps" component: degraded while an app has failed or fails its healthcheck. */
  health?: { set(component: string, state: ComponentState, reason?: string): void };
  ports?: PortProbe;
  now?: () => number;
  /** A /16 from which each app's network gets a /24. */
  subnetPool?: string;
  /** How often crashed apps are looked for. */
  superviseIntervalMs?: number;
  healthIntervalMs?: number;
  restart?: RestartPolicy;
  /**
   * The run state to converge an app to, given its desired one: leadership (cluster/) stops here
   * the apps another node leads, without touching what the store says they should be doing.
   */
  effectiveRun?: (app: string, desired: DesiredRunState) => DesiredRunState;
}

export interface ServiceEntry {
  app: string;
  listener: string;
  guestPort: number;
  hostBindPort: number;
  publicPort: number;
  /** Reachable from the device itself. */
  localUrl: string;
  protocol: ListenerProtocol;
  flow: ListenerFlow;
}

export interface AppView {
  name: string;
  state: AppState;
  reason?: string;
  health: AppHealth;
  healthReason?: string;
  revision: number;
  run: AppRecord['run'];
  spec: DeepReadonly<AppSpec>;
  installedAt: string;
  updatedAt: string;
  container?: { id: string; state: string; startedAt?: string; finishedAt?: string; exitCode?: number };
  services: ServiceEntry[];
}

export type AppEvent =
  | { type: 'app-state'; app: string; state: AppState; reason?: string }
  | { type: 'app-removed'; app: string }
  | { type: 'health'; app: string; health: AppHealth; reason?: string }
  | { type: 'job'; job: JobRecord };

const DEFAULT_RESTART: RestartPolicy = { initialMs: 2_000, maxMs: 300_000, stableMs: 60_000 };
/** A pull's progress goes out at most 4 times a second per job. */
const PULL_EVENT_INTERVAL_MS = 250;

export class AppManager {
  private readonly executor: Executor;
  private readonly probe = new HealthProbe();
  private readonly listeners = new Set<(event: AppEvent) => void>();
  /** Serializes jobs, reconciles and supervision rounds. */
  private readonly queue = new SerialQueue();
  /** The kind of job working on each app right now. */
  private readonly active = new Map<string, JobKind>();
  /** Why the last attempt to converge each app failed. */
  private readonly failures = new Map<string, string>();
  private readonly backoff = new Map<string, RestartBackoff>();
  /** What was last said about each app, so only changes become events. */
  private readonly reported = new Map<string, string>();
  /**
   * Image pulls of running jobs, by job id: published as they advance but kept in memory, so a
   * pull does not rewrite the control store several times a second; the finished pull is committed.
   */
  private readonly pulls = new Map<string, PullProgress>();
  private timers: NodeJS.Timeout[] = [];
  private fullReconcileNeeded = true;
  private closed = false;

  constructor(private readonly options: AppManagerOptions) {
    this.executor = new Executor({ engine: options.engine, ports: this.portProbe, logger: options.logger });
  }

  // ---- life cycle ----

  /** Resumes interrupted jobs, brings every app back to its desired state, starts supervising. */
  async open(): Promise<void> {
    const interrupted = this.doc.jobs.filter((job) => job.status === 'running').map((job) => job.id);
    if (interrupted.length) {
      await this.store.commit((draft) => {
        for (const job of draft.jobs) if (interrupted.includes(job.id)) job.resumed = true;
      });
      this.options.logger.warn('resuming jobs interrupted by a restart', { jobs: interrupted });
    }
    await this.enqueue(() => this.fullReconcile());
    for (const id of interrupted) void this.enqueue(() => this.runJob(id));
    this.timers = [
      setInterval(() => void this.enqueue(() => this.supervise()), this.options.superviseIntervalMs ?? 2000),
      setInterval(() => void this.checkHealth(), this.options.healthIntervalMs ?? 10_000),
    ];
  }

  /** Stops supervising and waits for the job in progress; the apps keep running. */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    await this.queue.idle();
  }

  /** Converges one app again, e.g. after its effective run state changed; resolves when done. */
  converge(app: string): Promise<void> {
    return this.enqueue(async () => {
      await this.reconcile(new Set([app]));
      await this.publish();
    });
  }

  subscribe(listener: (event: AppEvent) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  // ---- reading ----

  async list(): Promise<AppView[]> {
    const engine = await this.options.engine.state();
    return Object.keys(this.doc.apps).sort().map((name) => this.view(name, engine));
  }

  async get(name: string): Promise<AppView> {
    this.record(name);
    return this.view(name, await this.options.engine.state());
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
    return names.flatMap((name) => {
      const record = this.doc.apps[name]!;
      return record.spec.listeners.map((listener) => {
        const ports = record.ports[listener.name]!;
        const scheme = listener.protocol === 'websocket' ? 'ws' : listener.protocol === 'http' ? 'http' : 'tcp';
        return {
          app: name,
          listener: listener.name,
          guestPort: listener.guest_port,
          hostBindPort: ports.hostBind,
          publicPort: ports.public,
          localUrl: `${listener.flow === 'tls' && scheme !== 'tcp' ? `${scheme}s` : scheme}://127.0.0.1:${ports.hostBind}`,
          protocol: listener.protocol,
          flow: listener.flow,
        };
      });
    });
  }

  logs(name: string, options: LogOptions): Promise<Readable> {
    this.record(name);
    return this.options.engine.logs(engineName(name), options);
  }

  stats(name: string): Promise<ContainerStats> {
    this.record(name);
    return this.options.engine.stats(engineName(name));
  }

  jobs(): DeepReadonly<JobRecord[]> {
    return this.doc.jobs;
  }

  job(id: string): DeepReadonly<JobRecord> | undefined {
    const job = this.doc.jobs.find((candidate) => candidate.id === id);
    const pull = this.pulls.get(id);
    return job && pull ? { ...job, progress: { ...job.progress, step: 'pull-image', pull } } : job;
  }

  /** Resolves with the job once it has finished, succeeded or failed. */
  waitForJob(id: string): Promise<DeepReadonly<JobRecord>> {
    return new Promise((resolve) => {
      const check = () => {
        const job = this.job(id);
        if (job && job.status !== 'running') {
          unsubscribe();
          resolve(job);
        }
      };
      const unsubscribe = this.subscribe((event) => event.type === 'job' && event.job.id === id && check());
      check();
    });
  }

  // ---- changing (each returns the job, which runs in the background) ----

  install(spec: AppSpec): Promise<JobRecord> {
    return this.startJob(spec.name, 'install', async (draft) => {
      if (draft.apps[spec.name]) throw new AppExistsError(spec.name);
      checkDependencies({ ...specsOf(draft), [spec.name]: spec });
      const now = this.timestamp();
      draft.apps[spec.name] = {
        spec,
        revision: 1,
        installedAt: now,
        updatedAt: now,
        run: 'running',
        history: [],
        ports: await this.allocatePortsFor(draft, spec, {}),
        subnet: await this.allocateSubnetFor(draft),
      };
    });
  }

  /** Starts the app, and whatever it depends on first. */
  start(name: string): Promise<JobRecord> {
    return this.startJob(name, 'start', (draft) => {
      this.mustExist(draft, name);
      for (const app of withDependencies(name, dependencyNodes(draft))) draft.apps[app]!.run = 'running';
    });
  }

  stop(name: string): Promise<JobRecord> {
    return this.startJob(name, 'stop', (draft) => void (this.mustExist(draft, name).run = 'stopped'));
  }

  restart(name: string): Promise<JobRecord> {
    return this.startJob(name, 'restart', (draft) => void (this.mustExist(draft, name).run = 'running'));
  }

  /** New image or spec; the current one goes to the history. */
  update(name: string, spec: AppSpec): Promise<JobRecord> {
    return this.startJob(name, 'update', (draft) => this.replaceSpec(draft, name, spec));
  }

  revert(name: string, revision: number): Promise<JobRecord> {
    return this.startJob(name, 'revert', (draft) => {
      const record = this.mustExist(draft, name);
      const target = record.history.find((entry) => entry.revision === revision);
      if (!target) throw new RevisionNotFoundError(name, revision, record.history.map((entry) => entry.revision));
      return this.replaceSpec(draft, name, target.spec);
    });
  }

  /** Removes the app; its data stays unless `purge` (which the API has the user confirm). */
  uninstall(name: string, options: { purge: boolean }): Promise<JobRecord> {
    return this.startJob(
      name,
      'uninstall',
      (draft) => {
        this.mustExist(draft, name);
        const rest = specsOf(draft);
        delete rest[name];
        checkDependencies(rest);
        delete draft.apps[name];
      },
      { purge: options.purge },
    );
  }

  // ---- jobs ----

  private async startJob(app: string, kind: JobKind, change: (draft: ControlDocument) => void | Promise<void>, extra: Pick<JobRecord, 'purge'> = {}): Promise<JobRecord> {
    const now = this.timestamp();
    const job: JobRecord = { id: randomUUID(), app, kind, status: 'running', ...extra, progress: { done: 0, total: 0 }, createdAt: now, updatedAt: now };
    await this.store.commit(async (draft) => {
      const busy = draft.jobs.find((other) => other.app === app && other.status === 'running');
      if (busy) throw new AppBusyError(app, busy.id);
      await change(draft);
      draft.jobs.push(job);
      pruneJobs(draft);
    });
    // Marked active at once, so a read right after the call already says installing, stopping...
    this.active.set(app, kind);
    this.emit({ type: 'job', job });
    void this.enqueue(() => this.runJob(job.id));
    return job;
  }

  private async runJob(id: string): Promise<void> {
    const job = this.job(id);
    if (!job || job.status !== 'running') return;
    const { app, kind } = job;
    this.active.set(app, kind);
    this.failures.delete(app);
    this.backoff.delete(app);
    await this.publish();
    let error: unknown;
    let total = 0;
    // Once an image was pulled, every later progress of the job keeps saying so.
    let pulled: { pull?: PullProgress } = {};
    const publishPull = throttled(() => this.emitJob(id), PULL_EVENT_INTERVAL_MS);
    const onPull = (pull: PullProgress) => {
      this.pulls.set(id, pull);
      if (!pull.done) return publishPull.push(undefined);
      publishPull.flush();
      this.pulls.delete(id);
      pulled = { pull };
      void this.updateJob(id, { progress: { done: 0, total: 0, step: 'pull-image', pull } });
    };
    try {
      if (kind === 'restart') {
        await this.updateJob(id, { progress: { done: 0, total: 0, step: 'stop-container' } });
        await this.options.engine.stopContainer(engineName(app));
      }
      const failures = await this.reconcile(
        this.scopeOf(app, kind),
        (step, done, steps) => {
          total = steps;
          void this.updateJob(id, { progress: { done, total, step: step.kind, ...pulled } });
        },
        onPull,
      );
      error = failures.get(app);
      if (!error && kind === 'uninstall' && job.purge) await this.options.volumes.remove(app);
    } catch (err) {
      error = err;
    }
    publishPull.flush();
    this.pulls.delete(id);
    this.active.delete(app);
    if (error) this.failures.set(app, (error as Error).message);
    await this.updateJob(id, error ? { status: 'failed', error: (error as Error).message } : { status: 'succeeded', progress: { done: total, total, ...pulled } });
    if (kind === 'uninstall' && !error) {
      this.failures.delete(app);
      this.reported.delete(app);
      this.probe.forget(app);
      this.emit({ type: 'app-removed', app });
    }
    await this.publish();
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

  private async updateJob(id: string, change: Partial<JobRecord>): Promise<void> {
    await this.store.commit((draft) => {
      const job = draft.jobs.find((candidate) => candidate.id === id);
      if (job) Object.assign(job, change, { updatedAt: this.timestamp() });
      pruneJobs(draft);
    });
    this.emitJob(id);
  }

  private emitJob(id: string): void {
    const job = this.job(id);
    if (job) this.emit({ type: 'job', job: structuredClone(job) as JobRecord });
  }

  // ---- converging ----

  private async fullReconcile(): Promise<void> {
    try {
      await this.reconcile(undefined);
      this.fullReconcileNeeded = false;
    } catch (err) {
      this.options.logger.error('reconcile failed; retrying on the next supervision round', { err });
    }
    await this.publish();
  }

  /**
   * Plans against the engine's current state and runs the steps of the apps in `scope` (all
   * when undefined, strays included). Resolves with each app's failure.
   */
  private async reconcile(
    scope: ReadonlySet<string> | undefined,
    onStep?: (step: Step, done: number, total: number) => void,
    onPull?: (progress: PullProgress) => void,
  ): Promise<Map<string, Error>> {
    const doc = this.doc;
    const failures = new Map<string, Error>();
    const prepared = new Map<string, DesiredApp>();
    for (const [name, record] of Object.entries(doc.apps)) {
      try {
        prepared.set(name, await this.prepare(name, record as AppRecord, onPull));
      } catch (err) {
        failures.set(name, err as Error);
      }
    }
    const desired: DesiredAppState[] = [];
    for (const [name, app] of prepared) {
      try {
        const rendered = renderApp(app, prepared);
        desired.push({ name, run: this.runOf(name, app.record), dependsOn: app.record.spec.depends_on, ...rendered });
      } catch (err) {
        failures.set(name, err as Error);
      }
    }
    const nodes = dependencyNodes(doc);
    // An app that could not be prepared keeps what it has: no steps for it or its dependents.
    for (const name of [...failures.keys()]) {
      for (const dependent of dependentsOf(name, nodes)) if (!failures.has(dependent)) failures.set(dependent, new Error(`dependency ${name} failed`));
    }
    const steps = plan(await this.options.engine.state(), desired).filter((step) => (!scope || scope.has(step.app)) && !failures.has(step.app));
    const executed = await this.executor.run(steps, { onStep, dependentsOf: (app) => dependentsOf(app, nodes) });
    for (const [app, err] of executed) failures.set(app, err);
    for (const name of scope ?? Object.keys(doc.apps)) {
      const failure = failures.get(name);
      if (failure) this.failures.set(name, failure.message);
      else this.failures.delete(name);
    }
    return failures;
  }

  /** The asynchronous parts of an app's desired state: its image's ID and its volume folder. */
  private async prepare(name: string, record: AppRecord, onPull?: (progress: PullProgress) => void): Promise<DesiredApp> {
    const imageId = await this.options.engine.resolveImage(record.spec.image, onPull);
    const volumes = Object.keys(record.spec.storage.persistent);
    if (!volumes.length) return { name, record, imageId };
    const volumeDir = await this.options.volumes.ensure(name);
    for (const volume of volumes) await mkdir(path.join(volumeDir, volume), { recursive: true });
    return { name, record, imageId, volumeDir };
  }

  /** Restarts apps that should run but do not, each with its own growing delay. */
  private async supervise(): Promise<void> {
    if (this.closed) return;
    if (this.fullReconcileNeeded) return this.fullReconcile();
    let engine: EngineState;
    try {
      engine = await this.options.engine.state();
    } catch (err) {
      this.options.logger.warn('cannot read the engine state', { err });
      return;
    }
    const now = this.now();
    const policy = this.options.restart ?? DEFAULT_RESTART;
    const due = new Set<string>();
    for (const [name, record] of Object.entries(this.doc.apps)) {
      if (this.runOf(name, record) !== 'running' || this.active.has(name)) continue;
      const container = engine.containers.find((c) => c.name === engineName(name));
      const backoff = this.backoff.get(name);
      if (container?.running) {
        const upFor = container.startedAt ? now - Date.parse(container.startedAt) : 0;
        if (backoff && upFor >= policy.stableMs) this.backoff.delete(name);
        continue;
      }
      if (!backoff) {
        this.backoff.set(name, { attempts: 0, nextAt: now + policy.initialMs });
      } else if (now >= backoff.nextAt) {
        due.add(name);
        backoff.attempts++;
        backoff.nextAt = now + Math.min(policy.maxMs, policy.initialMs * 2 ** backoff.attempts);
      }
    }
    if (due.size) {
      this.options.logger.info('restarting apps that stopped running', { apps: [...due] });
      await this.reconcile(due).catch((err) => this.options.logger.warn('restart failed', { err }));
    }
    await this.publish();
  }

  private async checkHealth(): Promise<void> {
    const targets: HealthTarget[] = [];
    for (const [name, record] of Object.entries(this.doc.apps)) {
      const check = record.spec.healthcheck?.http;
      if (!check || this.runOf(name, record) !== 'running' || this.active.has(name) || this.failures.has(name)) continue;
      const port = record.ports[check.port];
      if (!port) continue;
      targets.push({ app: name, url: `http://127.0.0.1:${port.hostBind}${check.path}`, timeoutMs: check.timeout_ms, retries: check.retries });
    }
    await this.probe.round(targets, (app, verdict) => {
      this.emit({ type: 'health', app, ...verdict });
      this.reportHealth();
    });
  }

  // ---- state and events ----

  private view(name: string, engine: EngineState): AppView {
    const record = this.doc.apps[name]!;
    const container = engine.containers.find((c) => c.name === engineName(name) && c.role === 'app');
    const { state, reason } = this.stateOf(name, record, container);
    const verdict = this.probe.verdict(name);
    return {
      name,
      state,
      ...(reason ? { reason } : {}),
      health: verdict.health,
      ...(verdict.reason ? { healthReason: verdict.reason } : {}),
      revision: record.revision,
      run: record.run,
      spec: record.spec,
      installedAt: record.installedAt,
      updatedAt: record.updatedAt,
      ...(container ? { container: { id: container.id, state: container.state, startedAt: container.startedAt, finishedAt: container.finishedAt, exitCode: container.exitCode } } : {}),
      services: this.services(name),
    };
  }

  private stateOf(name: string, record: DeepReadonly<AppRecord>, container: ContainerStatus | undefined) {
    return deriveState({ run: this.runOf(name, record), container, activeJob: this.active.get(name), failure: this.failures.get(name), backoff: this.backoff.get(name), now: this.now() });
  }

  /** Emits an event for each app whose state or reason changed, and reports to health. */
  private async publish(): Promise<void> {
    let engine: EngineState;
    try {
      engine = await this.options.engine.state();
    } catch {
      return;
    }
    for (const [name, record] of Object.entries(this.doc.apps)) {
      const container = engine.containers.find((c) => c.name === engineName(name) && c.role === 'app');
      const { state, reason } = this.stateOf(name, record, container);
      // The restart countdown changes every second; the state and its cause are what matter.
      const key = `${state}|${reason?.replace(/ in \d+ s$/, '')}`;
      if (this.reported.get(name) === key) continue;
      this.reported.set(name, key);
      this.emit({ type: 'app-state', app: name, state, ...(reason ? { reason } : {}) });
    }
    this.reportHealth();
  }

  private reportHealth(): void {
    const problems = Object.keys(this.doc.apps).flatMap((name) => {
      const failure = this.failures.get(name);
      if (failure) return [`${name}: ${failure}`];
      const verdict = this.probe.verdict(name);
      return verdict.health === 'degraded' ? [`${name}: ${verdict.reason}`] : [];
    });
    this.options.health?.set('apps', problems.length ? 'degraded' : 'ok', problems.length ? problems.join('; ') : undefined);
  }

  private emit(event: AppEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (err) {
        this.options.logger.error('app event listener failed', { err });
      }
    }
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

  private mustExist(draft: ControlDocument, name: string): AppRecord {
    const record = draft.apps[name];
    if (!record) throw new AppNotFoundError(name);
    return record;
  }

  private async replaceSpec(draft: ControlDocument, name: string, spec: AppSpec): Promise<void> {
    const record = this.mustExist(draft, name);
    if (spec.name !== name) throw new AppNotFoundError(spec.name);
    checkDependencies({ ...specsOf(draft), [name]: spec });
    record.history = [{ revision: record.revision, spec: record.spec, at: record.updatedAt }, ...record.history].slice(0, APP_HISTORY_LIMIT);
    record.ports = await this.allocatePortsFor(draft, spec, record.ports);
    record.spec = spec;
    record.revision += 1;
    record.updatedAt = this.timestamp();
  }

  private allocatePortsFor(draft: ControlDocument, spec: AppSpec, kept: AppRecord['ports']): Promise<AppRecord['ports']> {
    const owned = new Set<number>();
    for (const [name, record] of Object.entries(draft.apps)) {
      if (name === spec.name) continue;
      for (const ports of Object.values(record.ports)) owned.add(ports.hostBind).add(ports.public);
    }
    return allocatePorts(spec.listeners.map((listener) => listener.name), kept, owned, this.portProbe);
  }

  private async allocateSubnetFor(draft: ControlDocument): Promise<string> {
    const hostAddresses = Object.values(networkInterfaces()).flatMap((addresses) => (addresses ?? []).filter((a) => a.family === 'IPv4').map((a) => a.cidr!));
    const taken = [...Object.values(draft.apps).map((record) => record.subnet), ...(await this.options.engine.subnetsInUse()), ...hostAddresses];
    return allocateSubnet(this.options.subnetPool ?? DEFAULT_SUBNET_POOL, taken);
  }

  private enqueue(work: () => Promise<void>): Promise<void> {
    return this.queue.run(work).catch((err) => this.options.logger.error('app work failed', { err }));
  }
}

function specsOf(doc: DeepReadonly<ControlDocument> | ControlDocument): Record<string, AppSpec> {
  return Object.fromEntries(Object.entries(doc.apps).map(([name, record]) => [name, record.spec as AppSpec]));
}

function dependencyNodes(doc: DeepReadonly<ControlDocument> | ControlDocument) {
  return Object.entries(doc.apps).map(([name, record]) => ({ name, dependsOn: record.spec.depends_on }));
}

/** Keeps every running job and the newest finished ones. */
function pruneJobs(draft: ControlDocument): void {
  const finished = draft.jobs.filter((job) => job.status !== 'running');
  const drop = new Set(finished.slice(0, Math.max(0, finished.length - FINISHED_JOBS_LIMIT)));
  draft.jobs = draft.jobs.filter((job) => !drop.has(job));
}
