// The executor: carries out a plan's steps, one app at a time. A failing app stops at its failed
// step and its dependents are skipped; every other app still gets its turn.
import type { Logger } from '../../common/logger.js';
import type { Engine } from './engine.js';
import { groupByApp, retiredName, type Step } from './planner.js';
import { ServiceWaitError } from './errors.js';
import { assertPortsFree, type PortProbe } from './ports.js';

export type EngineSteps = Pick<
  Engine,
  'removeContainer' | 'removeNetwork' | 'createNetwork' | 'createContainer' | 'startContainer' | 'stopContainer' | 'prepareInternalNetwork' | 'waitForContainer' | 'renameContainer' | 'forgetNeighbour'
>;

export interface ExecutorOptions {
  engine: EngineSteps;
  ports: PortProbe;
  logger: Logger;
}

export interface ExecuteHooks {
  /** Called before each step, with how many of the plan's steps are done. */
  onStep?(step: Step, done: number, total: number): void;
  /** The apps that depend on `app`: skipped when it fails. */
  dependentsOf(app: string): string[];
}

export class Executor {
  constructor(private readonly options: ExecutorOptions) {}

  /** Runs the steps; resolves with the error of each app that failed (or was skipped for one). */
  async run(steps: readonly Step[], hooks: ExecuteHooks): Promise<Map<string, Error>> {
    const failures = new Map<string, Error>();
    let done = 0;
    for (const group of groupByApp(steps)) {
      if (failures.has(group.app)) {
        done += group.steps.length;
        continue;
      }
      for (const step of group.steps) {
        hooks.onStep?.(step, done, steps.length);
        try {
          await this.runStep(step);
        } catch (err) {
          this.options.logger.warn('app step failed', { app: group.app, step: step.kind, err });
          failures.set(group.app, err as Error);
          for (const dependent of hooks.dependentsOf(group.app)) {
            if (!failures.has(dependent)) failures.set(dependent, new Error(`dependency ${group.app} failed: ${(err as Error).message}`));
          }
          break;
        } finally {
          done++;
        }
      }
    }
    return failures;
  }

  private async runStep(step: Step): Promise<void> {
    const { engine, logger } = this.options;
    logger.info('app step', { app: step.app, step: step.kind, ...('reason' in step ? { reason: step.reason } : {}) });
    switch (step.kind) {
      case 'remove-container':
        return engine.removeContainer(step.containerId, step.stopTimeoutS);
      case 'remove-network':
        return engine.removeNetwork(step.network);
      case 'create-network':
        return engine.createNetwork(step.network);
      case 'create-container':
        return engine.createContainer(step.container, step.configHash);
      case 'retire-container':
        // An earlier failed attempt may have left one; the container being retired is the one to keep.
        await engine.removeContainer(retiredName(step.container));
        await engine.stopContainer(step.containerId, step.stopTimeoutS);
        return engine.renameContainer(step.containerId, retiredName(step.container));
      case 'stop-container':
        return engine.stopContainer(step.containerId, step.stopTimeoutS);
      case 'wait-container':
        return engine.waitForContainer(step.container, step.condition, step.timeoutMs).catch((err: Error) => {
          throw new ServiceWaitError(step.app, step.service, err.message);
        });
      case 'start-container':
        // The engine's own error would only say "address already in use"; this one names the holder.
        await assertPortsFree(step.hostPorts, this.options.ports);
        await engine.startContainer(step.container);
        if (step.internalNetwork) await engine.prepareInternalNetwork(step.internalNetwork);
        if (step.address) await engine.forgetNeighbour(step.address);
        return;
    }
  }
}
