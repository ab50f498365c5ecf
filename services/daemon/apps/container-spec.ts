// What the engine should run for an app, derived purely from the desired state: the app's
// network and its container, with a hash of everything that matters. The planner compares that
// hash with the label on the running container, so any change to the spec, the image, a port,
// a dependency or a volume path recreates the container and nothing else does.
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { AppRecord } from '../control-document.js';
import type { Listener } from './spec/types.js';

export const LABELS = {
  /** On everything the runtime makes; "true". */
  managed: 'piccolo.managed',
  app: 'piccolo.app',
  /** What the object is for the app; only "app" (its one container) and "network" so far. */
  role: 'piccolo.role',
  configHash: 'piccolo.config-hash',
} as const;

export type ObjectRole = 'app' | 'network';

/** The engine name of an app's container and of its network. */
export function engineName(app: string): string {
  return `piccolo-${app}`;
}

/** Everything the runtime needs about one desired app, with the asynchronous parts resolved. */
export interface DesiredApp {
  name: string;
  record: AppRecord;
  /** The image's ID in the engine, so a re-tagged image recreates the container. */
  imageId: string;
  /** Host folder of the app's volume; set when the spec has persistent storage. */
  volumeDir?: string;
}

export interface NetworkSpec {
  name: string;
  app: string;
  subnet: string;
  gateway: string;
  /** No route out: for `internet: deny`. */
  internal: boolean;
}

export interface ContainerSpec {
  name: string;
  app: string;
  image: string;
  imageId: string;
  env: Record<string, string>;
  /** Host folder → absolute container path. */
  binds: { host: string; container: string }[];
  tmpfs: { container: string; sizeBytes?: number }[];
  ports: { guestPort: number; hostPort: number }[];
  memoryBytes?: number;
  nanoCpus?: number;
  /** The app's own network and its fixed address there. */
  network: { name: string; ip: string };
  /** Networks of the apps this one depends on, so it (and only it) can reach them. */
  dependencyNetworks: string[];
}

export interface RenderedApp {
  network: NetworkSpec;
  container: ContainerSpec;
  configHash: string;
}

/** Inside an app's subnet: .1 is the gateway, .2 the app's container, the rest for dependents. */
export function subnetAddresses(subnet: string): { gateway: string; app: string } {
  const [base] = subnet.split('/');
  const octets = base!.split('.').map(Number);
  const at = (last: number) => [...octets.slice(0, 3), last].join('.');
  return { gateway: at(octets[3]! + 1), app: at(octets[3]! + 2) };
}

/**
 * Renders one app. `apps` holds every desired app by name, for its dependencies' networks and
 * listeners; a dependency missing from it is a bug in the caller (validated at install).
 */
export function renderApp(app: DesiredApp, apps: ReadonlyMap<string, DesiredApp>): RenderedApp {
  const { spec, ports, subnet } = app.record;
  const name = engineName(app.name);
  const addresses = subnetAddresses(subnet);
  const dependencies = spec.depends_on.map((dep) => {
    const found = apps.get(dep);
    if (!found) throw new Error(`app ${app.name} depends on ${dep}, which is not installed`);
    return found;
  });

  const env: Record<string, string> = { ...spec.environment };
  for (const listener of spec.listeners) env[serviceUrlVariable(listener.name)] = serviceUrl(listener, '127.0.0.1');
  for (const dep of dependencies) {
    const host = subnetAddresses(dep.record.subnet).app;
    for (const listener of dep.record.spec.listeners) env[serviceUrlVariable(listener.name, dep.name)] = serviceUrl(listener, host);
  }

  const container: ContainerSpec = {
    name,
    app: app.name,
    image: spec.image,
    imageId: app.imageId,
    env,
    binds: Object.entries(spec.storage.persistent).map(([volume, { container: target }]) => {
      if (!app.volumeDir) throw new Error(`app ${app.name} has persistent storage but no volume folder`);
      return { host: `${app.volumeDir}/${volume}`, container: target };
    }),
    tmpfs: Object.values(spec.storage.temporary).map((volume) => ({ container: volume.container, sizeBytes: volume.size_limit_bytes })),
    ports: spec.listeners.map((listener) => ({ guestPort: listener.guest_port, hostPort: ports[listener.name]!.hostBind })),
    memoryBytes: spec.resources.limits.memory_bytes,
    nanoCpus: spec.resources.limits.cpu === undefined ? undefined : Math.round(spec.resources.limits.cpu * 1e9),
    network: { name, ip: addresses.app },
    dependencyNetworks: dependencies.map((dep) => engineName(dep.name)).sort(),
  };
  const network: NetworkSpec = { name, app: app.name, subnet, gateway: addresses.gateway, internal: spec.permissions.network.internet === 'deny' };
  return { network, container, configHash: hashOf({ container, network }) };
}

/**
 * PICCOLO_SERVICE_URL_<LISTENER> for the app's own listeners; PICCOLO_SERVICE_URL_<APP>_<LISTENER>
 * for a dependency's, since two apps may well both have a listener called "web".
 */
export function serviceUrlVariable(listener: string, app?: string): string {
  const key = (app ? `${app}_${listener}` : listener).toUpperCase().replace(/-/g, '_');
  return `PICCOLO_SERVICE_URL_${key}`;
}

function serviceUrl(listener: Listener, host: string): string {
  const tls = listener.flow === 'tls';
  const scheme = listener.protocol === 'raw' ? (tls ? 'tls' : 'tcp') : listener.protocol === 'websocket' ? (tls ? 'wss' : 'ws') : tls ? 'https' : 'http';
  return `${scheme}://${host}:${listener.guest_port}`;
}

function hashOf(value: unknown): string {
  return createHash('sha256').update(canonicalize(value)!).digest('hex').slice(0, 16);
}
