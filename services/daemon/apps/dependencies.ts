// Rules over the whole set of installed apps, checked before any change is committed.
import type { AppSpec } from './spec/types.js';
import { DependencyError } from './errors.js';
import { startOrder } from './order.js';

/**
 * Every depends_on names an installed app, there is no cycle (DependencyCycleError), and no app
 * that denies itself the internet depends on one that allows it: joining that app's network would
 * give it a route out.
 */
export function checkDependencies(specs: Readonly<Record<string, AppSpec>>): void {
  const problems: string[] = [];
  for (const [name, spec] of Object.entries(specs)) {
    for (const dep of spec.depends_on) {
      const target = specs[dep];
      if (!target) problems.push(`${name}: depends_on ${dep}, which is not installed`);
      else if (spec.permissions.network.internet === 'deny' && target.permissions.network.internet === 'allow') {
        problems.push(`${name}: denies itself the internet but depends_on ${dep}, which allows it; its network would give ${name} a route out`);
      }
    }
  }
  if (problems.length) throw new DependencyError(problems.join('; '), problems);
  startOrder(Object.entries(specs).map(([name, spec]) => ({ name, dependsOn: spec.depends_on })));
}
