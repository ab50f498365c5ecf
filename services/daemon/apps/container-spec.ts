// What the engine should run for an app, derived purely from the desired state: the app's
// network and one container per service, each with a hash of everything that matters. The
// planner compares that hash with the label on the running container, so any change to the
// spec, an image, a port, a dependency or a volume path recreates that container and nothing
// else does. Permissions are checked here too: a service that needs what the app was not
// granted is refused by name, never run with the option silently dropped.
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { AppRecord } from '../control-document.js';
import { PermissionNotGrantedError } from './errors.js';
import { SHORT_FORM_SERVICE, type AppSpec, type Listener, type RestartPolicy, type ServiceCondition, type ServiceSpec } from './spec/types.js';

export const LABELS = {
  /** On everything the runtime makes; "true". */
  managed: 'piccolo.managed',
  app: 'piccolo.app',
  /** What the object is for the app: "app" (any of its containers) or "network". */
  role: 'piccolo.role',
  /** The service a container runs; absent on containers made before services existed ("app"). */
  service: 'piccolo.service',
  configHash: 'piccolo.config-hash',
  /** The container's stop grace in seconds, when its service sets one. */
  stopGrace: 'piccolo.stop-grace-s',
} as const;

export type ObjectRole = 'app' | 'network';

/** The engine name of an app's network, and of the short form's one container. */
export function engineName(app: string): string {
  return `piccolo-${app}`;
}

/**
 * The container of one service. The short form's "app" keeps the name containers had before
 * apps had services, so a device that updates is not made to recreate its apps.
 */
export function containerName(app: string, service: string, shortForm: boolean): string {
  return shortForm ? engineName(app) : `piccolo-${app}-${service}`;
}

/** One service named "app": the single-container short form. */
export function isShortForm(spec: Pick<AppSpec, 'services'>): boolean {
  return spec.services.length === 1 && spec.services[0]!.name === SHORT_FORM_SERVICE;
}

/** Every container name of an app, in start order. */
export function containerNames(spec: Pick<AppSpec, 'name' | 'services'>): string[] {
  const short = isShortForm(spec);
  return spec.services.map((service) => containerName(spec.name, service.name, short));
}

/** Everything the runtime needs about one desired app, with the asynchronous parts resolved. */
export interface DesiredApp {
  name: string;
  record: AppRecord;
  /** Each service's image ID in the engine (pinned once pulled), so a re-tagged image recreates nothing. */
  imageIds: Record<string, string>;
  /** Host folder of the app's volume; set when the spec has persistent storage. */
  volumeDir?: string;
  /** Host folders of the shared media folders the app mounts, by name. */
  mediaDirs?: Record<string, string>;
  /** The engine's API socket on the host, for a service with engine_socket. */
  engineSocket?: string;
}

export interface NetworkSpec {
  name: string;
  app: string;
  subnet: string;
  gateway: string;
  /** No route out: for `internet: deny`. */
  internal: boolean;
}

export interface EngineHealthcheck {
  test: string[];
  intervalNs: number;
  timeoutNs: number;
  retries: number;
  startPeriodNs: number;
}

export interface ContainerSpec {
  name: string;
  app: string;
  service: string;
  image: string;
  imageId: string;
  env: Record<string, string>;
  /** Host folder → absolute container path. */
  binds: { host: string; container: string; readOnly?: boolean }[];
  tmpfs: { container: string; sizeBytes?: number }[];
  /** protocol is set only for udp (absent means tcp), so adding it changed no TCP container's hash. */
  ports: { guestPort: number; hostPort: number; protocol?: 'udp' }[];
  memoryBytes?: number;
  nanoCpus?: number;
  /** The app's own network, the service's fixed address there and its name on it; absent with the host network. */
  network?: { name: string; ip: string; aliases: string[] };
  /** Networks of the apps this one depends on, so it (and only it) can reach them. */
  dependencyNetworks: string[];
  command?: string[];
  entrypoint?: string[];
  user?: string;
  workingDir?: string;
  stopTimeoutS?: number;
  capDrop: string[];
  capAdd: string[];
  readOnly: boolean;
  shmSizeBytes?: number;
  healthcheck?: EngineHealthcheck;
  /** The other services by name → address, as /etc/hosts entries ("db:10.201.3.254"). */
  extraHosts: string[];
  devices: string[];
  privileged: boolean;
  hostNetwork: boolean;
}

/** A container with what the planner and the executor need about its service. */
export interface RenderedContainer {
  container: ContainerSpec;
  configHash: string;
  restart: RestartPolicy;
  /** Services of the same app this one waits for before it starts. */
  dependsOn: { service: string; container: string; condition: ServiceCondition }[];
}

export interface RenderedApp {
  network: NetworkSpec;
  /** In start order (the spec's order: dependencies first). */
  containers: RenderedContainer[];
}

/** Inside an app's subnet: .1 is the gateway, .2 the app's (first) container, the rest for dependents. */
export function subnetAddresses(subnet: string): { gateway: string; app: string } {
  const addresses = serviceAddresses(subnet, 1);
  return { gateway: addresses.gateway, app: addresses.services[0]! };
}

