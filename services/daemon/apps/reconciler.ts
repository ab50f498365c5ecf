// One convergence of some apps (or all), as jobs and supervision run it: subnets another daemon
// took are moved first, apps refused for a taken subnet or port move and try again
// (allocation.ts), and each app's outcome is kept in its activity for the views and health.
import type { Logger } from '../../common/logger.js';
import type { ControlStore } from '../store/store.js';
import type { ControlDocument } from '../control-document.js';
import type { AppActivity } from './activity.js';
import type { Allocator } from './allocation.js';
import type { Converger, ReconcileOptions } from './converge.js';
import type { LiveEngineState } from './live-state.js';

export interface ReconcilerOptions {
  store: ControlStore<ControlDocument>;
  converger: Converger;
  allocator: Allocator;
  live: LiveEngineState;
  activity: AppActivity;
  logger: Logger;
}

export class Reconciler {
  constructor(private readonly options: ReconcilerOptions) {}

  /** Converges the apps in `scope` (all, strays included, when undefined) and keeps each one's failure. */
  async reconcile(scope: ReadonlySet<string> | undefined, options: Omit<ReconcileOptions, 'scope'> = {}): Promise<Map<string, Error>> {
    const { allocator, converger, live, activity, logger } = this.options;
    await allocator.moveTakenSubnets(scope).catch((err) => logger.warn('could not check the apps\' subnets', { err }));
    const failures = await allocator.retryTaken(await converger.reconcile({ ...options, ...(scope ? { scope } : {}) }), options);
    // Read back before the job is said to be done: the answers that follow show what it did.
    await live.refresh().catch((err) => logger.warn('cannot read the engine state', { err }));
    for (const name of scope ?? Object.keys(this.options.store.data.apps)) {
      const failure = failures.get(name);
      if (failure) activity.failures.set(name, failure.message);
      else activity.failures.delete(name);
    }
    return failures;
  }
}
