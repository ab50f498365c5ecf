// Imports a whole docker-compose stack as one multi-container app spec: every service a
// container on the app's network, bind mounts of app data as folders of the app's encrypted
// volume, variables substituted from the file's defaults and from what Piccolo provides. The
// app stores' forms come through here too: an Umbrel app folder (umbrel-app.yml with its
// app_proxy service, import/umbrel.ts) and CasaOS's x-casaos metadata (import/casaos.ts).
// What cannot be honoured is refused naming the key and the reason; what changes meaning is
// said in a warning; what leaves the fortress (host network, devices, capabilities, the engine
// socket, privileged, shared folders) becomes a permission the person grants at install.
import { BadRequestError } from '../../../common/errors.js';
import type { AppAbout, MainListener } from './import/about.js';
import { casaosListener, casaosMeta } from './import/casaos.js';
import { APP_DATA_ROOT, UMBREL_ROOT } from './import/mounts.js';
import { guessProtocol, isLoopback } from './import/ports.js';
import { WELL_KNOWN_PUBLIC_PORTS } from './public-port.js';
import { SecretBox, isSecretName } from './import/secrets.js';
import { dnsLabel, importService, isMapping, type StackContext } from './import/service.js';
import { parseUmbrelManifest, resolveAppHost, umbrelDependencyWarnings, umbrelMeta, type UmbrelManifest } from './import/umbrel.js';
import { parseEnvFile, substitute } from './import/variables.js';
import { parseYamlMapping } from './safe-yaml.js';
import type { AppSpec, AppSpecInput, ListenerInput, ServiceInput } from './types.js';
import { validateAppSpec } from './validate.js';

export const INVALID_COMPOSE = 'cannot import compose file';

export type { AppAbout } from './import/about.js';

export interface ComposeImportOptions {
  /** Only this service (and the services it depends on); without it, the whole stack. */
  serviceName?: string;
  /** The app's name; otherwise the file's (Umbrel id, CasaOS store id, top-level name, the one service). */
  name?: string;
  /** The .env next to the compose file: defaults for ${VAR}. */
  env?: string;
  /** Files named by env_file:, by the name written there. */
  envFiles?: Record<string, string>;
  /** Values the person gave; they win over everything else. */
  variables?: Record<string, string>;
  /** The app's kept secrets (AppSecretStore.kept), so an update reuses them. */
  keptSecrets?: (app: string) => Readonly<Record<string, string>>;
  /** The device's host name (DEVICE_HOSTNAME); DEVICE_DOMAIN_NAME is <it>.local. */
  deviceName?: string;
  /** TZ for the app; the device's zone. */
  timezone?: string;
  random?: (bytes: number) => Buffer;
}

export interface ComposeImport {
  spec: AppSpec;
  /** What was dropped or assumed, one sentence each, naming the compose key. */
  warnings: string[];
  /** Secrets made up by this import that the app did not have; keep them on install (AppSecretStore.keep). */
  secrets: Record<string, string>;
  about: AppAbout;
}

const TOP_LEVEL_KEYS = new Set(['services', 'volumes', 'networks', 'name', 'version', 'configs', 'secrets']);

/** Each DNS label is at most 63 characters and a listener answers at <listener>-<app>. */
const MAX_NAME = 32;
const MAX_HOST_LABEL = 63;
const RESERVED = new Set(['api', 'www', 'admin', 'root', 'system', 'piccolo', 'piccoloos']);

export function importCompose(text: string, options: ComposeImportOptions = {}): ComposeImport {
  return importStack(parseYamlMapping(text, INVALID_COMPOSE), options);
}

/** An Umbrel app folder: umbrel-app.yml and docker-compose.yml. */
export function importUmbrelApp(files: { manifest: string; compose: string }, options: ComposeImportOptions = {}): ComposeImport {
  const manifest = parseUmbrelManifest(files.manifest);
  return importStack(parseYamlMapping(files.compose, INVALID_COMPOSE), options, manifest);
}