/**
 * The first service keeps .2 (the address single-container apps always had, given to dependents
 * in their URLs); the others count down from .254, so they never meet the dynamic addresses
 * the engine gives dependents' containers attached to this network (which count up from .3).
 */
export function serviceAddresses(subnet: string, count: number): { gateway: string; services: string[] } {
  const [base] = subnet.split('/');
  const octets = base!.split('.').map(Number);
  const at = (last: number) => [...octets.slice(0, 3), last].join('.');
  const services = Array.from({ length: count }, (_, index) => at(index === 0 ? octets[3]! + 2 : 255 - index));
  return { gateway: at(octets[3]! + 1), services };
}

/**
 * Renders one app. `apps` holds every desired app by name, for its dependencies' networks and
 * listeners; a dependency missing from it is a bug in the caller (validated at install).
 */
export function renderApp(app: DesiredApp, apps: ReadonlyMap<string, DesiredApp>): RenderedApp {
  const { spec, subnet } = app.record;
  const network: NetworkSpec = { name: engineName(app.name), app: app.name, subnet, gateway: serviceAddresses(subnet, 1).gateway, internal: spec.permissions.network.internet === 'deny' };
  const dependencies = spec.depends_on.map((dep) => {
    const found = apps.get(dep);
    if (!found) throw new Error(`app ${app.name} depends on ${dep}, which is not installed`);
    return found;
  });
  const short = isShortForm(spec);
  const addresses = addressesOf(spec, subnet);

  const dependencyEnv: Record<string, string> = {};
  for (const dep of dependencies) {
    const depAddresses = addressesOf(dep.record.spec, dep.record.subnet);
    for (const listener of dep.record.spec.listeners) {
      dependencyEnv[serviceUrlVariable(listener.name, dep.name)] = serviceUrl(listener, depAddresses.get(listenerService(dep.record.spec, listener)) ?? '127.0.0.1');
    }
  }

  const containers = spec.services.map((service): RenderedContainer => {
    checkGranted(app, service);
    const name = containerName(app.name, service.name, short);
    const env: Record<string, string> = { ...spec.environment, ...service.environment };
    for (const listener of spec.listeners) {
      const on = listenerService(spec, listener);
      // Its own listeners on loopback; a sibling's by the sibling's name (an /etc/hosts entry).
      env[serviceUrlVariable(listener.name)] = serviceUrl(listener, on === service.name || service.network_mode === 'host' ? '127.0.0.1' : on);
    }
    Object.assign(env, dependencyEnv);
    const imageId = app.imageIds[service.name];
    if (!imageId) throw new Error(`app ${app.name}: no image resolved for service ${service.name}`);
    const hostNetwork = service.network_mode === 'host';

    const container: ContainerSpec = {
      name,
      app: app.name,
      service: service.name,
      image: service.image,
      imageId,
      env,
      binds: bindsOf(app, service),
      tmpfs: tmpfsOf(spec, service),
      ports: hostNetwork ? [] : spec.listeners.filter((l) => listenerService(spec, l) === service.name).map((l) => ({ guestPort: l.guest_port, hostPort: app.record.ports[l.name]!.hostBind, ...(l.protocol === 'udp' ? { protocol: 'udp' as const } : {}) })),
      memoryBytes: spec.resources.limits.memory_bytes,
      nanoCpus: spec.resources.limits.cpu === undefined ? undefined : Math.round(spec.resources.limits.cpu * 1e9),
      ...(hostNetwork ? {} : { network: { name: network.name, ip: addresses.get(service.name)!, aliases: [service.name] } }),
      dependencyNetworks: hostNetwork ? [] : dependencies.map((dep) => engineName(dep.name)).sort(),
      ...(service.command && { command: service.command }),
      ...(service.entrypoint && { entrypoint: service.entrypoint }),
      ...(service.user !== undefined && { user: service.user }),
      ...(service.working_dir !== undefined && { workingDir: service.working_dir }),
      ...(service.stop_grace_period_ms !== undefined && { stopTimeoutS: Math.ceil(service.stop_grace_period_ms / 1000) }),
      capDrop: service.cap_drop,
      capAdd: service.cap_add,
      readOnly: service.read_only,
      ...(service.shm_size_bytes !== undefined && { shmSizeBytes: service.shm_size_bytes }),
      ...(service.healthcheck && {
        healthcheck: {
          test: service.healthcheck.test,
          intervalNs: service.healthcheck.interval_ms * 1e6,
          timeoutNs: service.healthcheck.timeout_ms * 1e6,
          retries: service.healthcheck.retries,
          startPeriodNs: service.healthcheck.start_period_ms * 1e6,
        },
      }),
      extraHosts: hostNetwork ? [] : spec.services.filter((other) => other !== service && other.network_mode !== 'host').map((other) => `${other.name}:${addresses.get(other.name)}`),
      devices: service.devices,
      privileged: service.privileged,
      hostNetwork,
    };
    return {
      container,
      configHash: hashOf(hashedView(container, network, short)),
      restart: service.restart,
      dependsOn: service.depends_on.map((dep) => ({ ...dep, container: containerName(app.name, dep.service, short) })),
    };
  });
  return { network, containers };
}

