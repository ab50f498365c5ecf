// Fills in every default of an app spec that passed validation, so the runtime reads one complete
// shape. Defaults follow the reference Piccolo spec: type user, flow tcp, protocol raw, remote
// ports 80 and 443; and Piccolo's security defaults: listeners behind the login, no internet, no
// permission beyond what the services use. The short form (top-level image) becomes one service
// named "app" with the storage volumes mounted at their container paths.
import { capabilityName, commandLine, DEFAULT_CAPABILITIES, devicePath, durationMs, environmentMap, mapAt, mount, serviceHealthCheck, sizeBytes, tmpfsEntry, within } from './service-fields.js';
import {
  SHORT_FORM_SERVICE,
  type AppSpec,
  type AppSpecInput,
  type HealthCheck,
  type Listener,
  type ListenerInput,
  type Middleware,
  type Permissions,
  type ServiceInput,
  type ServiceMount,
  type ServiceSpec,
  type StorageVolume,
  type StorageVolumeInput,
  type TmpfsInput,
} from './types.js';
import { parseDuration, parseSize } from './units.js';

const DEFAULT_REMOTE_PORTS: readonly number[] = [80, 443];
const DEFAULT_HEALTHCHECK_TIMEOUT = '30s';
const DEFAULT_HEALTHCHECK_RETRIES = 3;

/** The per-container keys the short form takes at the top level. */
export const SHORT_FORM_SERVICE_KEYS = [
  'image', 'command', 'entrypoint', 'user', 'working_dir', 'restart', 'stop_grace_period', 'cap_drop', 'cap_add',
  'read_only', 'tmpfs', 'shm_size', 'devices', 'privileged', 'network_mode', 'engine_socket',
] as const;

/** The services as written, by name, in the order written: the short form's one "app" included. */
export function servicesAsWritten(input: AppSpecInput): [string, ServiceInput][] {
  if (input.services) return Object.entries(input.services);
  const service: Record<string, unknown> = {};
  for (const key of SHORT_FORM_SERVICE_KEYS) if (input[key] !== undefined) service[key] = input[key];
  // The short form mounts each volume where its container path says.
  const mounts = (['persistent', 'temporary'] as const).flatMap((kind) =>
    Object.entries(input.storage?.[kind] ?? {}).flatMap(([volume, { container }]) => (container === undefined ? [] : [{ volume, container }])),
  );
  return [[SHORT_FORM_SERVICE, { ...(service as unknown as ServiceInput), mounts }]];
}

export function normalizeSpec(input: AppSpecInput): AppSpec {
  const limits = input.resources?.limits ?? {};
  const written = servicesAsWritten(input);
  const services = startOrder(written.map(([name, service]) => normalizeService(name, service)));
  const spec: AppSpec = {
    name: input.name,
    type: input.type ?? 'user',
    services,
    listeners: input.listeners.map((listener) => normalizeListener(listener, written[0]![0])),
    storage: {
      persistent: normalizeVolumes(input.storage?.persistent),
      temporary: normalizeVolumes(input.storage?.temporary),
    },
    environment: environmentMap(input.environment),
    resources: {
      limits: {
        ...(limits.memory !== undefined && { memory: limits.memory, memory_bytes: parseSize(limits.memory)! }),
        ...(limits.cpu !== undefined && { cpu: limits.cpu }),
        ...(limits.storage !== undefined && { storage: limits.storage, storage_bytes: parseSize(limits.storage)! }),
      },
    },
    depends_on: input.depends_on ?? [],
    permissions: normalizePermissions(input, services),
  };
  if (input.healthcheck) spec.healthcheck = normalizeHealthCheck(input.healthcheck);
  return spec;
}

export function normalizeService(name: string, input: ServiceInput): ServiceSpec {
  const service: ServiceSpec = {
    name,
    image: input.image,
    environment: within('.environment', () => environmentMap(input.environment)),
    restart: input.restart ?? 'unless-stopped',
    cap_drop: uniqueSorted(mapAt('.cap_drop', input.cap_drop ?? [], capabilityName)),
    cap_add: uniqueSorted(mapAt('.cap_add', input.cap_add ?? [], capabilityName)),
    read_only: input.read_only ?? false,
    tmpfs: Array.isArray(input.tmpfs) ? mapAt('.tmpfs', input.tmpfs, tmpfsEntry) : input.tmpfs === undefined ? [] : [within('.tmpfs', () => tmpfsEntry(input.tmpfs as TmpfsInput))],
    depends_on: dependsOn(input.depends_on),
    mounts: mapAt('.mounts', input.mounts ?? [], mount),
    devices: uniqueSorted(mapAt('.devices', input.devices ?? [], devicePath)),
    privileged: input.privileged ?? false,
    network_mode: input.network_mode === 'host' ? 'host' : 'app',
    engine_socket: input.engine_socket ?? false,
  };
  if (input.command !== undefined) service.command = within('.command', () => commandLine(input.command!));
  if (input.entrypoint !== undefined) service.entrypoint = within('.entrypoint', () => commandLine(input.entrypoint!));
  if (input.user !== undefined) service.user = String(input.user);
  if (input.working_dir !== undefined) service.working_dir = input.working_dir;
  if (input.stop_grace_period !== undefined) service.stop_grace_period_ms = within('.stop_grace_period', () => durationMs(input.stop_grace_period!));
  if (input.shm_size !== undefined) service.shm_size_bytes = within('.shm_size', () => sizeBytes(input.shm_size!));
  if (input.healthcheck !== undefined) service.healthcheck = within('.healthcheck', () => serviceHealthCheck(input.healthcheck!));
  return service;
}

