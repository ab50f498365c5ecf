// The planner: compares what should run (the desired apps, each a network and its services'
// containers) with what the engine reports (read back by labels) and lists the steps that turn
// one into the other. Pure: no engine, no clock, so every decision can be tested from tables.
// Steps come grouped by app, strays first, then the desired apps in depends_on order; inside an
// app, containers start in service order, each after a wait for the services it depends on to
// be healthy or completed when it asks for that, and stop in the reverse order.
import type { DesiredRunState } from '../control-document.js';
import type { ContainerSpec, NetworkSpec, RenderedContainer } from './container-spec.js';
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
  /** The engine's state word (created, running, exited...), when known. */
  state?: string;
  /** Set once it has exited. */
  exitCode?: number;
  /** Its own stop grace (the piccolo.stop-grace-s label), when its service set one. */
  stopTimeoutS?: number;
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
  /** In start order. */
  containers: readonly RenderedContainer[];
  /** Containers left as they are when they have exited (the supervisor: their restart policy says no). */
  hold?: ReadonlySet<string>;
}

export type WaitCondition = 'service_healthy' | 'service_completed_successfully';

export type Step =
  | { kind: 'remove-container'; app: string; containerId: string; container: string; reason: string; stopTimeoutS?: number }
  /** An update's replaced container, stopped and renamed (name.previous) until the new one has proved itself. */
  | { kind: 'retire-container'; app: string; containerId: string; container: string; stopTimeoutS?: number }
  | { kind: 'remove-network'; app: string; network: string; reason: string }
  | { kind: 'create-network'; app: string; network: NetworkSpec }
  | { kind: 'create-container'; app: string; container: ContainerSpec; configHash: string }
  | { kind: 'wait-container'; app: string; container: string; service: string; condition: WaitCondition; timeoutMs: number }
  | { kind: 'start-container'; app: string; container: string; hostPorts: number[]; internalNetwork?: string; address?: string }
  | { kind: 'stop-container'; app: string; containerId: string; stopTimeoutS?: number };

/** Engine states of a container that was made but never started. */
const NEVER_STARTED = new Set(['created', 'configured']);
/** How long a wait for a one-shot service (service_completed_successfully) may take. */
export const COMPLETION_TIMEOUT_MS = 300_000;
/** Added to a healthcheck's own worst case, for the engine's slowness. */
const WAIT_MARGIN_MS = 10_000;

/** Throws DependencyCycleError when depends_on loops. */
export function plan(current: CurrentState, desired: readonly DesiredAppState[]): Step[] {
  const steps: Step[] = [];
  const byName = new Map(desired.map((app) => [app.name, app]));
  const removed = new Set<string>(); // container ids removed by an earlier step of this plan
  const recreatedNetworks = new Set<string>();

  const removeContainer = (app: string, container: CurrentContainer, reason: string) => {
    if (removed.has(container.id)) return;
    removed.add(container.id);
    steps.push({ kind: 'remove-container', app, containerId: container.id, container: container.name, reason, ...grace(container) });
  };
  /** A network can only go once nothing is attached to it, whichever app the container is of. */
  const removeNetwork = (app: string, network: string, reason: string) => {
    for (const container of current.containers) {
      if (container.networks.includes(network)) removeContainer(app, container, `attached to network ${network}, which is removed`);
    }
    steps.push({ kind: 'remove-network', app, network, reason });
  };

  // Strays first: whatever carries our labels but is none of an app's containers and network.
  const strayApps = new Set<string>();
  for (const container of current.containers) {
    const owner = byName.get(container.app);
    if (!owner) strayApps.add(container.app);
    else if (container.role !== 'app' || !owner.containers.some((c) => c.container.name === container.name)) removeContainer(container.app, container, 'not a container of the app');
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

    const stops: Step[] = [];
    for (const rendered of app.containers) {
      const kept = keptContainer(current, app, rendered, removed, recreatedNetworks, removeContainer);
      const spec = rendered.container;
      if (app.run === 'running') {
        const start: Step = {
          kind: 'start-container',
          app: name,
          container: spec.name,
          hostPorts: spec.ports.map((port) => port.hostPort),
          ...(want.internal && spec.network ? { internalNetwork: want.name } : {}),
          ...(spec.network ? { address: spec.network.ip } : {}),
        };
        if (!kept) steps.push({ kind: 'create-container', app: name, container: spec, configHash: rendered.configHash }, ...waitsBefore(name, app, rendered), start);
        else if (!kept.running && shouldStart(kept, rendered, app.hold)) steps.push(...waitsBefore(name, app, rendered), start);
      } else if (kept?.running) {
        stops.unshift({ kind: 'stop-container', app: name, containerId: kept.id, ...grace(kept) });
      }
    }
    steps.push(...stops);
  }
  return steps;
}

