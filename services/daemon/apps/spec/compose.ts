// Imports one service of a docker-compose file as an app spec. Only the subset with a meaning on
// Piccolo is taken: image, ports, environment, volumes, tmpfs, depends_on, healthcheck and
// resource limits. Keys that would weaken isolation or cannot be honoured (build, privileged,
// host networking, host paths, devices...) are refused by name; harmless ones are dropped with a
// warning, so the person importing knows exactly what changed.
import { BadRequestError } from '../../../common/errors.js';
import { parseYamlMapping } from './safe-yaml.js';
import type { AppSpec, AppSpecInput, ListenerInput, StorageVolumeInput } from './types.js';
import { parseDuration } from './units.js';
import { validateAppSpec } from './validate.js';

const INVALID_COMPOSE = 'cannot import compose file';

export interface ComposeImportOptions {
  /** Which service to import; required when the file defines several. */
  serviceName?: string;
}

export interface ComposeImport {
  spec: AppSpec;
  /** What was dropped or assumed, one sentence each, naming the compose key. */
  warnings: string[];
}

const MAX_NAME = 32;
const MAX_HOST_LABEL = 63;

const TOP_LEVEL_IGNORED = new Set(['version', 'name', 'networks', 'configs', 'secrets']);

const REFUSED: Record<string, string> = {
  build: 'building images is not supported; use a published image',
  privileged: 'privileged containers are not allowed',
  cap_add: 'extra capabilities are not allowed',
  devices: 'device access is not allowed',
  device_cgroup_rules: 'device access is not allowed',
  gpus: 'device access is not allowed',
  pid: 'sharing host namespaces is not allowed',
  ipc: 'sharing host namespaces is not allowed',
  uts: 'sharing host namespaces is not allowed',
  userns_mode: 'sharing host namespaces is not allowed',
  cgroup: 'sharing host namespaces is not allowed',
  cgroup_parent: 'apps run in the cgroups Piccolo gives them',
  security_opt: 'security options cannot be changed',
  sysctls: 'kernel settings cannot be changed',
  volumes_from: "apps cannot use each other's volumes",
  extends: 'extends is not supported; write the service out in full',
  command: 'the app spec has no command; use an image whose default command runs the app',
  entrypoint: 'the app spec has no entrypoint; use an image whose default entrypoint runs the app',
  working_dir: 'the app spec has no working directory; use an image that sets it',
  user: 'the app spec has no user; use an image that sets it',
  env_file: 'files next to the compose file are not uploaded; put the variables under environment',
  configs: 'configs are not supported; use environment or a persistent volume',
  secrets: 'secrets are not supported; use environment or a persistent volume',
  extra_hosts: 'apps cannot change host name resolution',
  external_links: "apps cannot link to containers outside Piccolo's control",
};

const IGNORED: Record<string, string> = {
  container_name: 'Piccolo names the container',
  hostname: 'Piccolo names the container',
  domainname: 'Piccolo names the container',
  restart: 'Piccolo restarts apps itself',
  networks: 'each app gets its own network',
  links: 'each app gets its own network',
  expose: 'only ports under ports become listeners',
  dns: 'Piccolo provides name resolution',
  dns_search: 'Piccolo provides name resolution',
  labels: 'not used by Piccolo',
  logging: 'Piccolo collects container logs itself',
  stop_grace_period: 'Piccolo stops apps with its own timeout',
  stop_signal: 'Piccolo stops apps with its own signal',
  platform: 'the image for the device is pulled',
  pull_policy: 'Piccolo pulls images itself',
  profiles: 'not used by Piccolo',
  tty: 'not used by Piccolo',
  stdin_open: 'not used by Piccolo',
  init: 'not used by Piccolo',
  cap_drop: 'apps already run without extra capabilities',
  read_only: 'Piccolo manages the container filesystem',
};

type ServiceKeyHandler = (value: unknown, context: ImportContext) => void;

interface ImportContext {
  service: string;
  /** "services.<name>" for messages. */
  base: string;
  appName: string;
  topLevelVolumes: Record<string, unknown>;
  spec: AppSpecInput & { storage: { persistent: Record<string, StorageVolumeInput>; temporary: Record<string, StorageVolumeInput> } };
  problems: string[];
  warnings: string[];
}

