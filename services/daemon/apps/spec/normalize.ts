// Fills in every default of an app spec that passed validation, so the runtime reads one complete
// shape. Defaults follow the reference Piccolo spec: type user, flow tcp, protocol raw, remote
// ports 80 and 443; and Piccolo's security defaults: listeners behind the login, no internet.
import type { AppSpec, AppSpecInput, HealthCheck, Listener, ListenerInput, Middleware, StorageVolume, StorageVolumeInput } from './types.js';
import { parseDuration, parseSize } from './units.js';

const DEFAULT_REMOTE_PORTS: readonly number[] = [80, 443];
const DEFAULT_HEALTHCHECK_TIMEOUT = '30s';
const DEFAULT_HEALTHCHECK_RETRIES = 3;

export function normalizeSpec(input: AppSpecInput): AppSpec {
  const limits = input.resources?.limits ?? {};
  const spec: AppSpec = {
    name: input.name,
    image: input.image,
    type: input.type ?? 'user',
    listeners: input.listeners.map(normalizeListener),
    storage: {
      persistent: normalizeVolumes(input.storage?.persistent),
      temporary: normalizeVolumes(input.storage?.temporary),
    },
    // Object.fromEntries, not assignment: a key named __proto__ stays an ordinary key.
    environment: Object.fromEntries(Object.entries(input.environment ?? {}).map(([key, value]) => [key, String(value)])),
    resources: {
      limits: {
        ...(limits.memory !== undefined && { memory: limits.memory, memory_bytes: parseSize(limits.memory)! }),
        ...(limits.cpu !== undefined && { cpu: limits.cpu }),
        ...(limits.storage !== undefined && { storage: limits.storage, storage_bytes: parseSize(limits.storage)! }),
      },
    },
    depends_on: input.depends_on ?? [],
    permissions: { network: { internet: input.permissions?.network?.internet ?? 'deny' } },
  };
  if (input.healthcheck) spec.healthcheck = normalizeHealthCheck(input.healthcheck);
  return spec;
}

function normalizeListener(input: ListenerInput): Listener {
  return {
    name: input.name,
    guest_port: input.guest_port,
    flow: input.flow ?? 'tcp',
    protocol: input.protocol ?? 'raw',
    public: input.public ?? false,
    protocol_middleware: (input.protocol_middleware ?? []).map(({ name, params }) => ({ name, params: params ?? {} }) as Middleware),
    remote_ports: input.remote_ports ?? [...DEFAULT_REMOTE_PORTS],
  };
}

function normalizeVolumes(volumes: Record<string, StorageVolumeInput> | undefined): Record<string, StorageVolume> {
  return Object.fromEntries(
    Object.entries(volumes ?? {}).map(([name, { container, size_limit }]) => [
      name,
      size_limit === undefined ? { container } : { container, size_limit, size_limit_bytes: parseSize(size_limit)! },
    ]),
  );
}

function normalizeHealthCheck({ http }: NonNullable<AppSpecInput['healthcheck']>): HealthCheck {
  const timeout = http.timeout ?? DEFAULT_HEALTHCHECK_TIMEOUT;
  return { http: { path: http.path, port: http.port, timeout, timeout_ms: parseDuration(timeout)!, retries: http.retries ?? DEFAULT_HEALTHCHECK_RETRIES } };
}
