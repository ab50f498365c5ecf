// What the API and the portal see of an app: its state over all of its containers, its
// listeners as services, its health. Pure: built from the record, the engine's state and what
// the manager knows about jobs and failures.
import type { DeepReadonly } from '../store/store.js';
import type { AppRecord, JobRecord } from '../control-document.js';
import { containerName, isShortForm, listenerService } from './container-spec.js';
import type { ContainerStatus, EngineState } from './engine.js';
import type { AppHealth, HealthVerdict } from './health-probe.js';
import { mainService, type AppSpec, type ListenerFlow, type ListenerProtocol } from './spec/types.js';
import { deriveState, type AppState, type StateInput } from './status.js';

export interface ServiceEntry {
  app: string;
  listener: string;
  guestPort: number;
  hostBindPort: number;
  publicPort: number;
  /** Reachable from the device itself. */
  localUrl: string;
  /** <listener>-<app>.<device name in use>.local, on the LAN over mDNS (added by the API, api/app-routes.ts). */
  hostname?: string;
  protocol: ListenerProtocol;
  flow: ListenerFlow;
}

export interface ContainerView {
  /** The service it runs. */
  service: string;
  /** The engine's name for it. */
  name: string;
  id?: string;
  /** The engine's state word (running, exited...), or missing. */
  state: string;
  /** The engine healthcheck's verdict, for a service that has one. */
  health?: string;
  image: string;
  /** The image as pinned when it was pulled: its ID, and its registry digest (repo@sha256:...) when it has one. */
  imageId?: string;
  digest?: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
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
  /** The main service's container (the one its first listener is on). */
  container?: { id: string; state: string; startedAt?: string; finishedAt?: string; exitCode?: number };
  /** Every service's container, in start order. */
  containers: ContainerView[];
  /** Permission ids granted at install or update. */
  granted: string[];
  services: ServiceEntry[];
}

export type AppEvent =
  | { type: 'app-state'; app: string; state: AppState; reason?: string }
  | { type: 'app-removed'; app: string }
  | { type: 'health'; app: string; health: AppHealth; reason?: string }
  | { type: 'job'; job: JobRecord };

/** What the manager knows about an app beyond its record and the engine. */
export type RuntimeFacts = Pick<StateInput, 'run' | 'activeJob' | 'failure' | 'backoff' | 'now'>;

/** Each service with its container as the engine reports it now. */
export function serviceContainers(name: string, spec: DeepReadonly<AppSpec>, engine: EngineState): { service: DeepReadonly<AppSpec>['services'][number]; container: ContainerStatus | undefined }[] {
  const short = isShortForm(spec as AppSpec);
  return spec.services.map((service) => {
    const engineName = containerName(name, service.name, short);
    return { service, container: engine.containers.find((c) => c.name === engineName && c.app === name && c.role === 'app') };
  });
}

export function appState(name: string, record: DeepReadonly<AppRecord>, engine: EngineState, facts: RuntimeFacts): { state: AppState; reason?: string } {
  const services = serviceContainers(name, record.spec, engine).map(({ service, container }) => ({ service: service.name, container, restart: service.restart }));
  return deriveState({ ...facts, services, shortForm: isShortForm(record.spec as AppSpec) });
}

export function appView(name: string, record: DeepReadonly<AppRecord>, engine: EngineState, facts: RuntimeFacts, verdict: HealthVerdict): AppView {
  const { state, reason } = appState(name, record, engine, facts);
  const containers = serviceContainers(name, record.spec, engine);
  const short = isShortForm(record.spec as AppSpec);
  const main = containers.find(({ service }) => service.name === mainService(record.spec).name)?.container;
  // A service its engine healthcheck finds unhealthy makes the app degraded, as its HTTP check would.
  const unhealthy = containers.filter(({ container }) => container?.running && container.health === 'unhealthy').map(({ service }) => service.name);
  const health = unhealthy.length ? { health: 'degraded' as const, reason: `service ${unhealthy.join(', ')} ${unhealthy.length > 1 ? 'are' : 'is'} unhealthy` } : verdict;
  return {
    name,
    state,
    ...(reason ? { reason } : {}),
    health: health.health,
    ...(health.reason ? { healthReason: health.reason } : {}),
    revision: record.revision,
    run: record.run,
    spec: record.spec,
    installedAt: record.installedAt,
    updatedAt: record.updatedAt,
    ...(main ? { container: { id: main.id, state: main.state, startedAt: main.startedAt, finishedAt: main.finishedAt, exitCode: main.exitCode } } : {}),
    containers: containers.map(({ service, container }) => ({
      service: service.name,
      name: containerName(name, service.name, short),
      state: container?.state ?? 'missing',
      image: service.image,
      ...(record.images?.[service.name] && { imageId: record.images[service.name]!.id }),
      ...(record.images?.[service.name]?.digest && { digest: record.images[service.name]!.digest }),
      ...(container && {
        id: container.id,
        ...(container.health && { health: container.health }),
        ...(container.startedAt && { startedAt: container.startedAt }),
        ...(container.finishedAt && { finishedAt: container.finishedAt }),
        ...(container.exitCode !== undefined && { exitCode: container.exitCode }),
      }),
    })),
    granted: [...(record.granted ?? [])],
    services: serviceEntries(name, record),
  };
}

/**
 * The app's listeners. A listener on a host-network service is where the app binds it on the
 * host itself (guest_port), not a published port.
 */
export function serviceEntries(name: string, record: DeepReadonly<AppRecord>): ServiceEntry[] {
  const { spec } = record;
  return spec.listeners.map((listener) => {
    const ports = record.ports[listener.name]!;
    const onHost = spec.services.find((service) => service.name === listenerService(spec as AppSpec, listener))?.network_mode === 'host';
    const hostBindPort = onHost ? listener.guest_port : ports.hostBind;
    const protocol = listener.protocol as string;
    const scheme = protocol === 'udp' ? 'udp' : protocol === 'websocket' ? 'ws' : protocol === 'http' ? 'http' : 'tcp';
    const secure = listener.flow === 'tls' && (scheme === 'ws' || scheme === 'http');
    return {
      app: name,
      listener: listener.name,
      guestPort: listener.guest_port,
      hostBindPort,
      publicPort: ports.public,
      localUrl: `${secure ? `${scheme}s` : scheme}://127.0.0.1:${hostBindPort}`,
      protocol: listener.protocol,
      flow: listener.flow,
    };
  });
}

/**
 * The last list of views, given again while everything it was made from is the same: the same
 * store data and engine state (by identity: each commit and each engine read makes new ones) and
 * the same facts (`key`). Under a load of reads most answers are then the same array, which the
 * API serializes once. Callers must not change what they get.
 */
export class ViewsMemo {
  private last: { inputs: readonly unknown[]; views: AppView[] } | undefined;

  get(inputs: readonly unknown[], build: () => AppView[]): AppView[] {
    const last = this.last;
    if (last && last.inputs.length === inputs.length && last.inputs.every((input, i) => input === inputs[i])) return last.views;
    const views = build();
    this.last = { inputs, views };
    return views;
  }
}

/** What of an app's facts and health verdict its view shows: the restart countdown in whole seconds, as deriveState words it. */
export function factsKey(name: string, facts: RuntimeFacts, verdict: HealthVerdict): string {
  const { backoff } = facts;
  const countdown = backoff ? `${backoff.attempts}:${Math.max(0, Math.ceil((backoff.nextAt - facts.now) / 1000))}` : '';
  return [name, facts.run, facts.activeJob ?? '', facts.failure ?? '', countdown, verdict.health, verdict.reason ?? ''].join('\u0000');
}