/** The one container kept for a service (current config, running), removing outdated ones and duplicates. */
function keptContainer(
  current: CurrentState,
  app: DesiredAppState,
  rendered: RenderedContainer,
  removed: ReadonlySet<string>,
  recreatedNetworks: ReadonlySet<string>,
  removeContainer: (app: string, container: CurrentContainer, reason: string) => void,
): CurrentContainer | undefined {
  const spec = rendered.container;
  const candidates = current.containers.filter((c) => c.app === app.name && c.name === spec.name && c.role === 'app' && !removed.has(c.id));
  const rank = (c: CurrentContainer) => (c.configHash === rendered.configHash ? 2 : 0) + (c.running ? 1 : 0);
  let kept: CurrentContainer | undefined = [...candidates].sort((a, b) => rank(b) - rank(a))[0];
  for (const container of candidates) if (container !== kept) removeContainer(app.name, container, 'duplicate container');
  if (kept && kept.configHash !== rendered.configHash) {
    removeContainer(app.name, kept, 'configuration changed');
    kept = undefined;
  }
  // With the host network the engine reports no network of ours; nothing to compare.
  const wantedNetworks = spec.network ? [spec.network.name, ...spec.dependencyNetworks] : [];
  if (kept && spec.network && (!sameSet(kept.networks, wantedNetworks) || wantedNetworks.some((n) => recreatedNetworks.has(n)))) {
    removeContainer(app.name, kept, 'network attachments changed');
    kept = undefined;
  }
  return kept;
}

/**
 * A stopped container starts again unless it is a one-shot that completed (exited 0 under
 * restart no or on-failure), or the supervisor holds it (its policy forbids an automatic restart).
 */
function shouldStart(container: CurrentContainer, rendered: RenderedContainer, hold: ReadonlySet<string> | undefined): boolean {
  if (container.state !== undefined && NEVER_STARTED.has(container.state)) return true;
  if (completed(container, rendered)) return false;
  return !hold?.has(rendered.container.name);
}

export function completed(container: Pick<CurrentContainer, 'running' | 'state' | 'exitCode'>, rendered: Pick<RenderedContainer, 'restart'>): boolean {
  const exited = !container.running && container.state !== undefined && !NEVER_STARTED.has(container.state);
  return exited && container.exitCode === 0 && (rendered.restart === 'no' || rendered.restart === 'on-failure');
}

/** Waits for the services this one depends on to be healthy or completed, as it asks. */
function waitsBefore(app: string, desired: DesiredAppState, rendered: RenderedContainer): Step[] {
  return rendered.dependsOn.flatMap((dep): Step[] => {
    if (dep.condition === 'service_started') return [];
    const target = desired.containers.find((c) => c.container.name === dep.container);
    if (!target) return [];
    const check = target.container.healthcheck;
    const timeoutMs =
      dep.condition === 'service_completed_successfully' || !check
        ? COMPLETION_TIMEOUT_MS
        : Math.round((check.startPeriodNs + (check.intervalNs + check.timeoutNs) * (check.retries + 1)) / 1e6) + WAIT_MARGIN_MS;
    return [{ kind: 'wait-container', app, container: dep.container, service: dep.service, condition: dep.condition, timeoutMs }];
  });
}

function grace(container: CurrentContainer): { stopTimeoutS?: number } {
  return container.stopTimeoutS === undefined ? {} : { stopTimeoutS: container.stopTimeoutS };
}

/** Where an update keeps a replaced container: service names are DNS labels, so no service is called this. */
export function retiredName(container: string): string {
  return `${container}.previous`;
}

export function isRetired(container: string): boolean {
  return container.endsWith('.previous');
}

/** The reasons for which an update's old container is kept aside rather than removed. */
const REPLACED = new Set(['configuration changed', 'network attachments changed']);

/**
 * For an atomic update of `app`: its containers replaced by new ones are retired (stopped and
 * renamed), so a failed update can bring them back as they were. The rest is unchanged.
 */
export function retireReplaced(steps: readonly Step[], app: string): Step[] {
  return steps.map((step) =>
    step.kind === 'remove-container' && step.app === app && REPLACED.has(step.reason)
      ? { kind: 'retire-container', app, containerId: step.containerId, container: step.container, ...(step.stopTimeoutS === undefined ? {} : { stopTimeoutS: step.stopTimeoutS }) }
      : step,
  );
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