function importStack(doc: Record<string, unknown>, options: ComposeImportOptions, manifest?: UmbrelManifest): ComposeImport {
  const problems: string[] = [];
  const warnings: string[] = manifest ? umbrelDependencyWarnings(manifest) : [];
  for (const key of Object.keys(doc)) {
    if (key === 'include') problems.push('include: other compose files are not uploaded; paste one file with every service');
    else if (!TOP_LEVEL_KEYS.has(key) && !key.startsWith('x-')) problems.push(`${key}: not a compose key Piccolo knows`);
  }
  if (!isMapping(doc.services) || Object.keys(doc.services).length === 0) throw new BadRequestError(INVALID_COMPOSE, [...problems, 'services: must define at least one service']);
  const written = doc.services;
  const casaos = isMapping(doc['x-casaos']) ? doc['x-casaos'] : undefined;

  // Umbrel's app_proxy is umbrelOS's own proxy in front of the app: its APP_HOST/APP_PORT say
  // where the web interface is, which on Piccolo is a listener.
  const proxy = isMapping(written.app_proxy) && written.app_proxy.image === undefined ? written.app_proxy : undefined;
  const kept = chooseServices(written, options.serviceName, warnings, proxy !== undefined);

  const appName = chooseAppName(doc, options, manifest, casaos, kept, warnings);
  const secrets = new SecretBox(options.keptSecrets?.(appName) ?? {}, options.random);
  const provided = providedVariables(appName, options, secrets, written);
  // compose reads a .env's values with the variables before them (Umbrel's exports.sh does the same).
  const env: Record<string, string> = {};
  for (const [name, raw] of Object.entries(options.env === undefined ? {} : parseEnvFile(options.env))) {
    env[name] = substitute(raw, { value: (inner) => options.variables?.[inner] ?? provided(inner) ?? env[inner] }).value;
  }
  const lookups = {
    value: (name: string) => options.variables?.[name] ?? provided(name) ?? env[name],
    // Another Umbrel app's password (APP_BITCOIN_RPC_PASS) is that app's, not one to make up.
    fallback: (name: string) => (isSecretName(name) && !otherUmbrelApp(name, appName) ? secrets.get(name) : undefined),
  };
  const unresolved = new Set<string>();
  const substituted = (value: unknown, path: string) => substituteTree(value, path, lookups, problems, unresolved, appName);

  const serviceNames = new Map<string, string>();
  for (const original of kept) {
    let name = dnsLabel(original, MAX_NAME) || 'service';
    while ([...serviceNames.values()].includes(name)) name = `${name.slice(0, MAX_NAME - 2)}-2`;
    serviceNames.set(original, name);
  }
  const stack: StackContext = {
    problems,
    warnings,
    topVolumes: isMapping(doc.volumes) ? (substituted(doc.volumes, 'volumes') as Record<string, unknown>) : {},
    persistent: {},
    volumeNames: new Map(),
    published: [],
    aliases: new Map(),
    serviceNames,
    wantsTimezone: new Set(),
    // env_file: .env is the .env the person gave, when they did not give it again by name.
    envFiles: { ...(options.env !== undefined && { '.env': options.env }), ...options.envFiles },
    lookup: (name) => lookups.value(name) ?? lookups.fallback(name),
    unresolved,
  };
  const services: Record<string, ServiceInput> = {};
  for (const original of kept) {
    const definition = substituted(written[original], `services.${original}`);
    if (!isMapping(definition)) {
      problems.push(`services.${original}: must be a mapping`);
      continue;
    }
    services[serviceNames.get(original)!] = importService(original, serviceNames.get(original)!, definition, stack);
  }
  linkServices(services, written, stack);

  const listeners = buildListeners(appName, stack, {
    umbrel: proxy ? resolveAppHost(substituted(proxy, 'services.app_proxy') as Record<string, unknown>, services, stack) : undefined,
    casaos: casaos ? casaosListener(casaos, services, stack, (text) => substitute(text, lookups).value) : undefined,
  });
  if (listeners.length === 0 && !problems.length) {
    problems.push('services: no service publishes a port (ports:), so the app would have no listener; publish the web interface\'s port');
  }
  if (problems.length) throw new BadRequestError(INVALID_COMPOSE, [...new Set(problems)]);

  const generated = Object.keys(secrets.generated);
  if (generated.length) warnings.push(`variables: ${generated.join(', ')} ${generated.length === 1 ? 'is a secret' : 'are secrets'} made for this app, kept across updates and removed with its data`);
  warnings.push('permissions.network.internet: allowed, as under compose; set it to deny in the app spec to cut the app off the internet');
  const input: AppSpecInput = {
    name: appName,
    services,
    listeners,
    ...(Object.keys(stack.persistent).length && { storage: { persistent: stack.persistent } }),
    permissions: { network: { internet: 'allow' } },
  };
  let spec: AppSpec;
  try {
    spec = validateAppSpec(input);
  } catch (err) {
    // The validator names the spec's paths (services.<name>...), which follow the compose file's.
    if (err instanceof BadRequestError) throw new BadRequestError(INVALID_COMPOSE, err.details as string[]);
    throw err;
  }
  const about: AppAbout = manifest
    ? umbrelMeta(manifest, (text) => substitute(text, lookups).value)
    : casaos
      ? casaosMeta(casaos)
      : { source: 'compose' };
  return { spec, warnings: [...new Set(warnings)], secrets: secrets.generated, about };
}

