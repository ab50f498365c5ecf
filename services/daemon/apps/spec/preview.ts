// What installing (or updating to) a spec will do, before anything is installed: its containers,
// listeners, volumes and network access, what it gets in words a person understands, the grants it
// needs with their risk, and for an update, every field that changes. Pure: the API hands in the
// installed spec and its grants, if any.
import { defaultAccess } from '../../../common/route-table.js';
import type { DeepReadonly } from '../../store/store.js';
import { heldGrants, neededPermissions, type NeededPermission } from './permissions.js';
import { containerWarnings, previewContainers, volumeMounts, type PreviewContainer } from './preview-containers.js';
import { mainService, type AppSpec, type Listener, type NetworkAccess } from './types.js';

export interface PreviewListener {
  name: string;
  /** The port the app listens on inside its container. */
  port: number;
  protocol: Listener['protocol'];
  flow: Listener['flow'];
  /** Reachable without the device's sign-in (public, raw TCP, or a system app). */
  exposed: boolean;
  /** The container it is on. */
  service: string;
}

export interface PreviewVolume {
  name: string;
  /** Where it is mounted (the first mount; mounts has them all), '' when nothing mounts it. */
  path: string;
  kind: 'persistent' | 'temporary';
  sizeLimit?: string;
  mounts: { service: string; path: string; readOnly: boolean }[];
}

/** A grant the app needs; granted: it holds from before (an update asking no more of it). */
export type PreviewGrant = NeededPermission & { granted: boolean };

export interface Permission {
  id: string;
  title: string;
  detail: string;
}

export interface SpecChange {
  /** Dotted, with list indexes: `image`, `listeners[0].guest_port`, `environment.TZ`. */
  path: string;
  from: unknown;
  to: unknown;
}

export interface InstallPreview {
  action: 'install' | 'update';
  name: string;
  /** The main service's image (the first listener's container); containers has every one. */
  image: string;
  /** In start order. */
  containers: PreviewContainer[];
  listeners: PreviewListener[];
  volumes: PreviewVolume[];
  internet: NetworkAccess;
  dependencies: string[];
  permissions: Permission[];
  /** What install (or this update) must be granted, with typed confirmation: each with its risk. */
  permissionsNeeded: PreviewGrant[];
  changes: SpecChange[];
  warnings: string[];
}

export interface PreviewOptions {
  /** The spec installed under the same name: the preview is then an update. */
  installed?: DeepReadonly<AppSpec>;
  /** What the installed app was granted. */
  granted?: readonly string[];
  /** Warnings from reading the source (the compose import's). */
  warnings?: readonly string[];
  /** Listeners answer at <listener>-<app>.<deviceName>.local. */
  deviceName?: string;
}

type Spec = DeepReadonly<AppSpec>;

export function previewInstall(spec: Spec, options: PreviewOptions = {}): InstallPreview {
  const { installed } = options;
  const listeners = spec.listeners.map((listener) => ({
    name: listener.name,
    port: listener.guest_port,
    protocol: listener.protocol,
    flow: listener.flow,
    exposed: defaultAccess(spec.type, listener.protocol, listener.public) === 'public',
    service: listener.service,
  }));
  const volumes = (['persistent', 'temporary'] as const).flatMap((kind) =>
    Object.entries(spec.storage[kind]).map(([name, volume]) => {
      const mounts = volumeMounts(spec, name);
      return { name, path: mounts[0]?.path ?? '', kind, ...(volume.size_limit ? { sizeLimit: volume.size_limit } : {}), mounts };
    }),
  );
  const needed = neededPermissions(spec);
  const held = heldGrants(needed, installed && { spec: installed, granted: options.granted ?? [] });
  const permissionsNeeded = needed.map((permission) => ({ ...permission, granted: held.has(permission.id) }));
  return {
    action: installed ? 'update' : 'install',
    name: spec.name,
    image: mainService(spec).image,
    containers: previewContainers(spec),
    listeners,
    volumes,
    internet: spec.permissions.network.internet,
    dependencies: [...spec.depends_on],
    permissions: permissionsOf(spec, options.deviceName),
    permissionsNeeded,
    changes: installed ? diffSpecs(byServiceName(installed), byServiceName(spec)) : [],
    warnings: [...(options.warnings ?? []), ...warningsOf(spec, installed), ...containerWarnings(spec, installed)],
  };
}