// Run in this order, whatever the order in the file: the healthcheck refers to a listener.
const HANDLERS: Record<string, ServiceKeyHandler> = {
  image: importImage,
  ports: importPorts,
  environment: importEnvironment,
  volumes: importVolumes,
  tmpfs: importTmpfs,
  depends_on: importDependsOn,
  deploy: importDeploy,
  mem_limit: (value, context) => setMemory(value, `${context.base}.mem_limit`, context),
  cpus: (value, context) => setCpu(value, `${context.base}.cpus`, context),
  healthcheck: importHealthcheck,
};

export function importCompose(text: string, { serviceName }: ComposeImportOptions = {}): ComposeImport {
  const doc = parseYamlMapping(text, INVALID_COMPOSE);
  const problems: string[] = [];
  for (const key of Object.keys(doc)) {
    if (key !== 'services' && key !== 'volumes' && !TOP_LEVEL_IGNORED.has(key) && !key.startsWith('x-')) {
      problems.push(`${key}: not a compose key Piccolo can import`);
    }
  }
  const services = doc.services;
  if (!isMapping(services) || Object.keys(services).length === 0) throw new BadRequestError(INVALID_COMPOSE, [...problems, 'services: must define at least one service']);
  const service = chooseService(Object.keys(services), serviceName);
  const definition = services[service];
  if (!isMapping(definition)) throw new BadRequestError(INVALID_COMPOSE, [`services.${service}: must be a mapping`]);

  const appName = dnsName(service, MAX_NAME);
  const base = `services.${service}`;
  const context: ImportContext = {
    service,
    base,
    appName,
    topLevelVolumes: isMapping(doc.volumes) ? doc.volumes : {},
    spec: { name: appName, image: '', listeners: [], storage: { persistent: {}, temporary: {} }, permissions: { network: { internet: 'allow' } } },
    problems,
    warnings: [`${base}: internet access is allowed, as under compose; set permissions.network.internet: deny to cut it off`],
  };
  for (const [key, value] of Object.entries(definition)) {
    const path = `${base}.${key}`;
    if (key === 'network_mode') problems.push(`${path}: ${value === 'host' ? 'host networking is not allowed' : 'not supported'}; each app gets its own network`);
    else if (REFUSED[key]) problems.push(`${path}: ${REFUSED[key]}`);
    else if (IGNORED[key]) context.warnings.push(`${path}: ignored; ${IGNORED[key]}`);
    else if (!HANDLERS[key] && !key.startsWith('x-')) problems.push(`${path}: not supported by the Piccolo app spec`);
  }
  for (const [key, handle] of Object.entries(HANDLERS)) {
    if (definition[key] !== undefined) handle(definition[key], context);
  }
  if (definition.image === undefined) problems.push(`${base}.image: is required; building images is not supported`);
  if (definition.ports === undefined) problems.push(`${base}.ports: an app needs at least one published port to become a listener`);
  if (problems.length) throw new BadRequestError(INVALID_COMPOSE, problems);
  return { spec: validateAppSpec(context.spec), warnings: context.warnings };
}

function chooseService(names: string[], wanted: string | undefined): string {
  if (wanted !== undefined) {
    if (names.includes(wanted)) return wanted;
    throw new BadRequestError(INVALID_COMPOSE, [`services: there is no service ${wanted}; the file defines ${names.join(', ')}`]);
  }
  if (names.length === 1) return names[0]!;
  throw new BadRequestError(INVALID_COMPOSE, [`services: the file defines ${names.length} services (${names.join(', ')}); choose one with serviceName`]);
}

function importImage(value: unknown, context: ImportContext): void {
  const path = `${context.base}.image`;
  if (typeof value !== 'string' || value === '') context.problems.push(`${path}: must be an image reference`);
  else if (value.includes('$')) context.problems.push(`${path}: variables (${value}) are not substituted; write the image out`);
  else context.spec.image = value;
}

// ---- ports → listeners ----