/** The services to import: all but Umbrel's app_proxy and those behind a compose profile; or one and what it needs. */
function chooseServices(written: Record<string, unknown>, wanted: string | undefined, warnings: string[], umbrelProxy: boolean): string[] {
  let names = Object.keys(written).filter((name) => !(umbrelProxy && name === 'app_proxy'));
  const profiled = names.filter((name) => isMapping(written[name]) && (written[name] as Record<string, unknown>).profiles !== undefined);
  for (const name of profiled) warnings.push(`services.${name}.profiles: the service is only started with its profile; left out`);
  names = names.filter((name) => !profiled.includes(name));
  if (wanted === undefined) return names;
  if (!names.includes(wanted)) throw new BadRequestError(INVALID_COMPOSE, [`services: there is no service ${wanted}; the file defines ${Object.keys(written).join(', ')}`]);
  const chosen = new Set<string>();
  const visit = (name: string) => {
    if (chosen.has(name) || !names.includes(name)) return;
    chosen.add(name);
    const dependsOn = (written[name] as Record<string, unknown> | undefined)?.depends_on;
    for (const dependency of Array.isArray(dependsOn) ? dependsOn.map(String) : isMapping(dependsOn) ? Object.keys(dependsOn) : []) visit(dependency);
  };
  visit(wanted);
  return names.filter((name) => chosen.has(name));
}

function chooseAppName(
  doc: Record<string, unknown>,
  options: ComposeImportOptions,
  manifest: UmbrelManifest | undefined,
  casaos: Record<string, unknown> | undefined,
  services: string[],
  warnings: string[],
): string {
  const candidates = [options.name, manifest?.id, typeof doc.name === 'string' && !doc.name.includes('$') ? doc.name : undefined, casaos?.store_app_id, casaos?.main];
  const written = candidates.find((value): value is string => typeof value === 'string' && value.trim() !== '') ?? mainOfStack(doc, services);
  let name = dnsLabel(written, MAX_NAME) || 'app';
  if (RESERVED.has(name)) {
    warnings.push(`name: ${name} is reserved on Piccolo; the app is called ${name}-app`);
    name = `${name}-app`;
  }
  if (options.name === undefined && name !== written) warnings.push(`name: the app is called ${name} (a DNS label made from ${written})`);
  return name;
}

const GENERIC_NAMES = new Set(['server', 'app', 'web', 'main', 'frontend', 'backend', 'api', 'ui', 'core', 'application', 'service', 'webserver', 'http']);

/**
 * A stack without a name: the service that publishes a port (else the first), or, when that is
 * called something like "server", its image's name (gitea/gitea → gitea, goauthentik/server → goauthentik).
 */
function mainOfStack(doc: Record<string, unknown>, services: string[]): string {
  const all = doc.services as Record<string, unknown>;
  const main = services.find((name) => isMapping(all[name]) && (all[name] as Record<string, unknown>).ports !== undefined) ?? services[0] ?? 'app';
  if (!GENERIC_NAMES.has(main.toLowerCase())) return main;
  const image = isMapping(all[main]) ? (all[main] as Record<string, unknown>).image : undefined;
  if (typeof image !== 'string' || image.includes('$')) return main;
  const parts = image.split(/[@:]/)[0]!.split('/').filter((part) => !part.includes('.'));
  return [...parts].reverse().find((part) => !GENERIC_NAMES.has(part.toLowerCase())) ?? main;
}