function permissionsOf(spec: Spec, deviceName: string | undefined): Permission[] {
  const permissions: Permission[] = [];
  const host = (listener: DeepReadonly<Listener>) => `${listener.name}-${spec.name}${deviceName ? `.${deviceName}.local` : ''}`;
  if (spec.permissions.network.internet === 'allow') {
    permissions.push({
      id: 'internet',
      title: 'Internet access',
      detail: 'It can open connections to the internet and to other devices on your network.',
    });
  }
  if (spec.type === 'system') {
    permissions.push({
      id: 'system-app',
      title: 'System app',
      detail: 'Its web pages do not ask for the device sign-in: the app itself decides who may use it.',
    });
  }
  for (const listener of spec.listeners) {
    const open = defaultAccess(spec.type, listener.protocol, listener.public) === 'public';
    const what =
      listener.protocol === 'raw' || listener.protocol === 'udp'
        ? `${listener.protocol === 'udp' ? 'UDP' : 'TCP'} port ${listener.guest_port}`
        : `${listener.protocol === 'websocket' ? 'WebSocket' : 'Web'} service "${listener.name}"`;
    const tls = listener.flow === 'tls' ? ' The app handles its own encryption (TLS); the device passes the traffic through unread.' : '';
    const fixed = listener.public_port !== undefined ? ` It takes the device's own port ${listener.public_port}, which no other app can then have.` : '';
    if (open) {
      const why =
        listener.protocol === 'raw' ? 'the device cannot ask for a sign-in on a raw TCP port' : listener.protocol === 'udp' ? 'the device cannot ask for a sign-in on a UDP port' : 'no sign-in is asked';
      permissions.push({
        id: `public-listener:${listener.name}`,
        title: `${what} open to everyone on your network`,
        detail: `Anyone who can reach ${host(listener)} can use it: ${why}.${tls}${fixed}`,
      });
    } else {
      permissions.push({
        id: `lan-listener:${listener.name}`,
        title: `${what} on your network`,
        detail: `Reachable at ${host(listener)} for people signed in to this device.${tls}${fixed}`,
      });
    }
    if (listener.remote_ports.length) {
      permissions.push({
        id: `remote-listener:${listener.name}`,
        title: `"${listener.name}" reachable from the internet when remote access is on`,
        detail: `Published through the relay on port${listener.remote_ports.length > 1 ? 's' : ''} ${listener.remote_ports.join(', ')}${open ? ', without a sign-in' : ', behind the device sign-in'}.`,
      });
    }
  }
  for (const [name, volume] of Object.entries(spec.storage.persistent)) {
    const paths = [...new Set(volumeMounts(spec, name).map((mount) => mount.path))];
    permissions.push({
      id: `storage:${name}`,
      title: paths.length ? `Keeps data in ${paths.join(', ')}` : `Keeps data in the volume ${name}`,
      detail: `Stored encrypted on this device${volume.size_limit ? `, up to ${volume.size_limit}` : ''}. It stays across updates and is deleted only if you uninstall with "delete data".`,
    });
  }
  for (const dependency of spec.depends_on) {
    permissions.push({
      id: `depends-on:${dependency}`,
      title: `Talks to ${dependency}`,
      detail: `It joins ${dependency}'s private network, so it can reach ${dependency}'s services; ${dependency} is started first.`,
    });
  }
  return permissions;
}

function warningsOf(spec: Spec, installed: Spec | undefined): string[] {
  const warnings: string[] = [];
  for (const listener of spec.listeners) {
    if (spec.type === 'user' && listener.public && listener.protocol !== 'raw' && listener.protocol !== 'udp') warnings.push(`listener ${listener.name} is public: anyone on your network can use it without signing in`);
  }
  if (!installed) return warnings;
  for (const name of Object.keys(installed.storage.persistent)) {
    if (!spec.storage.persistent[name]) warnings.push(`volume ${name} is no longer mounted; its data is kept until you uninstall with "delete data"`);
  }
  for (const listener of installed.listeners) {
    if (!spec.listeners.some((l) => l.name === listener.name)) warnings.push(`listener ${listener.name} goes away: its address stops answering`);
  }
  return warnings;
}

/** Services by name, so a change reads services.db.image, and a reordering is no change. */
function byServiceName(spec: Spec): unknown {
  return { ...spec, services: Object.fromEntries(spec.services.map((service) => [service.name, service])) };
}

/** Derived values (parsed sizes and durations) change with the text they come from. */
const DERIVED_KEY = /_(bytes|ms)$/;

/** Every leaf that differs, by path; lists by index, missing values as undefined. */
export function diffSpecs(from: unknown, to: unknown, path = ''): SpecChange[] {
  if (Array.isArray(from) && Array.isArray(to)) {
    const changes: SpecChange[] = [];
    for (let i = 0; i < Math.max(from.length, to.length); i++) changes.push(...diffSpecs(from[i], to[i], `${path}[${i}]`));
    return changes;
  }
  if (isObject(from) && isObject(to)) {
    const keys = [...new Set([...Object.keys(from), ...Object.keys(to)])].filter((key) => !DERIVED_KEY.test(key)).sort();
    return keys.flatMap((key) => diffSpecs(from[key], to[key], path ? `${path}.${key}` : key));
  }
  // null, not undefined, for a side that lacks the field: JSON keeps it.
  return JSON.stringify(from) === JSON.stringify(to) ? [] : [{ path, from: from ?? null, to: to ?? null }];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
