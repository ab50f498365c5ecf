// Converging the engine to the desired state: resolve each app's images (pinned once pulled) and
// volume folders, render its containers, plan against what the engine reports, execute. And the
// atomic update built on it: the new containers start while the replaced ones wait aside; the
// healthchecks decide; a failed update brings the previous containers back with the data intact.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../common/logger.js';
import type { ControlStore, DeepReadonly } from '../store/store.js';
import type { AppRecord, ControlDocument, DesiredRunState, PinnedImage } from '../control-document.js';
import { containerNames, renderApp, type DesiredApp } from './container-spec.js';
import type { Engine, EngineState } from './engine.js';
import { ServiceWaitError } from './errors.js';
import type { Executor } from './executor.js';
import { probeOnce } from './health-probe.js';
import { dependentsOf } from './order.js';
import { isRetired, plan, retireReplaced, type DesiredAppState, type Step } from './planner.js';
import type { PullProgress } from './pull-progress.js';
import type { AppSpec } from './spec/types.js';
import { heldContainers } from './supervision.js';
import type { AppVolumes } from './volumes.js';
import { serviceContainers } from './views.js';

export interface ConvergerOptions {
  store: ControlStore<ControlDocument>;
  engine: Engine;
  volumes: AppVolumes;
  executor: Executor;
  logger: Logger;
  runOf: (app: string, record: DeepReadonly<AppRecord>) => DesiredRunState;
  /** How long an updated app's containers must stay up before the update counts as good. */
  updateSettleMs?: number;
}

export interface ReconcileOptions {
  /** The apps whose steps run; all (strays included) when undefined. */
  scope?: ReadonlySet<string>;
  onStep?: (step: Step, done: number, total: number) => void;
  onPull?: (progress: PullProgress) => void;
  /** The supervisor's round: exited containers whose restart policy is "no" stay down. */
  honourRestartPolicy?: boolean;
  /** An app being updated: its replaced containers are retired, not removed. */
  updating?: string;
}

export class Converger {
  constructor(private readonly options: ConvergerOptions) {}

  /** Plans against the engine's current state and runs the steps of the apps in scope. Resolves with each app's failure. */
  async reconcile({ scope, onStep, onPull, honourRestartPolicy, updating }: ReconcileOptions = {}): Promise<Map<string, Error>> {
    const doc = this.doc;
    const started = Date.now();
    const failures = new Map<string, Error>();
    const prepared = new Map<string, DesiredApp>();
    const pins = new Map<string, { revision: number; images: Record<string, PinnedImage> }>();
    for (const [name, record] of Object.entries(doc.apps)) {
      try {
        const { app, images } = await this.prepare(name, record as AppRecord, scope?.has(name) ? onPull : undefined);
        prepared.set(name, app);
        if (!samePins(record.images, images)) pins.set(name, { revision: record.revision, images });
      } catch (err) {
        failures.set(name, err as Error);
      }
    }
    await this.pin(pins);
    const prepareMs = Date.now() - started;
    const engine = await this.options.engine.state();
    const desired: DesiredAppState[] = [];
    for (const [name, app] of prepared) {
      try {
        desired.push({
          name,
          run: this.options.runOf(name, app.record),
          dependsOn: app.record.spec.depends_on,
          ...renderApp(app, prepared),
          ...(honourRestartPolicy ? { hold: heldContainers(name, app.record, engine) } : {}),
        });
      } catch (err) {
        failures.set(name, err as Error);
      }
    }
    const nodes = dependencyNodes(doc);
    // An app that could not be prepared keeps what it has: no steps for it or its dependents.
    for (const name of [...failures.keys()]) {
      for (const dependent of dependentsOf(name, nodes)) if (!failures.has(dependent)) failures.set(dependent, new Error(`dependency ${name} failed`));
    }
    // The containers an update keeps aside are its own business until it has finished.
    const current = updating ? { ...engine, containers: engine.containers.filter((c) => !(c.app === updating && isRetired(c.name))) } : engine;
    let steps = plan(current, desired).filter((step) => (!scope || scope.has(step.app)) && !failures.has(step.app));
    if (updating) steps = retireReplaced(steps, updating);
    this.options.logger.debug('reconcile planned', { scope: scope && [...scope], prepareMs, planMs: Date.now() - started - prepareMs, steps: steps.length });
    const executed = await this.options.executor.run(steps, { onStep, dependentsOf: (app) => dependentsOf(app, nodes) });
    for (const [app, err] of executed) failures.set(app, err);
    return failures;
  }

