// Runs one app job (jobs.ts keeps its record) after its desired-state change was committed:
// converges what the change affects, reports progress and pulls into the job, and finishes it
// with its outcome. An update or revert is atomic (runUpdate); an uninstall closes or purges
// the app's volume once its containers are gone.
import type { Logger } from '../../common/logger.js';
import type { ControlStore, DeepReadonly } from '../store/store.js';
import type { AppRecord, ControlDocument, JobKind } from '../control-document.js';
import type { AppActivity } from './activity.js';
import { appContainers, dependencyNodes, type Converger } from './converge.js';
import type { Engine } from './engine.js';
import { AppNotFoundError } from './errors.js';
import type { JobBook } from './jobs.js';
import { dependentsOf, withDependencies } from './order.js';
import type { PullProgress } from './pull-progress.js';
import type { Reconciler } from './reconciler.js';
import type { AppVolumes } from './volumes.js';

export interface JobRunnerOptions {
  store: ControlStore<ControlDocument>;
  engine: Engine;
  volumes: AppVolumes;
  book: JobBook;
  converger: Converger;
  reconciler: Reconciler;
  activity: AppActivity;
  logger: Logger;
}

type StepHooks = { onStep: (step: { kind: string }, done: number, total: number) => void; onPull: (p: PullProgress) => void };

/** An update that failed and was undone: the job failed, the app runs as before. */
class UpdateRolledBackError extends Error {}

export class JobRunner {
  constructor(private readonly options: JobRunnerOptions) {}

  /** Runs the job if it is still running (a resumed one may have finished meanwhile). */
  async run(id: string): Promise<void> {
    const { book, activity } = this.options;
    const job = book.get(id);
    if (!job || job.status !== 'running') return;
    const { app, kind } = job;
    activity.active.set(app, kind);
    activity.failures.delete(app);
    activity.backoff.delete(app);
    await activity.publish();
    let error: unknown;
    let total = 0;
    const pulls = book.pullReporter(id);
    const onStep = (step: { kind: string }, done: number, steps: number) => {
      total = steps;
      void book.update(id, { progress: { done, total, step: step.kind, ...pulls.finished } });
    };
    try {
      if (kind === 'restart') {
        await book.update(id, { progress: { done: 0, total: 0, step: 'stop-container' } });
        await this.stopContainersOf(app);
      }
      if (kind === 'update' || kind === 'revert') {
        error = await this.runUpdate(app, { onStep, onPull: pulls.onPull });
      } else {
        const failures = await this.options.reconciler.reconcile(this.scopeOf(app, kind), { onStep, onPull: pulls.onPull });
        error = failures.get(app);
        if (!error && kind === 'uninstall') await this.closeOrPurgeVolume(app, job.purge === true);
      }
    } catch (err) {
      error = err;
    }
    pulls.close();
    activity.active.delete(app);
    // A rolled-back update failed as a job; the app itself runs its previous revision.
    if (error && !(error instanceof UpdateRolledBackError)) activity.failures.set(app, (error as Error).message);
    await book.update(id, error ? { status: 'failed', error: (error as Error).message } : { status: 'succeeded', progress: { done: total, total, ...pulls.finished } });
    if (kind === 'uninstall' && !error) activity.removed(app);
    await activity.publish();
  }

  /** Stops each of an app's containers, dependents first (the reverse of the start order). */
  async stopContainersOf(app: string): Promise<void> {
    const { engine } = this.options;
    const state = await engine.state();
    for (const container of appContainers(existingRecord(this.options.store, app).spec, state).reverse()) {
      if (container.running) await engine.stopContainer(container.id, container.stopTimeoutS);
    }
  }

  /**
   * An update or revert, atomic: the new revision's containers start while the replaced ones
   * wait aside; the healthchecks decide. On failure the previous revision comes back, its
   * containers as they were, and the job fails saying why and what runs now.
   */
  private async runUpdate(app: string, hooks: StepHooks): Promise<Error | undefined> {
    const { converger, reconciler } = this.options;
    const revision = existingRecord(this.options.store, app).revision;
    const scope = this.scopeOf(app, 'update');
    let problem: Error | undefined;
    try {
      problem = (await reconciler.reconcile(scope, { ...hooks, updating: app })).get(app);
      if (!problem) await converger.verify(app);
    } catch (err) {
      problem = err as Error;
    }
    if (!problem) {
      await converger.dropRetired(app);
      return undefined;
    }
    this.options.logger.warn('update failed; rolling back', { app, revision, err: problem });
    const restored = await converger.rollBack(app);
    if (restored === undefined) return problem;
    const after = (await reconciler.reconcile(scope, { onStep: hooks.onStep })).get(app);
    const message = `update to revision ${revision} failed: ${problem.message}`;
    return after ? new Error(`${message}; the rollback failed too: ${after.message}`) : new UpdateRolledBackError(`${message}; rolled back to revision ${restored}`);
  }

  /** Which apps a job converges: the app, plus what its change can affect. */
  private scopeOf(app: string, kind: JobKind): Set<string> {
    const nodes = dependencyNodes(this.options.store.data);
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

  /**
   * After an uninstall: purged, the data goes; kept, the volume is closed (unmounted) at once
   * rather than staying open, decrypted, until the next lock.
   */
  private async closeOrPurgeVolume(app: string, purge: boolean): Promise<void> {
    const { volumes, logger } = this.options;
    if (purge) return volumes.remove(app);
    await volumes.close?.(app).catch((err) => logger.warn('could not close the volume of an uninstalled app', { app, err }));
  }
}

/** The app's record in the store; a 404 when there is none. */
export function existingRecord(store: ControlStore<ControlDocument>, name: string): DeepReadonly<AppRecord> {
  const record = store.data.apps[name];
  if (!record) throw new AppNotFoundError(name);
  return record;
}