function importPorts(value: unknown, context: ImportContext): void {
  const path = `${context.base}.ports`;
  if (!Array.isArray(value)) return void context.problems.push(`${path}: must be a list`);
  const guestPorts: number[] = [];
  value.forEach((entry, i) => {
    const port = containerPort(entry, `${path}[${i}]`, context);
    if (port === undefined) return;
    if (guestPorts.includes(port)) context.warnings.push(`${path}[${i}]: container port ${port} is published twice; one listener serves it`);
    else guestPorts.push(port);
  });
  // One port: the listener is named after the service; several: after the service and the port.
  const maxListenerName = Math.min(MAX_NAME, MAX_HOST_LABEL - 1 - context.appName.length);
  context.spec.listeners = guestPorts.map((port): ListenerInput => {
    const name = guestPorts.length === 1 ? dnsName(context.service, maxListenerName) : `${dnsName(context.service, maxListenerName - String(port).length - 1)}-${port}`;
    return { name, guest_port: port, flow: 'tcp', protocol: 'http' };
  });
  if (guestPorts.length) context.warnings.push(`${path}: listeners are assumed to speak HTTP; set protocol: raw or websocket in the app spec where they do not`);
}

/** "8080:80", "127.0.0.1:8080:80/tcp", 80 or { target: 80 } → 80; host ports are not used. */
function containerPort(entry: unknown, path: string, context: ImportContext): number | undefined {
  if (typeof entry === 'number') return checkedPort(String(entry), path, context);
  if (isMapping(entry)) {
    if (entry.protocol !== undefined && entry.protocol !== 'tcp') return void context.problems.push(`${path}.protocol: only tcp ports can become listeners`);
    if (entry.published !== undefined) context.warnings.push(`${path}.published: ignored; Piccolo publishes listeners at their own address`);
    return checkedPort(String(entry.target), `${path}.target`, context);
  }
  if (typeof entry !== 'string') return void context.problems.push(`${path}: must be a port such as "8080:80"`);
  const [mapping, protocol = 'tcp'] = entry.split('/');
  if (protocol !== 'tcp') return void context.problems.push(`${path}: only tcp ports can become listeners (got ${protocol})`);
  const separator = mapping!.lastIndexOf(':');
  if (separator !== -1) context.warnings.push(`${path}: host port ${mapping!.slice(0, separator)} ignored; Piccolo publishes listeners at their own address`);
  return checkedPort(mapping!.slice(separator + 1), path, context);
}

function checkedPort(text: string, path: string, context: ImportContext): number | undefined {
  if (text.includes('-')) return void context.problems.push(`${path}: port ranges (${text}) are not supported; list each port`);
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535) return void context.problems.push(`${path}: must be a port 1-65535 (got ${text})`);
  return port;
}

// ---- environment ----

function importEnvironment(value: unknown, context: ImportContext): void {
  const path = `${context.base}.environment`;
  let entries: [string, unknown][];
  if (Array.isArray(value)) {
    entries = value.map((item): [string, unknown] => {
      const text = String(item);
      const equals = text.indexOf('=');
      return equals === -1 ? [text, null] : [text.slice(0, equals), text.slice(equals + 1)];
    });
  } else if (isMapping(value)) {
    entries = Object.entries(value);
  } else {
    return void context.problems.push(`${path}: must be a list of NAME=value or a mapping`);
  }
  const environment: [string, string][] = [];
  for (const [name, raw] of entries) {
    if (raw === null || raw === undefined) context.warnings.push(`${path}.${name}: has no value (compose takes it from the shell); dropped`);
    else if (typeof raw === 'object') context.problems.push(`${path}.${name}: must be a string, number or boolean`);
    else {
      if (String(raw).includes('${')) context.warnings.push(`${path}.${name}: variables are not substituted; the value is kept as written`);
      environment.push([name, String(raw)]);
    }
  }
  context.spec.environment = Object.fromEntries(environment);
}

// ---- volumes and tmpfs → storage ----

function importVolumes(value: unknown, context: ImportContext): void {
  const path = `${context.base}.volumes`;
  if (!Array.isArray(value)) return void context.problems.push(`${path}: must be a list`);
  value.forEach((entry, i) => importVolume(entry, `${path}[${i}]`, context));
}