/**
 * Variables Piccolo provides, as umbrelOS and CasaOS do for their files: the app's data folder, the
 * device's name, the app's generated password and seed, CasaOS's PUID/PGID/TZ/AppID, and old Umbrel
 * files' per-service IP variables (a service's networks.default.ipv4_address), which on Piccolo
 * are the service's name.
 */
function providedVariables(appName: string, options: ComposeImportOptions, secrets: SecretBox, written: Record<string, unknown>): (name: string) => string | undefined {
  const device = options.deviceName ?? 'piccolo';
  const fixed: Record<string, string> = {
    APP_DATA_DIR: APP_DATA_ROOT,
    // ${PWD}/data is the folder of the compose file, which on Piccolo is the app's data.
    PWD: APP_DATA_ROOT,
    COMPOSE_PROJECT_NAME: appName,
    UMBREL_ROOT,
    APP_ID: appName,
    AppID: appName,
    DEVICE_HOSTNAME: device,
    DEVICE_DOMAIN_NAME: `${device}.local`,
    TZ: options.timezone ?? 'UTC',
    PUID: '1000',
    PGID: '1000',
  };
  for (const [original, definition] of Object.entries(written)) {
    const networks = isMapping(definition) && isMapping(definition.networks) ? definition.networks : {};
    for (const network of Object.values(networks)) {
      const address = isMapping(network) ? network.ipv4_address : undefined;
      const variable = typeof address === 'string' ? /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/.exec(address)?.[1] : undefined;
      if (variable) fixed[variable] = dnsLabel(original, MAX_NAME);
    }
  }
  return (name) => (name === 'APP_PASSWORD' || name === 'APP_SEED' ? secrets.get(name) : Object.hasOwn(fixed, name) ? fixed[name] : undefined);
}

/** Substitutes variables in every string of a value (not in keys, not in x- extensions). */
function substituteTree(value: unknown, path: string, lookups: Parameters<typeof substitute>[1], problems: string[], unresolved: Set<string>, app: string): unknown {
  if (typeof value === 'string') {
    const result = substitute(value, lookups);
    if (result.undefined.length || result.required.length) unresolved.add(path);
    for (const name of result.undefined) problems.push(`${path}: ${undefinedVariable(name, app)}`);
    for (const { name, message } of result.required) problems.push(`${path}: the variable ${name} is required: ${message}`);
    return result.value;
  }
  if (Array.isArray(value)) return value.map((item, i) => substituteTree(item, `${path}[${i}]`, lookups, problems, unresolved, app));
  if (isMapping(value)) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, key.startsWith('x-') ? item : substituteTree(item, `${path}.${key}`, lookups, problems, unresolved, app)]));
  }
  return value;
}

/** Umbrel apps whose exports other apps' files use (APP_BITCOIN_NODE_IP...); not the app's own (APP_<ITS ID>_...). */
function otherUmbrelApp(name: string, app: string): string | undefined {
  if (name.startsWith(`APP_${app.toUpperCase().replace(/-/g, '_')}_`)) return undefined;
  return /^APP_(BITCOIN|LIGHTNING|CORE_LIGHTNING|ELECTRS|FULCRUM|LND|MEMPOOL)_/.exec(name)?.[1];
}

/** Why a variable has no value, with what umbrelOS or CasaOS would have given it where Piccolo cannot. */
function undefinedVariable(name: string, app: string): string {
  if (name.startsWith('$')) return `${name} is not a variable compose can substitute`;
  if (name === 'HOME' || name === 'USERPROFILE') return `the variable ${name} is the host's home folder, which an app cannot use`;
  if (/^TOR_|HIDDEN_SERVICE/.test(name)) return `the variable ${name} is umbrelOS's Tor service, which Piccolo does not have`;
  const umbrelApp = otherUmbrelApp(name, app);
  if (umbrelApp) return `the variable ${name} comes from the Umbrel app ${umbrelApp.toLowerCase().replace('_', '-')}, which Piccolo does not provide; give it in variables`;
  return `the variable ${name} is not defined; give it in variables or in the .env file`;
}