/** The service a listener's guest_port is on. */
export function listenerService(spec: Pick<AppSpec, 'services'>, listener: Pick<Listener, 'service'>): string {
  return listener.service ?? spec.services[0]!.name;
}

/**
 * What the hash covers. A short-form container using none of the fields services brought
 * hashes exactly as before they existed, so updating the daemon recreates no running app.
 */
function hashedView(container: ContainerSpec, network: NetworkSpec, short: boolean): unknown {
  const { service, network: attachment, command, entrypoint, user, workingDir, stopTimeoutS, capDrop, capAdd, readOnly, shmSizeBytes, healthcheck, extraHosts, devices, privileged, hostNetwork, ...legacy } =
    container;
  const extras = { command, entrypoint, user, workingDir, stopTimeoutS, shmSizeBytes, healthcheck };
  const plain =
    short &&
    Object.values(extras).every((value) => value === undefined) &&
    !capDrop.length &&
    !capAdd.length &&
    !readOnly &&
    !extraHosts.length &&
    !devices.length &&
    !privileged &&
    !hostNetwork &&
    container.binds.every((bind) => !bind.readOnly);
  if (plain) return { container: { ...legacy, network: { name: attachment!.name, ip: attachment!.ip } }, network };
  return { container, network };
}

function addressesOf(spec: Pick<AppSpec, 'services'>, subnet: string): Map<string, string> {
  const { services } = serviceAddresses(subnet, spec.services.length);
  return new Map(spec.services.map((service, index) => [service.name, services[index]!]));
}

/** A service needing what the app was not granted is refused here, by name, whatever the caller checked. */
function checkGranted(app: DesiredApp, service: ServiceSpec): void {
  const granted = new Set(app.record.granted ?? []);
  const needs: [boolean, string, string][] = [
    [service.network_mode === 'host', 'host_network', 'the host network'],
    [service.privileged, 'privileged', 'privileged mode'],
    [service.engine_socket, 'engine_socket', 'the container engine socket'],
    [service.devices.length > 0, 'devices', `devices ${service.devices.join(', ')}`],
    [service.cap_add.length > 0, 'capabilities', `capabilities ${service.cap_add.join(', ')}`],
    [service.mounts.some((m) => m.media !== undefined), 'media', 'a shared media folder'],
  ];
  for (const [needed, id, what] of needs) {
    if (needed && !granted.has(id)) throw new PermissionNotGrantedError(app.name, service.name, id, what);
  }
}

/** Persistent volumes as folders of the app's volume, media as the shared folders, the engine socket. */
function bindsOf(app: DesiredApp, service: ServiceSpec): ContainerSpec['binds'] {
  const { spec } = app.record;
  const binds: ContainerSpec['binds'] = [];
  for (const mount of service.mounts) {
    const readOnly = mount.read_only ? { readOnly: true } : {};
    // A folder inside the volume or media folder (compose's ${APP_DATA_DIR}/db), made by the manager.
    const subpath = (mount as { subpath?: string }).subpath;
    const inside = subpath && subpath !== '.' ? `/${subpath}` : '';
    if (mount.media !== undefined) {
      const host = app.mediaDirs?.[mount.media];
      if (!host) throw new Error(`app ${app.name}: no folder for media ${mount.media}`);
      binds.push({ host: `${host}${inside}`, container: mount.container, ...readOnly });
    } else if (mount.volume !== undefined && spec.storage.persistent[mount.volume]) {
      if (!app.volumeDir) throw new Error(`app ${app.name} has persistent storage but no volume folder`);
      binds.push({ host: `${app.volumeDir}/${mount.volume}${inside}`, container: mount.container, ...readOnly });
    }
  }
  if (service.engine_socket) {
    if (!app.engineSocket) throw new Error(`app ${app.name}: the engine socket's path is not known`);
    binds.push({ host: app.engineSocket, container: '/var/run/docker.sock' });
  }
  return binds;
}

/** Temporary volumes mounted by the service, then its own tmpfs entries. */
function tmpfsOf(spec: AppSpec, service: ServiceSpec): ContainerSpec['tmpfs'] {
  const fromVolumes = service.mounts.flatMap(({ volume, container }) =>
    volume !== undefined && spec.storage.temporary[volume] ? [{ container, sizeBytes: spec.storage.temporary[volume]!.size_limit_bytes }] : [],
  );
  return [...fromVolumes, ...service.tmpfs.map((entry) => ({ container: entry.container, sizeBytes: entry.size_bytes }))];
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
  if (listener.protocol === 'udp') return `udp://${host}:${listener.guest_port}`;
  const scheme = listener.protocol === 'raw' ? (tls ? 'tls' : 'tcp') : listener.protocol === 'websocket' ? (tls ? 'wss' : 'ws') : tls ? 'https' : 'http';
  return `${scheme}://${host}:${listener.guest_port}`;
}

function hashOf(value: unknown): string {
  return createHash('sha256').update(canonicalize(value)!).digest('hex').slice(0, 16);
}
