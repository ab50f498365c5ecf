// The app spec (app.yaml) after parsing: every optional list, map and setting has its default, so
// the runtime never checks for undefined. Field names are the YAML keys, as in the reference
// Piccolo app spec (name, image, listeners[].guest_port, storage.persistent, ...), so one name
// means the same thing in app.yaml, in the JSON Schema and in code.

import type { Flow, MiddlewareName, MiddlewareParams, Protocol } from '../../../common/route-table.js';

export type AppType = 'user' | 'system';

/** tcp: the device terminates TLS and sees the traffic; tls: passthrough, the app terminates TLS. */
export type ListenerFlow = Flow;

export type ListenerProtocol = Protocol;

export type NetworkAccess = 'allow' | 'deny';

/**
 * A proxy middleware with its parameters. Names and parameters are the route table's
 * (services/common/route-table.ts): the daemon hands them to the proxy as they are written.
 */
export type Middleware = { [N in MiddlewareName]: { name: N; params: MiddlewareParams[N] } }[MiddlewareName];

export interface Listener {
  /** A DNS label: the listener is reached at <listener>-<app>.<device>.local. */
  name: string;
  /** The port the app listens on inside its container. */
  guest_port: number;
  flow: ListenerFlow;
  protocol: ListenerProtocol;
  /**
   * Not in the reference spec (which has per-path auth rules instead): a `type: user` HTTP or
   * WebSocket listener is behind the device's login unless it is public.
   */
  public: boolean;
  /** Applied in order by the proxy. */
  protocol_middleware: Middleware[];
  /** Ports on the remote relay where the listener is published. */
  remote_ports: number[];
  /** The service (container) the guest_port is on; default: the first service. */
  service: string;
  /** Where the device serves it (spec/public-port.ts), instead of a port it picks: 53 for DNS. Absent: picked. */
  public_port?: number;
}

export interface StorageVolume {
  /**
   * The short form's mount path in its one service ("app"). The runtime mounts volumes from
   * services[].mounts, which the short form fills from this; the full form leaves it out.
   */
  container?: string;
  size_limit?: string;
  size_limit_bytes?: number;
}

export interface Storage {
  /** Keyed by volume name: a folder in the app's encrypted volume, kept across restarts and updates. */
  persistent: Record<string, StorageVolume>;
  /** Keyed by volume name: a tmpfs, emptied when the app restarts. */
  temporary: Record<string, StorageVolume>;
}

export interface ResourceLimits {
  memory?: string;
  memory_bytes?: number;
  /** In cores: 0.5 is half a core. */
  cpu?: number;
  /** A quota for all of the app's storage. */
  storage?: string;
  storage_bytes?: number;
}

export interface HttpHealthCheck {
  path: string;
  /** The name of the listener the probe goes through (as in the reference spec), not a number. */
  port: string;
  timeout: string;
  timeout_ms: number;
  retries: number;
}

/** The app-level check: an HTTP probe through one of the app's listeners. */
export interface HealthCheck {
  http: HttpHealthCheck;
}

export type RestartPolicy = 'no' | 'always' | 'on-failure' | 'unless-stopped';

export type ServiceCondition = 'service_started' | 'service_healthy' | 'service_completed_successfully';

/** A container's own check, run by the engine (compose's healthcheck). */
export interface ServiceHealthCheck {
  /** ['CMD', 'curl', '-f', 'http://localhost'] or ['CMD-SHELL', 'curl -f http://localhost || exit 1']. */
  test: string[];
  interval_ms: number;
  timeout_ms: number;
  retries: number;
  start_period_ms: number;
}

export interface ServiceMount {
  /** A volume name in storage.persistent or storage.temporary. */
  volume?: string;
  /** A shared device folder (permissions.media), e.g. "Media". Exactly one of volume and media is set. */
  media?: string;
  /** A folder inside the volume or media folder (relative: "db", "Movies/4k"); absent: the whole of it. */
  subpath?: string;
  /** Absolute path inside the container. */
  container: string;
  read_only: boolean;
}

export interface ServiceSpec {
  /** A DNS label; the app's other containers reach it by this name on the app network. */
  name: string;
  image: string;
  command?: string[];
  entrypoint?: string[];
  user?: string;
  working_dir?: string;
  /** The service's own; the app-wide environment is merged under it. */
  environment: Record<string, string>;
  restart: RestartPolicy;
  stop_grace_period_ms?: number;
  cap_drop: string[];
  /** Beyond the engine's default set, these need permission capabilities. */
  cap_add: string[];
  read_only: boolean;
  tmpfs: { container: string; size_bytes?: number }[];
  shm_size_bytes?: number;
  healthcheck?: ServiceHealthCheck;
  /** Other services of this app it waits for, as written; AppSpec.services is already in start order. */
  depends_on: { service: string; condition: ServiceCondition }[];
  mounts: ServiceMount[];
  /** Host device paths (/dev/dri), each needs permission devices. */
  devices: string[];
  /** Needs permission privileged. */
  privileged: boolean;
  /** host needs permission host_network. */
  network_mode: 'app' | 'host';
  /** The Podman socket at /var/run/docker.sock; needs permission engine_socket. */
  engine_socket: boolean;
}

