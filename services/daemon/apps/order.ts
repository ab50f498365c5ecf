// depends_on order: an app starts after everything it depends on. Pure, for the planner.
import { DependencyCycleError } from './errors.js';

export interface DependencyNode {
  name: string;
  dependsOn: readonly string[];
}

/**
 * The names in start order: dependencies first, otherwise by name so the order is stable.
 * Dependencies outside `nodes` are ignored (the caller validates them). A cycle throws
 * DependencyCycleError naming it.
 */
export function startOrder(nodes: readonly DependencyNode[]): string[] {
  const byName = new Map(nodes.map((node) => [node.name, node]));
  const order: string[] = [];
  const done = new Set<string>();
  const path: string[] = [];

  const visit = (name: string): void => {
    if (done.has(name)) return;
    const loopsAt = path.indexOf(name);
    if (loopsAt >= 0) throw new DependencyCycleError([...path.slice(loopsAt), name]);
    path.push(name);
    for (const dep of [...byName.get(name)!.dependsOn].sort()) if (byName.has(dep)) visit(dep);
    path.pop();
    done.add(name);
    order.push(name);
  };

  for (const name of [...byName.keys()].sort()) visit(name);
  return order;
}

/** The apps that depend on `name`, directly or through others. */
export function dependentsOf(name: string, nodes: readonly DependencyNode[]): string[] {
  const found = new Set<string>();
  const walk = (target: string) => {
    for (const node of nodes) {
      if (node.dependsOn.includes(target) && !found.has(node.name)) {
        found.add(node.name);
        walk(node.name);
      }
    }
  };
  walk(name);
  return [...found].sort();
}

/** `name` and everything it depends on, directly or through others. */
export function withDependencies(name: string, nodes: readonly DependencyNode[]): string[] {
  const byName = new Map(nodes.map((node) => [node.name, node]));
  const found = new Set<string>();
  const walk = (target: string) => {
    if (found.has(target) || !byName.has(target)) return;
    found.add(target);
    for (const dep of byName.get(target)!.dependsOn) walk(dep);
  };
  walk(name);
  return [...found].sort();
}