function importVolume(entry: unknown, path: string, context: ImportContext): void {
  let type: unknown = 'volume';
  let source: unknown;
  let target: unknown;
  let readOnly = false;
  if (typeof entry === 'string') {
    const parts = entry.split(':');
    [source, target] = parts.length === 1 ? [undefined, parts[0]] : parts;
    readOnly = (parts[2] ?? '').split(',').includes('ro');
    if (typeof source === 'string' && /^[./~]/.test(source)) type = 'bind';
  } else if (isMapping(entry)) {
    ({ type = 'volume', source, target } = entry);
    readOnly = entry.read_only === true;
  } else {
    return void context.problems.push(`${path}: must be "volume:/path" or a mapping`);
  }
  if (typeof target !== 'string') return void context.problems.push(`${path}: must name a container path`);
  if (type === 'bind') {
    return void context.problems.push(`${path}: host path ${String(source)} cannot be mounted; an app only gets its own encrypted volume (use a named volume such as data:${target})`);
  }
  if (type === 'tmpfs') return addVolume('temporary', target, target, path, context);
  if (type !== 'volume') return void context.problems.push(`${path}: volumes of type ${String(type)} are not supported`);
  if (readOnly) context.warnings.push(`${path}: read-only is ignored; the volume is mounted read-write`);
  if (typeof source === 'string') checkTopLevelVolume(source, context);
  addVolume('persistent', typeof source === 'string' ? source : target, target, path, context);
}

/** Named volumes must be plain ones: Piccolo puts them in the app's encrypted volume. */
function checkTopLevelVolume(name: string, context: ImportContext): void {
  const declaration = context.topLevelVolumes[name];
  if (!isMapping(declaration)) return;
  for (const key of ['external', 'driver', 'driver_opts']) {
    if (declaration[key] !== undefined) context.problems.push(`volumes.${name}.${key}: not supported; app volumes live in the app's encrypted volume`);
  }
}

function importTmpfs(value: unknown, context: ImportContext): void {
  const path = `${context.base}.tmpfs`;
  const entries = Array.isArray(value) ? value : [value];
  entries.forEach((entry, i) => {
    const entryPath = Array.isArray(value) ? `${path}[${i}]` : path;
    if (typeof entry !== 'string') return void context.problems.push(`${entryPath}: must be a container path`);
    const [target, options] = entry.split(':');
    if (options) context.warnings.push(`${entryPath}: options ${options} ignored`);
    addVolume('temporary', target!, target!, entryPath, context);
  });
}

function addVolume(kind: 'persistent' | 'temporary', nameSource: string, container: string, path: string, context: ImportContext): void {
  const name = dnsName(nameSource.split('/').filter(Boolean).pop() ?? 'data', MAX_NAME);
  const { storage } = context.spec;
  if (storage.persistent[name] || storage.temporary[name]) {
    return void context.problems.push(`${path}: volume ${name} is mounted twice; each volume is mounted once in an app`);
  }
  storage[kind][name] = { container };
}

// ---- depends_on, healthcheck, resources ----

function importDependsOn(value: unknown, context: ImportContext): void {
  const path = `${context.base}.depends_on`;
  const names = Array.isArray(value) ? value.map(String) : isMapping(value) ? Object.keys(value) : undefined;
  if (!names) return void context.problems.push(`${path}: must be a list or a mapping of service names`);
  if (isMapping(value) && Object.values(value).some((v) => isMapping(v) && v.condition !== undefined && v.condition !== 'service_started')) {
    context.warnings.push(`${path}: conditions are ignored; the app waits for its dependencies to be started`);
  }
  context.spec.depends_on = names.map((name) => dnsName(name, MAX_NAME));
  if (names.length) context.warnings.push(`${path}: ${names.join(', ')}: import each as an app of its own (serviceName: ${names[0]})`);
}

