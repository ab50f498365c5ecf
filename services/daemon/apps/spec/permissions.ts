// The grants an app needs beyond the fortress's defaults, each with what it gives away in words a
// person can weigh, and the check that install and update make before anything happens: every
// needed permission granted now, or granted before for no more than it asked for then. Default deny.
import { PiccoloError } from '../../../common/errors.js';
import type { DeepReadonly } from '../../store/store.js';
import { DEFAULT_CAPABILITIES } from './service-fields.js';
import type { AppSpec, ServiceSpec } from './types.js';

export const PERMISSION_IDS = ['host_network', 'privileged', 'engine_socket', 'devices', 'capabilities', 'media'] as const;
export type PermissionId = (typeof PERMISSION_IDS)[number];

export interface NeededPermission {
  id: PermissionId;
  /** A short name for a checkbox: "Use the device's own network". */
  title: string;
  /** Which services ask for it, and for what (the devices, the capabilities...). */
  detail: string;
  /** What granting it gives away. */
  risk: string;
  /** The devices, capabilities or media folders asked for; [] for the yes/no permissions. */
  items: string[];
  /** The services that use it; [] when only app.yaml's permissions section declares it. */
  services: string[];
}

type Spec = DeepReadonly<AppSpec>;

/** What a capability lets a container do, for the ones apps ask for; others get the general words. */
const CAPABILITY_RISKS: Record<string, string> = {
  NET_ADMIN: 'change network settings (interfaces, routes, firewall rules) where it runs',
  NET_RAW: 'send and capture raw network packets, which can spoof or eavesdrop on its network',
  NET_BROADCAST: 'broadcast and listen to multicast on its network',
  SYS_ADMIN: 'mount file systems and a long list of administrative operations; it is close to full control of the device',
  SYS_TIME: "set the device's clock, for every app",
  SYS_MODULE: 'load code into the running kernel: full control of the device',
  SYS_RAWIO: 'read and write hardware ports and memory directly',
  SYS_PTRACE: 'inspect and change the memory of other processes',
  SYS_NICE: 'raise its own priority above other apps',
  SYS_RESOURCE: 'go beyond the resource limits set for it',
  DAC_READ_SEARCH: 'read any file it can see, whatever its permissions',
  MKNOD: 'create device files',
  IPC_LOCK: 'lock memory so it is never swapped out',
  ALL: 'every capability at once: close to full control of the device',
};

/** What one service uses of each permission; the runtime refuses a service whose uses were not granted. */
const USES: { [I in PermissionId]: (service: DeepReadonly<ServiceSpec>) => boolean } = {
  host_network: (service) => service.network_mode === 'host',
  privileged: (service) => service.privileged,
  engine_socket: (service) => service.engine_socket,
  devices: (service) => service.devices.length > 0,
  // Adding a capability the engine gives every container anyway asks for nothing.
  capabilities: (service) => service.cap_add.some((cap) => !DEFAULT_CAPABILITIES.has(cap)),
  media: (service) => service.mounts.some((mount) => mount.media !== undefined),
};

/** The permissions one service needs granted, by id (the same rule as neededPermissions). */
export function servicePermissions(service: DeepReadonly<ServiceSpec>): PermissionId[] {
  return PERMISSION_IDS.filter((id) => USES[id](service));
}

/** How one permission reads: whether the app needs it, who uses it, and the words for a person. */
interface Wording {
  /** What it is asked for; [] for a yes/no permission that is asked for; undefined when it is not. */
  items(spec: Spec): readonly string[] | undefined;
  title(items: readonly string[]): string;
  /** What the services do with it, after "Service web" / "Services a, b": [one, several]. */
  does(items: readonly string[], spec: Spec): [string, string];
  risk(items: readonly string[], spec: Spec): string;
}

const yesNo = (asked: boolean) => (asked ? [] : undefined);
const listed = (items: readonly string[]) => (items.length ? items : undefined);
const writesMedia = (spec: Spec) => spec.services.some((s) => s.mounts.some((mount) => mount.media !== undefined && !mount.read_only));