function dependsOn(input: ServiceInput['depends_on']): ServiceSpec['depends_on'] {
  if (input === undefined) return [];
  if (Array.isArray(input)) return input.map((service) => ({ service, condition: 'service_started' }));
  return Object.entries(input).map(([service, { condition }]) => ({ service, condition: condition ?? 'service_started' }));
}

/**
 * Dependencies first, otherwise as written. The validator has refused cycles and unknown names;
 * should one slip through, the remaining services keep their written order rather than vanish.
 */
export function startOrder(services: ServiceSpec[]): ServiceSpec[] {
  const byName = new Map(services.map((service) => [service.name, service]));
  const placed = new Set<string>();
  const visiting = new Set<string>();
  const ordered: ServiceSpec[] = [];
  const visit = (service: ServiceSpec) => {
    if (placed.has(service.name) || visiting.has(service.name)) return;
    visiting.add(service.name);
    for (const { service: dependency } of service.depends_on) {
      const found = byName.get(dependency);
      if (found) visit(found);
    }
    visiting.delete(service.name);
    placed.add(service.name);
    ordered.push(service);
  };
  services.forEach(visit);
  return ordered;
}

/** What app.yaml declares, plus what its services use: one list of every grant the app needs. */
function normalizePermissions(input: AppSpecInput, services: ServiceSpec[]): Permissions {
  const declared = input.permissions ?? {};
  return {
    network: { internet: declared.network?.internet ?? 'deny' },
    host_network: (declared.host_network ?? false) || services.some((s) => s.network_mode === 'host'),
    privileged: (declared.privileged ?? false) || services.some((s) => s.privileged),
    engine_socket: (declared.engine_socket ?? false) || services.some((s) => s.engine_socket),
    devices: uniqueSorted([...mapAt('permissions.devices', declared.devices ?? [], devicePath), ...services.flatMap((s) => s.devices)]),
    capabilities: uniqueSorted([
      ...mapAt('permissions.capabilities', declared.capabilities ?? [], capabilityName),
      ...services.flatMap((s) => s.cap_add).filter((cap) => !DEFAULT_CAPABILITIES.has(cap)),
    ]),
    media: uniqueSorted([...(declared.media ?? []), ...services.flatMap((s) => s.mounts.flatMap((m: ServiceMount) => (m.media === undefined ? [] : [m.media])))]),
  };
}

function normalizeListener(input: ListenerInput, firstService: string): Listener {
  return {
    name: input.name,
    guest_port: input.guest_port,
    flow: input.flow ?? 'tcp',
    protocol: input.protocol ?? 'raw',
    public: input.public ?? false,
    protocol_middleware: (input.protocol_middleware ?? []).map(({ name, params }) => ({ name, params: params ?? {} }) as Middleware),
    // The relay carries TCP streams only: a udp listener stays on the network unless it says otherwise.
    remote_ports: input.remote_ports ?? (input.protocol === 'udp' ? [] : [...DEFAULT_REMOTE_PORTS]),
    service: input.service ?? firstService,
    // Only when asked for: the stored specs of other apps stay as they were.
    ...(input.public_port !== undefined && { public_port: input.public_port }),
  };
}

function normalizeVolumes(volumes: Record<string, StorageVolumeInput> | undefined): Record<string, StorageVolume> {
  return Object.fromEntries(
    Object.entries(volumes ?? {}).map(([name, { container, size_limit }]) => [
      name,
      {
        ...(container !== undefined && { container }),
        ...(size_limit !== undefined && { size_limit, size_limit_bytes: parseSize(size_limit)! }),
      },
    ]),
  );
}

function normalizeHealthCheck({ http }: NonNullable<AppSpecInput['healthcheck']>): HealthCheck {
  const timeout = http.timeout ?? DEFAULT_HEALTHCHECK_TIMEOUT;
  return { http: { path: http.path, port: http.port, timeout, timeout_ms: parseDuration(timeout)!, retries: http.retries ?? DEFAULT_HEALTHCHECK_RETRIES } };
}

function uniqueSorted(values: string[]): string[] {
  return [...new Set(values)].sort();
}