/**
 * depends_on by Piccolo's service names, and the other names a service had in compose
 * (container_name, hostname, links aliases, Umbrel's <app>_<service>_1, its name before it became
 * a DNS label) rewritten to its service name wherever a value names it: the app network knows
 * each container by its service name only.
 */
function linkServices(services: Record<string, ServiceInput>, written: Record<string, unknown>, stack: StackContext): void {
  const { serviceNames, aliases } = stack;
  for (const [original, name] of serviceNames) if (original !== name) aliases.set(original, name);
  for (const [original, dependsOn] of Object.entries(services).map(([name, s]) => [name, s.depends_on] as const)) {
    if (dependsOn === undefined) continue;
    const path = `services.${[...serviceNames].find(([, n]) => n === original)?.[0] ?? original}.depends_on`;
    const resolve = (dependency: string): string | undefined => {
      if (serviceNames.has(dependency)) return serviceNames.get(dependency);
      if (dependency in written) return undefined; // app_proxy, or a service behind a profile: not imported
      stack.problems.push(`${path}: ${dependency} is not a service of this file`);
      return undefined;
    };
    if (Array.isArray(dependsOn)) services[original]!.depends_on = dependsOn.map(resolve).filter((d): d is string => d !== undefined);
    else services[original]!.depends_on = Object.fromEntries(Object.entries(dependsOn).flatMap(([d, c]) => (resolve(d) ? [[resolve(d)!, c]] : [])));
  }
  // A service others wait to see finish (a migration, an init job) runs once: unless the file says
  // otherwise it is not restarted when it exits, as under compose.
  for (const service of Object.values(services)) {
    if (Array.isArray(service.depends_on) || service.depends_on === undefined) continue;
    for (const [dependency, { condition }] of Object.entries(service.depends_on)) {
      if (condition === 'service_completed_successfully' && services[dependency] && services[dependency]!.restart === undefined) services[dependency]!.restart = 'no';
    }
  }
  const names = [...serviceNames.keys()];
  // A container name is rewritten where it is surely a host: in a URL (scheme://db:5432, user@db),
  // as host:port, or as the whole value of a variable whose name says host. POSTGRES_USER=gitea,
  // where gitea is also a container_name, stays as written.
  const rename = (value: string, hostKey: boolean): string => {
    let result = value;
    for (const [alias, name] of aliases) result = replaceHost(result, alias, name, hostKey);
    // Umbrel's container names, <app id>_<service>_1 (compose v1) or <app id>-<service>-1 (v2), are never anything else.
    for (const original of names) {
      result = result.replace(new RegExp(`(^|[^A-Za-z0-9_.-])[A-Za-z0-9-]+[_-]${escape(original)}[_-]1(?=$|[^A-Za-z0-9_.-])`, 'g'), `$1${serviceNames.get(original)}`);
    }
    return result;
  };
  const renamed = new Set<string>();
  for (const [name, service] of Object.entries(services)) {
    for (const [key, value] of Object.entries((service.environment ?? {}) as Record<string, string>)) {
      const next = rename(value, HOST_KEY.test(key));
      if (next !== value) {
        (service.environment as Record<string, string>)[key] = next;
        renamed.add(name);
      }
    }
    for (const key of ['command', 'entrypoint'] as const) {
      const value = service[key];
      if (value === undefined) continue;
      const next = typeof value === 'string' ? rename(value, false) : value.map((part) => rename(part, false));
      if (JSON.stringify(next) !== JSON.stringify(value)) {
        service[key] = next;
        renamed.add(name);
      }
    }
    if (stack.wantsTimezone.has(name)) {
      const environment = (service.environment ??= {}) as Record<string, string>;
      environment.TZ ??= 'UTC';
    }
  }
  for (const name of renamed) stack.warnings.push(`services.${name}: container names in its environment or command are written as service names, which is how the app's containers find each other on Piccolo`);
}