const PROBE_URL = /^(?:.*\s)?(?:curl|wget)\s.*?http:\/\/(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])(?::(\d+))?(\/[^\s'"|;&]*)?/;

function importHealthcheck(value: unknown, context: ImportContext): void {
  const path = `${context.base}.healthcheck`;
  if (!isMapping(value)) return void context.problems.push(`${path}: must be a mapping`);
  if (value.disable === true) return;
  const test = Array.isArray(value.test) ? value.test.map(String) : [String(value.test)];
  if (test[0] === 'NONE') return;
  const command = test[0] === 'CMD' || test[0] === 'CMD-SHELL' ? test.slice(1).join(' ') : test.join(' ');
  const probe = PROBE_URL.exec(command);
  if (!probe) return void context.warnings.push(`${path}.test: only curl or wget probes of http://localhost can be imported; health checking is off`);
  const port = Number(probe[1] ?? 80);
  const listener = context.spec.listeners.find((l) => l.guest_port === port);
  if (!listener) return void context.warnings.push(`${path}.test: the probe's port ${port} is not published under ports; health checking is off`);

  const http: NonNullable<AppSpecInput['healthcheck']>['http'] = { path: probe[2] ?? '/', port: listener.name };
  if (value.timeout !== undefined) {
    if (typeof value.timeout === 'string' && parseDuration(value.timeout) !== undefined) http.timeout = value.timeout;
    else context.warnings.push(`${path}.timeout: ${String(value.timeout)} is not a duration such as 30s; the default is used`);
  }
  if (value.retries !== undefined) {
    if (Number.isInteger(value.retries) && (value.retries as number) >= 1 && (value.retries as number) <= 100) http.retries = value.retries as number;
    else context.warnings.push(`${path}.retries: must be 1-100; the default is used`);
  }
  for (const key of ['interval', 'start_period', 'start_interval']) {
    if (value[key] !== undefined) context.warnings.push(`${path}.${key}: ignored; Piccolo probes on its own schedule`);
  }
  context.spec.healthcheck = { http };
}

function importDeploy(value: unknown, context: ImportContext): void {
  const path = `${context.base}.deploy`;
  if (!isMapping(value)) return void context.problems.push(`${path}: must be a mapping`);
  for (const [key, setting] of Object.entries(value)) {
    if (key === 'replicas' && setting !== 1) context.problems.push(`${path}.replicas: an app runs one container`);
    else if (key === 'resources' && isMapping(setting)) {
      const limits = isMapping(setting.limits) ? setting.limits : {};
      if (limits.memory !== undefined) setMemory(limits.memory, `${path}.resources.limits.memory`, context);
      if (limits.cpus !== undefined) setCpu(limits.cpus, `${path}.resources.limits.cpus`, context);
      if (setting.reservations !== undefined) context.warnings.push(`${path}.resources.reservations: ignored; only limits are used`);
    } else if (key !== 'replicas') context.warnings.push(`${path}.${key}: ignored`);
  }
}

const DOCKER_SIZE = /^(\d+)\s*([bkmg]?)b?$/i;
const BINARY_UNITS: [string, number][] = [['Gi', 2 ** 30], ['Mi', 2 ** 20], ['Ki', 2 ** 10]];

/** Docker sizes are powers of 1024 ("512m" is 512 MiB); the app spec writes that as 512Mi. */
function setMemory(value: unknown, path: string, context: ImportContext): void {
  const match = DOCKER_SIZE.exec(String(value));
  if (!match) return void context.problems.push(`${path}: must be a size such as 512m or 1g`);
  const bytes = Number(match[1]) * 1024 ** 'bkmg'.indexOf((match[2] || 'b').toLowerCase());
  const [unit, size] = BINARY_UNITS.find(([, size]) => bytes % size === 0) ?? ['', 1];
  context.spec.resources = { limits: { ...context.spec.resources?.limits, memory: `${bytes / size}${unit}` } };
}

function setCpu(value: unknown, path: string, context: ImportContext): void {
  const cpu = Number(value);
  if (!Number.isFinite(cpu) || cpu <= 0) return void context.problems.push(`${path}: must be a number of cores such as 0.5`);
  context.spec.resources = { limits: { ...context.spec.resources?.limits, cpu } };
}

// ---- helpers ----

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A compose name as a DNS label: "My_DB" → "my-db"; a leading digit gets an "app-" prefix. */
function dnsName(text: string, maxLength: number): string {
  const label = text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  const withLetter = /^[a-z]/.test(label) ? label : `app-${label}`;
  return withLetter.slice(0, maxLength).replace(/-+$/, '');
}