/**
 * What the app may do beyond the fortress's defaults. After normalization this is the union of
 * what app.yaml declares and what its services use, so it lists every grant the app needs
 * (neededPermissions in permissions.ts turns it into words).
 */
export interface Permissions {
  network: { internet: NetworkAccess };
  host_network: boolean;
  privileged: boolean;
  engine_socket: boolean;
  devices: string[];
  /** Capability names without CAP_, upper case (NET_ADMIN). */
  capabilities: string[];
  /** Shared device folders by name (Media, Downloads). */
  media: string[];
}

export interface AppSpec {
  name: string;
  type: AppType;
  /** Containers, in start order (dependencies first). The short form (top-level image) is one service named "app". */
  services: ServiceSpec[];
  listeners: Listener[];
  storage: Storage;
  /** App-wide, merged under each service's own. */
  environment: Record<string, string>;
  resources: { limits: ResourceLimits };
  healthcheck?: HealthCheck;
  /** Names of other apps this app needs running first. */
  depends_on: string[];
  permissions: Permissions;
}

/** Where a service with engine_socket sees the container engine's API (what Docker clients expect). */
export const ENGINE_SOCKET_PATH = '/var/run/docker.sock';

/** The service named by the short form, and the default service of listeners. */
export const SHORT_FORM_SERVICE = 'app';

/**
 * The app's main service: the one its first listener is on (the short form's only one). For code
 * that shows one image per app (lists, catalog); a multi-container app has more.
 */
export function mainService<S extends { services: readonly { name: string }[]; listeners: readonly { service: string }[] }>(spec: S): S['services'][number] {
  const main = spec.services.find((service) => service.name === spec.listeners[0]?.service) ?? spec.services[0];
  if (main === undefined) throw new Error('an app spec has at least one service');
  return main;
}

// What app.yaml holds once the JSON Schema has accepted it: optional fields may be missing, and
// values may take compose's several forms (environment as a list, durations as "10s", sizes as
// "64m", a command as one string). normalizeSpec turns it into the one shape above.

export interface ListenerInput {
  name: string;
  guest_port: number;
  flow?: ListenerFlow;
  protocol?: ListenerProtocol;
  public?: boolean;
  protocol_middleware?: { name: MiddlewareName; params?: Record<string, unknown> }[];
  remote_ports?: number[];
  service?: string;
  public_port?: number;
}

export interface StorageVolumeInput {
  container?: string;
  size_limit?: string;
}

export type EnvironmentInput = Record<string, string | number | boolean | null> | string[];

export interface ServiceHealthCheckInput {
  test?: string | string[];
  interval?: string;
  timeout?: string;
  retries?: number;
  start_period?: string;
  /** compose's way to turn off the image's own check. */
  disable?: boolean;
}

export type MountInput = string | { volume?: string; media?: string; subpath?: string; container: string; read_only?: boolean };

export type TmpfsInput = string | { container: string; size?: string | number };

/** Per-container fields; in the short form they sit at the top level next to image. */
export interface ServiceFieldsInput {
  image: string;
  command?: string | string[];
  entrypoint?: string | string[];
  user?: string | number;
  working_dir?: string;
  restart?: RestartPolicy;
  stop_grace_period?: string;
  cap_drop?: string[];
  cap_add?: string[];
  read_only?: boolean;
  tmpfs?: TmpfsInput | TmpfsInput[];
  shm_size?: string | number;
  devices?: string[];
  privileged?: boolean;
  /** bridge is compose's default and means the app's own network. */
  network_mode?: 'app' | 'bridge' | 'host';
  engine_socket?: boolean;
}

export interface ServiceInput extends ServiceFieldsInput {
  environment?: EnvironmentInput;
  healthcheck?: ServiceHealthCheckInput;
  depends_on?: string[] | Record<string, { condition?: ServiceCondition }>;
  mounts?: MountInput[];
}

export interface PermissionsInput {
  network?: { internet?: NetworkAccess };
  host_network?: boolean;
  privileged?: boolean;
  engine_socket?: boolean;
  devices?: string[];
  capabilities?: string[];
  media?: string[];
}

export interface AppSpecInput extends Partial<ServiceFieldsInput> {
  name: string;
  type?: AppType;
  /** The full form: containers by name. Without it, image (and the fields next to it) is the one service "app". */
  services?: Record<string, ServiceInput>;
  listeners: ListenerInput[];
  storage?: { persistent?: Record<string, StorageVolumeInput>; temporary?: Record<string, StorageVolumeInput> };
  environment?: EnvironmentInput;
  resources?: { limits?: { memory?: string; cpu?: number; storage?: string } };
  healthcheck?: { http: { path: string; port: string; timeout?: string; retries?: number } };
  depends_on?: string[];
  permissions?: PermissionsInput;
}