/** Variables whose whole value is a host name: DB_HOST, REDIS_HOSTNAME, MYSQL_SERVER, BROKER_ADDR. */
const HOST_KEY = /(?:HOST|HOSTNAME|SERVER|ADDR|ADDRESS)$/i;

function replaceHost(value: string, host: string, name: string, hostKey: boolean): string {
  if (host === name) return value;
  if (hostKey && value === host) return name;
  const h = escape(host);
  return value
    .replace(new RegExp(`(://(?:[^/@\\s]*@)?|@)${h}(?=$|[:/?#\\s,;'"])`, 'g'), `$1${name}`)
    .replace(new RegExp(`(^|[\\s=,;'"])${h}(?=:\\d)`, 'g'), `$1${name}`);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A listener per published container port, and the store's web interface (Umbrel's app_proxy,
 * CasaOS's port_map) as the service's main listener. One port: the listener is named after its
 * service; several: after the service and the port. The host side of ports: is not kept:
 * Piccolo publishes each listener at its own address; except 53 (DNS), which clients cannot be
 * told another port for: it becomes the listener's public_port.
 */
function buildListeners(appName: string, stack: StackContext, main: { umbrel?: MainListener; casaos?: MainListener }): ListenerInput[] {
  type Candidate = { service: string; port: number; protocol: NonNullable<ListenerInput['protocol']>; flow: 'tcp' | 'tls'; guessed: boolean; publicPort?: number };
  const candidates: Candidate[] = [];
  const add = (candidate: Candidate) => {
    const udp = candidate.protocol === 'udp';
    if (!candidates.some((c) => c.service === candidate.service && c.port === candidate.port && (c.protocol === 'udp') === udp)) candidates.push(candidate);
  };
  // The store's word for the web interface comes first; ports: add the rest, their protocol guessed.
  for (const chosen of [main.umbrel, main.casaos]) {
    if (chosen) add({ service: chosen.service, port: chosen.port, protocol: chosen.protocol ?? 'http', flow: chosen.flow ?? 'tcp', guessed: false });
  }
  for (const { service, port } of stack.published) {
    if (isLoopback(port.hostIp)) {
      stack.warnings.push(`${port.path}: published on ${port.hostIp} only, for the host's own tools; not a listener`);
      continue;
    }
    const publicPort = port.published !== undefined && WELL_KNOWN_PUBLIC_PORTS.has(port.published) ? port.published : undefined;
    if (port.published !== undefined && port.published !== port.container && publicPort === undefined) {
      stack.warnings.push(`${port.path}: host port ${port.published} ignored; Piccolo publishes each listener at its own address`);
    }
    const protocol = guessProtocol(port);
    add({ service, port: port.container, protocol, flow: protocol !== 'udp' && [443, 8443, 9443].includes(port.container) ? 'tls' : 'tcp', guessed: true, ...(publicPort !== undefined && { publicPort }) });
  }
  const maxName = Math.min(MAX_NAME, MAX_HOST_LABEL - 1 - appName.length);
  const perService = (service: string) => candidates.filter((c) => c.service === service).length;
  const used = new Set<string>();
  const listeners = candidates.map(({ service, port, protocol, flow, publicPort }): ListenerInput => {
    const udpTwin = protocol === 'udp' && candidates.some((c) => c.service === service && c.port === port && c.protocol !== 'udp');
    const suffix = perService(service) === 1 ? '' : `-${port}${udpTwin ? '-udp' : ''}`;
    let name = `${dnsLabel(service, maxName - suffix.length) || 'web'}${suffix}`;
    if (RESERVED.has(name)) name = `${name}-web`.slice(0, maxName);
    while (used.has(name)) name = `${name.slice(0, maxName - 2)}-2`;
    used.add(name);
    return { name, service, guest_port: port, flow, protocol: flow === 'tls' ? 'raw' : protocol, ...(publicPort !== undefined && { public_port: publicPort }) };
  });
  if (candidates.some((c) => c.guessed && c.protocol === 'http' && c.flow === 'tcp')) stack.warnings.push('listeners: TCP ports are taken as HTTP (behind the device\'s sign-in) unless they are well-known other protocols; change protocol to raw in the app spec where a port is not HTTP');
  return listeners;
}

