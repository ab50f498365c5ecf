// One compose service as a Piccolo ServiceInput, key by key. Each compose key is taken (its
// meaning kept), ignored with a warning naming it (Piccolo already does it its own way, or it does
// not matter on a home server), or refused with the reason. The five ways out of the fortress
// (host network, devices, capabilities, the engine socket, privileged) are taken: the spec then
// asks for the matching permission, which the person grants at install.
import { posix } from 'node:path';
import type { ServiceCondition, ServiceInput, StorageVolumeInput } from '../types.js';
import { classifyBindSource, displayPath } from './mounts.js';
import { parsePorts, type PublishedPort } from './ports.js';

/** What the stack import shares with each service's import. */
export interface StackContext {
  problems: string[];
  warnings: string[];
  /** compose's top-level volumes: declarations. */
  topVolumes: Record<string, unknown>;
  /** Piccolo storage volumes made so far, by name. */
  persistent: Record<string, StorageVolumeInput>;
  /** compose volume name → Piccolo volume name. */
  volumeNames: Map<string, string>;
  /** The services' published ports, for the listeners. */
  published: { service: string; port: PublishedPort }[];
  /** Other names a service answers to in compose (container_name, hostname, links aliases). */
  aliases: Map<string, string>;
  /** compose service name → Piccolo service name. */
  serviceNames: Map<string, string>;
  /** Set when a service mounted the host's clock files: TZ is given instead. */
  wantsTimezone: Set<string>;
  /** .env-style files the person gave with the compose file (env_file:), by the name written. */
  envFiles: Record<string, string>;
  /** Keys whose value had a variable without a value: reported already, not read further. */
  unresolved: Set<string>;
  /** A variable's value as substitution sees it, for `environment: [NAME]` without a value. */
  lookup: (name: string) => string | undefined;
}

/** The one volume that holds every bind mount of the app's own data, as a folder each (subpath). */
export const APP_DATA_VOLUME = 'app-data';

type Handler = (value: unknown, path: string, service: ServiceInput, context: ServiceContext) => void;

interface ServiceContext {
  stack: StackContext;
  /** Piccolo's name of this service. */
  name: string;
}

const REFUSED: Record<string, string> = {
  build: 'building images is not supported; Piccolo runs published images only (give image:)',
  pid: "sharing the host's process namespace is not allowed",
  uts: "sharing the host's name namespace is not allowed",
  userns_mode: "changing the user namespace is not allowed",
  cgroup: 'apps run in the cgroups Piccolo gives them',
  cgroup_parent: 'apps run in the cgroups Piccolo gives them',
  sysctls: 'kernel settings cannot be changed by an app',
  volumes_from: "apps cannot use another container's volumes; name the volume instead",
  extends: 'extends is not supported; write the service out in full',
  configs: 'configs are not supported; put the content in environment or in a file of the app data',
  secrets: 'secrets are not supported; put the value in environment',
  external_links: "apps cannot link to containers outside Piccolo's control",
  runtime: 'only the default container runtime is available',
  gpus: 'GPUs by runtime are not supported; ask for the device (devices: /dev/dri) instead',
  device_cgroup_rules: 'device rules are not supported; list each device under devices:',
  isolation: 'isolation technologies are not supported',
  credential_spec: 'credential specs are not supported',
  storage_opt: 'storage driver options are not supported',
  post_start: 'lifecycle hooks are not supported',
  pre_stop: 'lifecycle hooks are not supported',
  use_api_socket: 'the engine socket is asked for by mounting /var/run/docker.sock',
};

