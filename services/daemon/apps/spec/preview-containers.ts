// The containers part of the install preview: what runs (each service's image, start order and
// what it waits for), what it mounts, and the warnings only a multi-container app can earn.
import type { DeepReadonly } from '../../store/store.js';
import type { AppSpec, ServiceCondition } from './types.js';

type Spec = DeepReadonly<AppSpec>;

export interface PreviewContainer {
  /** The service; the app's other containers reach it by this name. */
  name: string;
  image: string;
  /** Services started before this one, and what it waits for from each. */
  startsAfter: { service: string; condition: ServiceCondition }[];
  /** The engine checks it (the service's own healthcheck). */
  healthcheck: boolean;
  /** app: the app's private network; host: the device's own (a permission). */
  network: 'app' | 'host';
  /** The app's listeners on this container. */
  listeners: string[];
  mounts: { volume?: string; media?: string; subpath?: string; path: string; readOnly: boolean }[];
  /** Its own file system is read only (only mounts and tmpfs can be written). */
  readOnly: boolean;
}

export function previewContainers(spec: Spec): PreviewContainer[] {
  return spec.services.map((service) => ({
    name: service.name,
    image: service.image,
    startsAfter: service.depends_on.map(({ service: name, condition }) => ({ service: name, condition })),
    healthcheck: service.healthcheck !== undefined && service.healthcheck.test[0] !== 'NONE',
    network: service.network_mode,
    listeners: spec.listeners.filter((listener) => listener.service === service.name).map((listener) => listener.name),
    mounts: service.mounts.map((mount) => ({
      ...(mount.volume !== undefined && { volume: mount.volume }),
      ...(mount.media !== undefined && { media: mount.media }),
      ...(mount.subpath !== undefined && { subpath: mount.subpath }),
      path: mount.container,
      readOnly: mount.read_only,
    })),
    readOnly: service.read_only,
  }));
}

/** Where each volume is mounted, by service. */
export function volumeMounts(spec: Spec, volume: string): { service: string; path: string; readOnly: boolean }[] {
  return spec.services.flatMap((service) =>
    service.mounts.filter((mount) => mount.volume === volume).map((mount) => ({ service: service.name, path: mount.container, readOnly: mount.read_only })),
  );
}

export function containerWarnings(spec: Spec, installed: Spec | undefined): string[] {
  const warnings: string[] = [];
  for (const listener of spec.listeners) {
    const service = spec.services.find((s) => s.name === listener.service);
    if (service?.network_mode === 'host') {
      warnings.push(`listener ${listener.name} is on service ${service.name}, which uses the device's network: port ${listener.guest_port} is open on the device itself, also without the proxy`);
    }
  }
  for (const kind of ['persistent', 'temporary'] as const) {
    for (const name of Object.keys(spec.storage[kind])) {
      const users = new Set(volumeMounts(spec, name).map((mount) => mount.service));
      if (!users.size) warnings.push(`volume ${name} is not mounted by any service`);
      if (kind === 'temporary' && users.size > 1) warnings.push(`temporary volume ${name} is mounted by ${[...users].join(', ')}: each container gets its own empty one; they do not share files`);
    }
  }
  if (!installed) return warnings;
  for (const service of installed.services) {
    if (!spec.services.some((s) => s.name === service.name)) warnings.push(`service ${service.name} goes away: its container is removed (the data in the app's volumes is kept)`);
  }
  return warnings;
}