const WORDING: { [I in PermissionId]: Wording } = {
  host_network: {
    items: (spec) => yesNo(spec.permissions.host_network),
    title: () => "Use the device's own network",
    does: () => ["runs on the device's network instead of the app's private one", "run on the device's network instead of the app's private one"],
    risk: () => "It can listen on any port of the device and reach everything the device reaches, without the proxy's sign-in in front of it, and it sees the device's network traffic.",
  },
  privileged: {
    items: (spec) => yesNo(spec.permissions.privileged),
    title: () => 'Full control of the device (privileged)',
    does: () => ["runs without the container's protections", "run without the container's protections"],
    risk: () => "It can reach all hardware, change kernel settings and read or change every other app's data, including the encrypted volumes while they are open. Grant it only to software you trust as much as the device itself.",
  },
  engine_socket: {
    items: (spec) => yesNo(spec.permissions.engine_socket),
    title: () => 'Control the container engine',
    does: () => ["gets the container engine's socket (/var/run/docker.sock)", "get the container engine's socket (/var/run/docker.sock)"],
    risk: () => 'It can start, stop and inspect every app, read their settings and secrets, and start new containers with full control of the device: as much as privileged.',
  },
  devices: {
    items: (spec) => listed(spec.permissions.devices),
    title: (items) => `Use hardware: ${items.join(', ')}`,
    does: (items) => [`uses ${items.join(', ')} directly`, `use ${items.join(', ')} directly`],
    risk: (items) =>
      `It can read and write ${items.length > 1 ? 'these devices' : 'this device'} as the device itself can (a graphics card, a USB stick or radio, a disk), and what flows through ${items.length > 1 ? 'them' : 'it'}.`,
  },
  capabilities: {
    items: (spec) => listed(spec.permissions.capabilities),
    title: (items) => `Extra Linux powers: ${items.join(', ')}`,
    does: (items) => [`asks for ${items.join(', ')} beyond a container's defaults`, `ask for ${items.join(', ')} beyond a container's defaults`],
    risk: (items) => {
      const powers = items.map((cap) => CAPABILITY_RISKS[cap] ?? 'an administrative power of the Linux kernel that containers do not have by default');
      return `It can ${powers.length === 1 ? powers[0] : items.map((cap, i) => `${cap}: ${powers[i]}`).join('; ')}.`;
    },
  },
  media: {
    items: (spec) => listed(spec.permissions.media),
    title: (items) => `Your shared folder${items.length > 1 ? 's' : ''} ${items.join(', ')}`,
    does: (items, spec) => {
      const what = `${items.join(', ')}${writesMedia(spec) ? ', and can change what is in them' : ', read only'}`;
      return [`sees ${what}`, `see ${what}`];
    },
    risk: (items, spec) =>
      `It can ${writesMedia(spec) ? 'read, change and delete' : 'read'} every file in ${items.join(', ')}, including what other apps and people put there. These folders are shared with every app granted them: they are stored encrypted in the device's shared volume, not the app's own, and stay when the app is uninstalled.`,
  },
};

export function neededPermissions(spec: Spec): NeededPermission[] {
  return PERMISSION_IDS.flatMap((id) => {
    const wording = WORDING[id];
    const items = wording.items(spec);
    if (items === undefined) return [];
    const services = spec.services.filter(USES[id]).map((service) => service.name);
    const [one, several] = wording.does(items, spec);
    const who = services.length ? `${services.length > 1 ? 'Services' : 'Service'} ${services.join(', ')}` : 'The app';
    return [{ id, title: wording.title(items), detail: `${who} ${services.length > 1 ? several : one}.`, risk: wording.risk(items, spec), items: [...items], services }];
  });
}

/** Install or update refused until these permissions are granted; details lists them with their risk. */
export class PermissionRequiredError extends PiccoloError {
  constructor(app: string, missing: NeededPermission[]) {
    super(
      403,
      'permission_required',
      `${app} needs ${missing.length > 1 ? 'these permissions' : 'this permission'} granted first: ${missing.map((p) => p.id).join(', ')} (send grants with their ids and confirm with the app's name)`,
      missing,
    );
  }
}

export interface GrantCheck {
  /** Ids to record as the app's grants: each needed one, granted now or before. */
  granted: string[];
  /** Ids granted by this request, which the confirmation covers and the audit records. */
  newlyGranted: string[];
}

export interface PreviousGrants {
  spec: Spec;
  granted: readonly string[];
}

/**
 * Checks the grants of an install or an update. A permission granted before still holds if the
 * new spec asks for no more of it (no new device, capability or media folder); anything else must
 * be in `grants` now. Throws PermissionRequiredError naming what is missing.
 */
export function checkGrants(spec: Spec, grants: readonly string[], previous?: PreviousGrants): GrantCheck {
  const needed = neededPermissions(spec);
  const held = heldGrants(needed, previous);
  const fresh = needed.filter((permission) => !held.has(permission.id));
  const missing = fresh.filter((permission) => !grants.includes(permission.id));
  if (missing.length) throw new PermissionRequiredError(spec.name, missing);
  return { granted: needed.map((p) => p.id).sort(), newlyGranted: fresh.map((p) => p.id).sort() };
}

/** The needed permissions that hold from before: granted then, for at least every item asked now. */
export function heldGrants(needed: readonly NeededPermission[], previous: PreviousGrants | undefined): Set<PermissionId> {
  if (!previous) return new Set();
  const before = new Map(neededPermissions(previous.spec).map((p) => [p.id, p]));
  return new Set(
    needed
      .filter((permission) => {
        const old = before.get(permission.id);
        return old !== undefined && previous.granted.includes(permission.id) && permission.items.every((item) => old.items.includes(item));
      })
      .map((permission) => permission.id),
  );
}