const IGNORED: Record<string, string> = {
  container_name: 'Piccolo names the container; the others reach it by its service name',
  hostname: 'the others reach it by its service name',
  domainname: 'the others reach it by its service name',
  networks: 'each app gets its own network, shared by its services',
  links: 'every service reaches the others by service name',
  expose: 'the services of an app reach each other on every port; only ports: become listeners',
  dns: 'Piccolo provides name resolution',
  dns_search: 'Piccolo provides name resolution',
  dns_opt: 'Piccolo provides name resolution',
  extra_hosts: 'host names cannot be pointed elsewhere',
  mac_address: 'Piccolo gives the address',
  labels: 'not used by Piccolo',
  annotations: 'not used by Piccolo',
  logging: 'Piccolo collects container logs itself',
  stop_signal: 'Piccolo stops containers with SIGTERM',
  platform: 'the image for the device is pulled',
  pull_policy: 'Piccolo pulls images itself',
  profiles: 'not used by Piccolo',
  tty: 'not used by Piccolo',
  stdin_open: 'not used by Piccolo',
  attach: 'not used by Piccolo',
  develop: 'not used by Piccolo',
  init: 'the image\'s own entrypoint runs as process 1',
  ulimits: "the engine's limits apply",
  group_add: 'extra groups are not added',
  mem_limit: "per-container limits are not kept; set the app's resources.limits",
  memswap_limit: "per-container limits are not kept; set the app's resources.limits",
  mem_reservation: 'reservations are not used',
  mem_swappiness: "the engine's default applies",
  oom_score_adj: "the engine's default applies",
  oom_kill_disable: "the engine's default applies",
  cpus: "per-container limits are not kept; set the app's resources.limits",
  cpu_shares: "the engine's default applies",
  cpu_quota: "the engine's default applies",
  cpu_period: "the engine's default applies",
  cpu_count: "the engine's default applies",
  cpu_percent: "the engine's default applies",
  cpu_rt_runtime: "the engine's default applies",
  cpu_rt_period: "the engine's default applies",
  cpuset: "the engine's default applies",
  pids_limit: "the engine's default applies",
  blkio_config: "the engine's default applies",
  scale: 'an app runs one container per service',
};

const HANDLERS: Record<string, Handler> = {
  image: (value, path, service, { stack }) => {
    if (typeof value !== 'string' || value.trim() === '') stack.problems.push(`${path}: must be an image reference`);
    else if (/\s/.test(value.trim())) stack.problems.push(`${path}: ${value} is not an image reference`);
    else service.image = value.trim();
  },
  command: (value, path, service, context) => commandField('command', value, path, service, context),
  entrypoint: (value, path, service, context) => commandField('entrypoint', value, path, service, context),
  user: (value, path, service, { stack }) => {
    if (typeof value === 'string' || typeof value === 'number') service.user = String(value);
    else stack.problems.push(`${path}: must be a user such as 1000 or 1000:1000`);
  },
  working_dir: (value, path, service, { stack }) => {
    if (typeof value === 'string' && value.startsWith('/')) service.working_dir = value;
    else stack.problems.push(`${path}: must be an absolute path inside the container`);
  },
  environment: importEnvironment,
  env_file: importEnvFile,
  restart: (value, path, service, { stack }) => {
    const text = value === false ? 'no' : String(value);
    const policy = text.split(':')[0];
    if (policy === 'no' || policy === 'always' || policy === 'on-failure' || policy === 'unless-stopped') service.restart = policy;
    else stack.problems.push(`${path}: must be no, always, on-failure or unless-stopped (got ${text})`);
    if (text.includes(':') && policy === 'on-failure') stack.warnings.push(`${path}: the retry count ${text.split(':')[1]} is not kept; the container is restarted while it fails`);
  },
  stop_grace_period: (value, path, service, { stack }) => {
    const ms = durationMs(value);
    if (ms === undefined) stack.problems.push(`${path}: must be a duration such as 10s or 1m30s`);
    else service.stop_grace_period = `${ms}ms`;
  },
  cap_add: (value, path, service, { stack }) => {
    const caps = stringList(value, path, stack);
    if (caps) service.cap_add = caps.map((cap) => cap.toUpperCase().replace(/^CAP_/, ''));
  },
  cap_drop: (value, path, service, { stack }) => {
    const caps = stringList(value, path, stack);
    if (caps) service.cap_drop = caps.map((cap) => cap.toUpperCase().replace(/^CAP_/, ''));
  },
  read_only: (value, path, service, { stack }) => {
    const flag = boolean(value);
    if (flag === undefined) stack.problems.push(`${path}: must be true or false`);
    else service.read_only = flag;
  },
  privileged: (value, path, service, { stack }) => {
    const flag = boolean(value);
    if (flag === undefined) stack.problems.push(`${path}: must be true or false`);
    else service.privileged = flag;
  },
  shm_size: (value, path, service, { stack }) => {
    const bytes = dockerSize(value);
    if (bytes === undefined) stack.problems.push(`${path}: must be a size such as 64m or 1g`);
    else service.shm_size = bytes;
  },
  tmpfs: importTmpfs,
  devices: importDevices,
  network_mode: importNetworkMode,
  ipc: (value, path, _service, { stack }) => {
    if (value !== 'private' && value !== 'shareable') stack.problems.push(`${path}: ${String(value)}: sharing an IPC namespace is not allowed`);
  },
  security_opt: (value, path, _service, { stack }) => {
    for (const option of stringList(value, path, stack) ?? []) {
      if (/^no-new-privileges(?:[:=]true)?$/.test(option)) continue;
      // Loosening the default profiles is not applied: the app keeps them (most run fine).
      if (/^(seccomp|apparmor)[:=]unconfined$|^label[:=]disable$/.test(option)) {
        stack.warnings.push(`${path}: ${option} is not applied; the container keeps the default ${option.split(/[:=]/)[0]} profile`);
        continue;
      }
      stack.problems.push(`${path}: ${option} weakens the container's isolation; it is not offered (privileged: true is the one way, as a permission)`);
    }
  },
  healthcheck: importHealthcheck,
  depends_on: importDependsOn,
  volumes: importVolumes,
  ports: (value, path, _service, { stack, name }) => {
    for (const port of parsePorts(value, path, stack.problems, (entry) => unresolved(stack, entry))) stack.published.push({ service: name, port });
  },
  deploy: importDeploy,
};

