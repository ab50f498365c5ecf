// The planner: compares what should run (the desired apps) with what the engine reports (read
// back by labels) and lists the steps that turn one into the other. Pure: no engine, no clock,
// so every decision can be tested from tables. Steps come grouped by app, strays first, then the
// desired apps in depends_on order, so the executor can run them one app at a time.
import type { DesiredRunState } from '../control-document.js';
import type { ContainerSpec, NetworkSpec } from './container-spec.js';
import { startOrder } from './order.js';

/** A container carrying the runtime's labels, as the engine reports it now. */
export interface CurrentContainer {
  id: string;
  name: string;
  /** The piccolo.app label. */
  app: string;
  role: string | undefined;
  configHash: string | undefined;
  running: boolean;
  /** Names of the networks it is attached to. */
  networks: string[];
}

export interface CurrentNetwork {
  name: string;
  app: string;
  subnet: string | undefined;
  internal: boolean;
}

export interface CurrentState {
  containers: readonly CurrentContainer[];
  networks: readonly CurrentNetwork[];
}

export interface DesiredAppState {
  name: string;
  run: DesiredRunState;
  dependsOn: readonly string[];
  network: NetworkSpec;
  container: ContainerSpec;
  configHash: string;
}

export type Step =
  | { kind: 'remove-container'; app: string; containerId: string; reason: string }
  | { kind: 'remove-network'; app: string; network: string; reason: string }
  | { kind: 'create-network'; app: string; network: NetworkSpec }
  | { kind: 'create-container'; app: string; container: ContainerSpec; configHash: string }
  | { kind: 'start-container'; app: string; container: string; hostPorts: number[]; internalNetwork?: string }
  | { kind: 'stop-container'; app: string; containerId: string };

/** Throws DependencyCycleError when depends_on loops. */
export function plan(current: CurrentState, desired: readonly DesiredAppState[]): Step[] {
  const steps: Step[] = [];
  const byName = new Map(desired.map((app) => [app.name, app]));
  const removed = new Set<string>(); // container ids removed by an earlier step of this plan
  const recreatedNetworks = new Set<string>();

  const removeContainer = (app: string, container: CurrentContainer, reason: string) => {
    if (removed.has(container.id)) return;
    removed.add(container.id);
    steps.push({ kind: 'remove-container', app, containerId: container.id, reason });
  };
  /** A network can only go once nothing is attached to it, whichever app the container is of. */
  const removeNetwork = (app: string, network: string, reason: string) => {
    for (const container of current.containers) {
      if (container.networks.includes(network)) removeContainer(app, container, `attached to network ${network}, which is removed`);
    }
    steps.push({ kind: 'remove-network', app, network, reason });
  };

  // Strays first: whatever carries our labels but is not an app's one container and network.
  const strayApps = new Set<string>();
  for (const container of current.containers) {
    const owner = byName.get(container.app);
    if (!owner) strayApps.add(container.app);
    else if (container.role !== 'app' || container.name !== owner.container.name) removeContainer(container.app, container, 'not the app container');
  }
  for (const network of current.networks) if (!byName.has(network.app)) strayApps.add(network.app);
  for (const app of [...strayApps].sort()) {
    for (const container of current.containers) if (container.app === app) removeContainer(app, container, 'app is not installed');
    for (const network of current.networks) if (network.app === app) removeNetwork(app, network.name, 'app is not installed');
  }

  const order = startOrder(desired.map((app) => ({ name: app.name, dependsOn: app.dependsOn })));
  for (const name of order) {
    const app = byName.get(name)!;
    const want = app.network;
    const network = current.networks.find((candidate) => candidate.name === want.name);
    if (network && (network.subnet !== want.subnet || network.internal !== want.internal || network.app !== name)) {
      removeNetwork(name, want.name, 'network settings changed');
      recreatedNetworks.add(want.name);
    }
    if (!network || recreatedNetworks.has(want.name)) steps.push({ kind: 'create-network', app: name, network: want });

    const candidates = current.containers.filter((c) => c.app === name && c.name === app.container.name && c.role === 'app' && !removed.has(c.id));
    // Keep the best one (current config, running); any other is outdated or a duplicate.
    const rank = (c: CurrentContainer) => (c.configHash === app.configHash ? 2 : 0) + (c.running ? 1 : 0);
    let kept: CurrentContainer | undefined = [...candidates].sort((a, b) => rank(b) - rank(a))[0];
    for (const container of candidates) if (container !== kept) removeContainer(name, container, 'duplicate container');
    if (kept && kept.configHash !== app.configHash) {
      removeContainer(name, kept, 'configuration changed');
      kept = undefined;
    }
    const wantedNetworks = [want.name, ...app.container.dependencyNetworks];
    if (kept && (!sameSet(kept.networks, wantedNetworks) || wantedNetworks.some((n) => recreatedNetworks.has(n)))) {
      removeContainer(name, kept, 'network attachments changed');
      kept = undefined;
    }

    const start: Step = {
      kind: 'start-container',
      app: name,
      container: app.container.name,
      hostPorts: app.container.ports.map((port) => port.hostPort),
      ...(want.internal ? { internalNetwork: want.name } : {}),
    };
    if (app.run === 'running') {
      if (!kept) steps.push({ kind: 'create-container', app: name, container: app.container, configHash: app.configHash }, start);
      else if (!kept.running) steps.push(start);
    } else if (kept?.running) {
      steps.push({ kind: 'stop-container', app: name, containerId: kept.id });
    }
  }
  return steps;
}

/** The steps grouped by app, in plan order. */
export function groupByApp(steps: readonly Step[]): { app: string; steps: Step[] }[] {
  const groups: { app: string; steps: Step[] }[] = [];
  for (const step of steps) {
    const last = groups[groups.length - 1];
    if (last?.app === step.app) last.steps.push(step);
    else groups.push({ app: step.app, steps: [step] });
  }
  return groups;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item) => b.includes(item));
}