  /**
   * After an update's containers started: each must still be up (or have completed) once they
   * settled, each engine healthcheck must pass, and so must the app's HTTP healthcheck.
   * Rejects naming the service (or the check) that failed.
   */
  async verify(name: string): Promise<void> {
    const record = this.doc.apps[name];
    if (!record || this.options.runOf(name, record) !== 'running') return;
    await new Promise((resolve) => setTimeout(resolve, this.options.updateSettleMs ?? 3000));
    const engine = await this.options.engine.state();
    for (const { service, container } of serviceContainers(name, record.spec, engine)) {
      if (!container) throw new ServiceWaitError(name, service.name, 'has no container');
      if (!container.running && !(container.exitCode === 0 && (service.restart === 'no' || service.restart === 'on-failure'))) {
        throw new ServiceWaitError(name, service.name, `exited with code ${container.exitCode ?? 'unknown'}${container.error ? ` (${container.error})` : ''}`);
      }
      const check = service.healthcheck;
      if (check && container.running) {
        const timeoutMs = check.start_period_ms + (check.interval_ms + check.timeout_ms) * (check.retries + 1) + 10_000;
        await this.options.engine.waitForContainer(container.name, 'service_healthy', timeoutMs).catch((err: Error) => {
          throw new ServiceWaitError(name, service.name, err.message);
        });
      }
    }
    const http = record.spec.healthcheck?.http;
    const port = http && record.ports[http.port];
    if (http && port) {
      const url = `http://127.0.0.1:${port.hostBind}${http.path}`;
      let problem: string | undefined;
      for (let attempt = 0; attempt < Math.max(1, http.retries); attempt++) {
        problem = await probeOnce(url, http.timeout_ms);
        if (!problem) break;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      if (problem) throw new ServiceWaitError(name, `listener ${http.port}`, `failed its healthcheck ${http.path}: ${problem}`);
    }
  }

  /** The update held: the containers it kept aside go. */
  async dropRetired(name: string): Promise<void> {
    for (const container of (await this.options.engine.state()).containers) {
      if (container.app === name && isRetired(container.name)) await this.options.engine.removeContainer(container.id);
    }
  }

  /**
   * The update failed: the record goes back to the previous revision (spec, images, grants) and
   * the containers kept aside get their names back, so the reconcile that follows starts them as
   * they were. Without kept containers (a daemon restart removed them) it makes them again.
   */
  async rollBack(name: string): Promise<number | undefined> {
    let restored: number | undefined;
    await this.options.store.commit((draft) => {
      const record = draft.apps[name];
      const previous = record?.history[0];
      if (!record || !previous) return;
      record.spec = previous.spec;
      record.revision = previous.revision;
      record.updatedAt = previous.at;
      if (previous.images) record.images = previous.images;
      else delete record.images;
      if (previous.granted) record.granted = previous.granted;
      record.history = record.history.slice(1);
      const listeners = new Set(previous.spec.listeners.map((listener) => listener.name));
      record.ports = Object.fromEntries(Object.entries(record.ports).filter(([listener]) => listeners.has(listener)));
      restored = previous.revision;
    });
    const engine = await this.options.engine.state();
    const retired = engine.containers.filter((c) => c.app === name && isRetired(c.name));
    const names = new Set(retired.map((c) => c.name.replace(/\.previous$/, '')));
    for (const container of engine.containers) {
      if (container.app === name && names.has(container.name)) await this.options.engine.removeContainer(container.id, container.stopTimeoutS);
    }
    for (const container of retired) await this.options.engine.renameContainer(container.id, container.name.replace(/\.previous$/, ''));
    return restored;
  }

  /** The asynchronous parts of an app's desired state: its images (pinned), its volume and media folders. */
  private async prepare(name: string, record: AppRecord, onPull?: (progress: PullProgress) => void): Promise<{ app: DesiredApp; images: Record<string, PinnedImage> }> {
    const { spec } = record;
    const images: Record<string, PinnedImage> = {};
    const byRef = new Map<string, PinnedImage>();
    for (const service of spec.services) {
      const known = byRef.get(service.image);
      const image = known ?? (await this.options.engine.resolveImage(service.image, { pinned: record.images?.[service.name], onPull }));
      byRef.set(service.image, image);
      images[service.name] = image;
    }
    const app: DesiredApp = { name, record, imageIds: Object.fromEntries(Object.entries(images).map(([service, image]) => [service, image.id])) };
    if (Object.keys(spec.storage.persistent).length) {
      const volumeDir = await this.options.volumes.ensure(name);
      for (const [volume, { size_limit_bytes: limit }] of Object.entries(spec.storage.persistent)) {
        // Every volume goes through limit() where there is one: a volume made with a limit keeps its file system.
        if (this.options.volumes.limit) await this.options.volumes.limit(name, volume, limit, `storage.persistent.${volume}.size_limit`);
        else if (limit === undefined) await mkdir(path.join(volumeDir, volume), { recursive: true });
        // Never silently unlimited: refused here when the device's volumes cannot limit a folder.
        else throw new Error(`app ${name}: storage.persistent.${volume}.size_limit cannot be enforced by this device's volumes`);
      }
      for (const mount of spec.services.flatMap((service) => service.mounts)) {
        const subpath = (mount as { subpath?: string }).subpath;
        if (mount.volume !== undefined && subpath && subpath !== '.' && spec.storage.persistent[mount.volume]) await mkdir(path.join(volumeDir, mount.volume, subpath), { recursive: true });
      }
      app.volumeDir = volumeDir;
    }
    const media = [...new Set(spec.services.flatMap((service) => service.mounts.flatMap((mount) => (mount.media === undefined ? [] : [mount.media]))))];
    if (media.length) {
      if (!this.options.volumes.media) throw new Error(`app ${name} mounts shared media folders (${media.join(', ')}), which this device does not provide yet`);
      app.mediaDirs = {};
      for (const folder of media) app.mediaDirs[folder] = await this.options.volumes.media(folder);
      for (const mount of spec.services.flatMap((service) => service.mounts)) {
        const subpath = (mount as { subpath?: string }).subpath;
        if (mount.media !== undefined && subpath && subpath !== '.') await mkdir(path.join(app.mediaDirs[mount.media]!, subpath), { recursive: true });
      }
    }
    if (spec.services.some((service) => service.engine_socket)) app.engineSocket = this.options.engine.socketPath;
    return { app, images };
  }

  /** Records the images resolved for apps whose record has not changed meanwhile. */
  private async pin(pins: Map<string, { revision: number; images: Record<string, PinnedImage> }>): Promise<void> {
    if (!pins.size) return;
    await this.options.store.commit((draft) => {
      for (const [name, { revision, images }] of pins) {
        const record = draft.apps[name];
        if (record && record.revision === revision) record.images = images;
      }
    });
  }

  private get doc(): DeepReadonly<ControlDocument> {
    return this.options.store.data;
  }
}

/** The containers an app's spec names, for the callers that stop them one by one. */
export function appContainers(spec: DeepReadonly<AppSpec>, engine: EngineState): EngineState['containers'] {
  const names = containerNames(spec as AppSpec);
  return names.flatMap((name) => engine.containers.filter((c) => c.name === name));
}

export function dependencyNodes(doc: DeepReadonly<ControlDocument> | ControlDocument) {
  return Object.entries(doc.apps).map(([name, record]) => ({ name, dependsOn: record.spec.depends_on }));
}

function samePins(a: DeepReadonly<Record<string, PinnedImage>> | undefined, b: Record<string, PinnedImage>): boolean {
  if (!a) return false;
  const keys = Object.keys(b);
  return keys.length === Object.keys(a).length && keys.every((key) => a[key]?.id === b[key]!.id && a[key]?.ref === b[key]!.ref && a[key]?.digest === b[key]!.digest);
}