export function importService(original: string, name: string, definition: Record<string, unknown>, stack: StackContext): ServiceInput {
  const base = `services.${original}`;
  const service = { image: '' } as ServiceInput;
  const context: ServiceContext = { stack, name };
  for (const [key, value] of Object.entries(definition)) {
    const path = `${base}.${key}`;
    if (key.startsWith('x-') || value === null) continue;
    if (REFUSED[key]) stack.problems.push(`${path}: ${REFUSED[key]}`);
    else if (HANDLERS[key]) HANDLERS[key]!(value, path, service, context);
    else if (IGNORED[key]) {
      noteAliases(key, value, name, stack);
      if (!QUIET.has(key)) stack.warnings.push(`${path}: ignored; ${IGNORED[key]}`);
    } else stack.problems.push(`${path}: not a compose key Piccolo knows`);
  }
  if (definition.image === undefined && definition.build === undefined) stack.problems.push(`${base}.image: is required; Piccolo runs published images only`);
  return service;
}

/** Keys nearly every store file sets, whose absence changes nothing a person would notice. */
const QUIET = new Set(['container_name', 'hostname', 'networks', 'links', 'labels', 'logging', 'tty', 'stdin_open', 'init', 'platform', 'pull_policy', 'expose', 'profiles']);

function noteAliases(key: string, value: unknown, name: string, stack: StackContext): void {
  if ((key === 'container_name' || key === 'hostname') && typeof value === 'string') stack.aliases.set(value, name);
  // networks: { default: { aliases: [db.internal] } }: other names of this service.
  if (key === 'networks' && isMapping(value)) {
    for (const network of Object.values(value)) {
      const aliases = isMapping(network) && Array.isArray(network.aliases) ? network.aliases : [];
      for (const alias of aliases) if (typeof alias === 'string') stack.aliases.set(alias, name);
    }
  }
  // links: ["db:database"]: this service calls the service db "database".
  if (key === 'links' && Array.isArray(value)) {
    for (const link of value.map(String)) {
      const [target = '', alias] = link.split(':');
      const service = stack.serviceNames.get(target);
      if (service && alias) stack.aliases.set(alias, service);
    }
  }
}

// ---- command, environment ----

function commandField(key: 'command' | 'entrypoint', value: unknown, path: string, service: ServiceInput, { stack }: ServiceContext): void {
  // entrypoint: "" clears the image's entrypoint; the engine reads [""] that way.
  if (value === '' || (Array.isArray(value) && value.length === 0)) service[key] = [''];
  else if (typeof value === 'string') service[key] = value;
  else if (Array.isArray(value) && value.every((part) => typeof part === 'string' || typeof part === 'number' || typeof part === 'boolean')) service[key] = value.map(String);
  else stack.problems.push(`${path}: must be a string or a list of strings`);
}

function importEnvironment(value: unknown, path: string, service: ServiceInput, { stack }: ServiceContext): void {
  const environment: Record<string, string> = { ...(service.environment as Record<string, string> | undefined) };
  let entries: [string, unknown][];
  if (Array.isArray(value)) {
    entries = value.map((item): [string, unknown] => {
      const text = String(item);
      const equals = text.indexOf('=');
      return equals === -1 ? [text, null] : [text.slice(0, equals), text.slice(equals + 1)];
    });
  } else if (isMapping(value)) entries = Object.entries(value);
  else return void stack.problems.push(`${path}: must be a list of NAME=value or a mapping`);
  for (const [name, raw] of entries) {
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) stack.problems.push(`${path}.${name}: is not a variable name`);
    // compose takes a variable without a value from the shell; the import has filled those it knows.
    else if (raw === null || raw === undefined) {
      const known = stack.lookup(name);
      if (known !== undefined) environment[name] = known;
      else stack.warnings.push(`${path}.${name}: has no value (compose would take it from the shell); left out`);
    }
    else if (typeof raw === 'object') stack.problems.push(`${path}.${name}: must be a string, number or boolean`);
    else environment[name] = String(raw);
  }
  service.environment = environment;
}

/** env_file: only files the person gave along with the compose file; each line NAME=value. */
function importEnvFile(value: unknown, path: string, service: ServiceInput, { stack }: ServiceContext): void {
  const entries = Array.isArray(value) ? value : [value];
  const environment: Record<string, string> = {};
  entries.forEach((entry, i) => {
    const at = Array.isArray(value) ? `${path}[${i}]` : path;
    const file = typeof entry === 'string' ? entry : isMapping(entry) ? String(entry.path) : '';
    const required = !(isMapping(entry) && entry.required === false);
    const text = stack.envFiles[file] ?? stack.envFiles[file.replace(/^\.\//, '')];
    if (text === undefined) {
      if (required) stack.problems.push(`${at}: the file ${file} was not given; add it next to the compose file, or put its variables under environment`);
      return;
    }
    for (const line of text.split(/\r?\n/)) {
      const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/.exec(line);
      if (match) environment[match[1]!] = match[2]!.trim().replace(/^(['"])(.*)\1$/, '$2');
    }
  });
  // environment: wins over env_file in compose, whatever the order of the keys.
  service.environment = { ...environment, ...(service.environment as Record<string, string> | undefined) };
}

// ---- storage ----

function importVolumes(value: unknown, path: string, service: ServiceInput, context: ServiceContext): void {
  if (!Array.isArray(value)) return void context.stack.problems.push(`${path}: must be a list`);
  value.forEach((entry, i) => importVolume(entry, `${path}[${i}]`, service, context));
}

interface VolumeEntry {
  type: string;
  source?: string;
  target: string;
  readOnly: boolean;
}

function volumeEntry(entry: unknown, path: string, stack: StackContext): VolumeEntry | undefined {
  if (typeof entry === 'string') {
    const parts = entry.split(':');
    if (parts.length > 3 || parts.some((part) => part === '')) return void stack.problems.push(`${path}: ${displayPath(entry)} is not source:target[:mode]`);
    if (parts.length === 1) return { type: 'volume', target: parts[0]!, readOnly: false };
    const [source, target, mode = ''] = parts as [string, string, string?];
    const readOnly = mode.split(',').includes('ro');
    return { type: /^[./~]/.test(source) ? 'bind' : 'volume', source, target, readOnly };
  }
  if (!isMapping(entry)) return void stack.problems.push(`${path}: must be "source:/path" or a mapping`);
  if (typeof entry.target !== 'string') return void stack.problems.push(`${path}.target: is required`);
  const type = String(entry.type ?? (typeof entry.source === 'string' && /^[./~]/.test(entry.source) ? 'bind' : 'volume'));
  return { type, ...(typeof entry.source === 'string' && entry.source !== '' && { source: entry.source }), target: entry.target, readOnly: entry.read_only === true };
}

function importVolume(raw: unknown, path: string, service: ServiceInput, context: ServiceContext): void {
  const { stack } = context;
  if (unresolved(stack, path)) return;
  const entry = volumeEntry(raw, path, stack);
  if (!entry) return;
  const { type, source, readOnly } = entry;
  if (!entry.target.startsWith('/')) return void stack.problems.push(`${path}: the container path ${entry.target} must be absolute`);
  // "/etc/pihole/" and "/etc//pihole" are the same folder to the engine.
  const target = posix.normalize(entry.target).replace(/(.)\/$/, '$1');
  const mounts = (service.mounts ??= []) as Exclude<ServiceInput['mounts'], undefined>;
  const add = (mount: { volume?: string; media?: string; subpath?: string }) =>
    mounts.push({ ...mount, container: target, read_only: readOnly } as (typeof mounts)[number]);
  if (type === 'tmpfs') {
    const size = isMapping(raw) && isMapping(raw.tmpfs) ? dockerSize(raw.tmpfs.size) : undefined;
    service.tmpfs = [...tmpfsList(service), size === undefined ? target : { container: target, size }];
    return;
  }
  if (type === 'volume') {
    const name = source ?? anonymousVolume(target);
    const volume = namedVolume(name, stack);
    if (volume) add({ volume });
    return;
  }
  if (type !== 'bind') return void stack.problems.push(`${path}: volumes of type ${type} are not supported`);
  const where = classifyBindSource(source ?? '');
  switch (where.kind) {
    case 'data':
      if (looksLikeFile(where.subpath, target)) {
        return void stack.problems.push(`${path}: ${displayPath(source!)} is a single file; files next to the compose file are not uploaded, and Piccolo mounts folders of the app's data`);
      }
      // Folders of one volume, overlapping as they do under compose (${APP_DATA_DIR} and ${APP_DATA_DIR}/db).
      stack.persistent[APP_DATA_VOLUME] ??= {};
      return void add(where.subpath === '.' ? { volume: APP_DATA_VOLUME } : { volume: APP_DATA_VOLUME, subpath: where.subpath });
    case 'media':
      return void add(where.subpath === undefined ? { media: where.folder } : { media: where.folder, subpath: where.subpath });
    case 'engine_socket':
      service.engine_socket = true;
      if (target !== '/var/run/docker.sock' && target !== '/run/docker.sock') stack.warnings.push(`${path}: the engine socket is mounted at /var/run/docker.sock, not ${target}`);
      return;
    case 'dropped':
      stack.wantsTimezone.add(context.name);
      return void stack.warnings.push(`${path}: ${where.warning}`);
    case 'refused':
      return void stack.problems.push(`${path}: ${where.reason}`);
  }
}

const FILE_EXTENSION = /\.(?:ya?ml|json|conf|cfg|ini|toml|env|js|mjs|cjs|ts|php|py|sh|txt|xml|properties|pem|crt|key|sqlite|db|lua|rb)$/i;

/** ./config.yml:/app/config.yml mounts one file; a folder would be mounted in its place. */
function looksLikeFile(subpath: string, target: string): boolean {
  return FILE_EXTENSION.test(subpath) && FILE_EXTENSION.test(target);
}

/** A compose anonymous volume (only a container path) is a volume named after that path. */
function anonymousVolume(target: string): string {
  return target.split('/').filter(Boolean).join('-') || 'data';
}

function namedVolume(name: string, stack: StackContext): string | undefined {
  const known = stack.volumeNames.get(name);
  if (known) return known;
  const declaration = stack.topVolumes[name];
  if (isMapping(declaration)) {
    const options = isMapping(declaration.driver_opts) ? declaration.driver_opts : undefined;
    // A "local" volume with o: bind names a host folder: the same rules as a bind mount.
    if (options && (options.type === 'none' || String(options.o ?? '').includes('bind')) && typeof options.device === 'string') {
      const where = classifyBindSource(options.device);
      if (where.kind !== 'data') return void stack.problems.push(`volumes.${name}.driver_opts.device: ${where.kind === 'refused' ? where.reason : `${displayPath(options.device)} is not the app's data`}`);
    } else if (options || (declaration.driver !== undefined && declaration.driver !== 'local')) {
      return void stack.problems.push(`volumes.${name}.driver: volume drivers are not supported; app volumes live in the app's encrypted volume`);
    }
    if (declaration.external) stack.warnings.push(`volumes.${name}.external: the volume is made empty in the app's encrypted volume, not taken from outside`);
  }
  let volume = dnsLabel(name, 32) || 'data';
  while (volume === APP_DATA_VOLUME || [...stack.volumeNames.values()].includes(volume)) volume = `${volume.slice(0, 29)}-v`;
  stack.volumeNames.set(name, volume);
  stack.persistent[volume] = {};
  return volume;
}

function tmpfsList(service: ServiceInput): Exclude<ServiceInput['tmpfs'], undefined | string | { container: string }> {
  return service.tmpfs === undefined ? [] : ([service.tmpfs].flat() as Exclude<ServiceInput['tmpfs'], undefined | string | { container: string }>);
}

function importTmpfs(value: unknown, path: string, service: ServiceInput, { stack }: ServiceContext): void {
  const entries = Array.isArray(value) ? value : [value];
  const list = tmpfsList(service);
  entries.forEach((entry, i) => {
    const at = Array.isArray(value) ? `${path}[${i}]` : path;
    if (typeof entry !== 'string' || !entry.startsWith('/')) return void stack.problems.push(`${at}: must be an absolute container path`);
    const [target, options = ''] = entry.split(':');
    const size = /(?:^|,)size=([^,]+)/.exec(options)?.[1];
    const bytes = size === undefined ? undefined : dockerSize(size);
    if (size !== undefined && bytes === undefined) stack.problems.push(`${at}: size ${size} is not a size such as 64m`);
    list.push(bytes === undefined ? target! : { container: target!, size: bytes });
  });
  service.tmpfs = list;
}

// ---- the five permissions' keys ----

function importDevices(value: unknown, path: string, service: ServiceInput, { stack }: ServiceContext): void {
  if (!Array.isArray(value)) return void stack.problems.push(`${path}: must be a list`);
  const devices: string[] = [];
  value.forEach((entry, i) => {
    const text = isMapping(entry) ? String(entry.source ?? '') : String(entry);
    const [host = '', container] = text.split(':');
    if (!host.startsWith('/dev/') || host.split('/').includes('..')) return void stack.problems.push(`${path}[${i}]: ${text} is not a device under /dev/`);
    if (container !== undefined && container !== host && container.startsWith('/')) {
      stack.warnings.push(`${path}[${i}]: the device is shown inside at ${host}, its path on the device, not at ${container}`);
    }
    devices.push(host);
  });
  service.devices = devices;
}

function importNetworkMode(value: unknown, path: string, service: ServiceInput, { stack }: ServiceContext): void {
  const mode = String(value);
  if (mode === 'bridge' || mode === 'default' || mode === '') service.network_mode = 'app';
  else if (mode === 'host') service.network_mode = 'host';
  else if (mode === 'none') {
    service.network_mode = 'app';
    stack.warnings.push(`${path}: none: the service is on the app's network like the others`);
  } else if (/^(service|container):/.test(mode)) {
    stack.problems.push(`${path}: ${mode} shares another container's network; Piccolo gives each service its own address on the app network`);
  } else stack.problems.push(`${path}: must be bridge or host (got ${mode})`);
}

// ---- healthcheck, depends_on, deploy ----

function importHealthcheck(value: unknown, path: string, service: ServiceInput, { stack }: ServiceContext): void {
  if (!isMapping(value)) return void stack.problems.push(`${path}: must be a mapping`);
  const check: Exclude<ServiceInput['healthcheck'], undefined> = {};
  if (value.disable === true) check.disable = true;
  if (value.test !== undefined) {
    if (typeof value.test === 'string') check.test = value.test;
    else if (Array.isArray(value.test) && value.test.length) {
      const test = value.test.map(String);
      // A list that does not say CMD or CMD-SHELL is one command, as the engine reads it.
      check.test = ['CMD', 'CMD-SHELL', 'NONE'].includes(test[0]!) ? test : ['CMD', ...test];
    } else return void stack.problems.push(`${path}.test: must be a command string or a list such as [CMD, curl, -f, http://localhost]`);
  } else if (!check.disable) {
    return void stack.warnings.push(`${path}: has no test; the image's own check is kept`);
  }
  for (const key of ['interval', 'timeout', 'start_period'] as const) {
    if (value[key] === undefined) continue;
    const ms = durationMs(value[key]);
    if (ms === undefined) stack.problems.push(`${path}.${key}: must be a duration such as 30s`);
    else check[key] = `${ms}ms`;
  }
  if (value.retries !== undefined) {
    if (Number.isInteger(value.retries) && (value.retries as number) >= 0) check.retries = value.retries as number;
    else stack.problems.push(`${path}.retries: must be a whole number`);
  }
  if (value.start_interval !== undefined) stack.warnings.push(`${path}.start_interval: ignored; the interval applies from the start`);
  service.healthcheck = check;
}

const CONDITIONS = new Set<ServiceCondition>(['service_started', 'service_healthy', 'service_completed_successfully']);

function importDependsOn(value: unknown, path: string, service: ServiceInput, { stack }: ServiceContext): void {
  if (Array.isArray(value)) return void (service.depends_on = value.map(String));
  if (!isMapping(value)) return void stack.problems.push(`${path}: must be a list or a mapping of service names`);
  const dependencies: Record<string, { condition?: ServiceCondition }> = {};
  for (const [name, setting] of Object.entries(value)) {
    const condition = isMapping(setting) ? setting.condition : undefined;
    if (condition !== undefined && !CONDITIONS.has(condition as ServiceCondition)) {
      stack.problems.push(`${path}.${name}.condition: must be service_started, service_healthy or service_completed_successfully`);
    }
    dependencies[name] = condition === undefined ? {} : { condition: condition as ServiceCondition };
  }
  service.depends_on = dependencies;
}

function importDeploy(value: unknown, path: string, service: ServiceInput, { stack }: ServiceContext): void {
  if (!isMapping(value)) return void stack.problems.push(`${path}: must be a mapping`);
  for (const [key, setting] of Object.entries(value)) {
    if (key === 'replicas') {
      if (setting !== 1 && setting !== 0) stack.problems.push(`${path}.replicas: an app runs one container per service`);
    } else if (key === 'resources' && isMapping(setting)) {
      const devices = isMapping(setting.reservations) ? setting.reservations.devices : undefined;
      if (devices !== undefined) stack.problems.push(`${path}.resources.reservations.devices: GPUs by driver are not supported; ask for the device (devices: /dev/dri) instead`);
      else stack.warnings.push(`${path}.resources: per-container limits and reservations are not kept; set the app's resources.limits`);
    } else if (key === 'restart_policy' && isMapping(setting) && service.restart === undefined) {
      const condition = setting.condition === 'any' ? 'always' : setting.condition === 'none' ? 'no' : setting.condition;
      if (condition === 'always' || condition === 'no' || condition === 'on-failure') service.restart = condition;
    } else stack.warnings.push(`${path}.${key}: ignored; only used by swarm`);
  }
}

// ---- helpers ----

/** compose durations: "1m30s", "10s", "1.5s", "500ms", "2h"; milliseconds. */
export function durationMs(value: unknown): number | undefined {
  const text = String(value).trim();
  // µ as \u00b5: the bundle must stay ASCII outside its comments (image/ascii-bundle.ts).
  if (!/^(?:\d+(?:\.\d+)?(?:ns|us|\u00b5s|ms|s|m|h))+$/.test(text)) return undefined;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)/g)) total += Number(amount) * units[unit!]!;
  return Math.round(total);
}

/** Docker sizes: a number of bytes or "64m", "1gb", "512k" (powers of 1024). */
export function dockerSize(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.floor(value);
  const match = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?$/i.exec(String(value ?? '').trim());
  if (!match) return undefined;
  return Math.floor(Number(match[1]) * 1024 ** 'bkmgt'.indexOf((match[2] || 'b').toLowerCase()));
}

/** Whether a variable without a value was found at `path` or inside it: refused already. */
function unresolved(stack: StackContext, path: string): boolean {
  return [...stack.unresolved].some((key) => key === path || key.startsWith(`${path}.`) || key.startsWith(`${path}[`));
}

/** compose writes booleans as true/false or, after substitution, "true"/"false". */
function boolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  return value === 'true' ? true : value === 'false' ? false : undefined;
}

function stringList(value: unknown, path: string, stack: StackContext): string[] | undefined {
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value as string[];
  stack.problems.push(`${path}: must be a list of strings`);
  return undefined;
}

export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A name as a DNS label: "My_DB" → "my-db"; a leading digit gets an "app-" prefix. */
export function dnsLabel(text: string, maxLength: number): string {
  const label = text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  if (!label) return '';
  const withLetter = /^[a-z]/.test(label) ? label : `app-${label}`;
  return withLetter.slice(0, maxLength).replace(/-+$/, '');
}
