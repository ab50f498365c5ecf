// Reads an app spec (app.yaml) into an AppSpec, or refuses it with every problem named by its
// path ("listeners[1].guest_port: must be 1-65535", "services.db.healthcheck.test: ..."). The
// JSON Schema, published as app-spec.schema.json, says what the shape is; the checks below say
// what a schema cannot (reserved and duplicate names, path traversal, middleware parameters,
// cross references between listeners, services and volumes, the services' start order).
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { BadRequestError } from '../../../common/errors.js';
import { validateMiddleware } from '../../../common/route-table.js';
import schema from './app-spec.schema.json' with { type: 'json' };
import { normalizeService, servicesAsWritten, SHORT_FORM_SERVICE_KEYS } from './normalize.js';
import { normalizeSpec } from './normalize.js';
import { capabilityName, devicePath, FieldProblem } from './service-fields.js';
import { parseYamlMapping } from './safe-yaml.js';
import { closestKey } from './suggest.js';
import { ENGINE_SOCKET_PATH, type AppSpec, type AppSpecInput, type ListenerInput, type ServiceInput, type ServiceSpec } from './types.js';
import { parseSize } from './units.js';
import { guestPortKey, udpHealthcheckProblem, udpListenerProblems } from './udp-listener.js';
import { publicPortProblems } from './public-port.js';

const INVALID_APP_SPEC = 'invalid app spec';

/** Names that would clash with the device's own hostnames. */
const RESERVED_NAMES: ReadonlySet<string> = new Set(['api', 'www', 'admin', 'root', 'system', 'piccolo', 'piccoloos']);

/** A DNS label is at most 63 characters, and a listener is reached at <listener>-<app>. */
const MAX_HOST_LABEL = 63;

/** The container runtime refuses memory limits below 6 MiB. */
const MIN_MEMORY_BYTES = 6 * 2 ** 20;
const MIN_PERSISTENT_LIMIT_BYTES = 2 ** 20;

/** An app is a handful of containers; a stack of dozens is a mistake or an abuse. */
const MAX_SERVICES = 20;

let compiledSchema: ValidateFunction<AppSpecInput> | undefined;
// Compiled on the first spec checked, not when the daemon loads: the compile (with strict mode's
// check of the schema itself) is CPU that a start validating no spec need not spend.
const matchesSchema = () => (compiledSchema ??= compileSchema());

function compileSchema(): ValidateFunction<AppSpecInput> {
  // x-message and x-unsupported are annotations of the schema for the messages below.
  // strictRequired off: the root's anyOf of required image or services names properties declared beside it.
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictRequired: false, allowUnionTypes: true });
  ajv.addKeyword('x-message');
  ajv.addKeyword('x-unsupported');
  ajv.addKeyword('x-field');
  return ajv.compile<AppSpecInput>(schema);
}

export function parseAppSpec(text: string): AppSpec {
  return validateAppSpec(parseYamlMapping(text, INVALID_APP_SPEC));
}

/** Checks plain data (parsed YAML, or what the compose import built) and applies the defaults. */
export function validateAppSpec(value: unknown): AppSpec {
  const validate = matchesSchema();
  if (!validate(value)) {
    const problems = relevantErrors(validate.errors ?? []).map(describeSchemaError).filter((p): p is string => p !== undefined);
    throw new BadRequestError(INVALID_APP_SPEC, [...new Set(problems)]);
  }
  // The semantic checks rely on the shape the schema guarantees, so they only run once it holds.
  const problems = semanticProblems(value);
  if (problems.length) throw new BadRequestError(INVALID_APP_SPEC, problems);
  return normalizeSpec(value);
}

function semanticProblems(spec: AppSpecInput): string[] {
  const problems: string[] = [];
  if (RESERVED_NAMES.has(spec.name)) problems.push(`name: "${spec.name}" is reserved`);
  problems.push(...checkForm(spec));
  if (spec.services || spec.image !== undefined) checkServices(spec, problems);
  checkListeners(spec, problems);
  checkStorage(spec, problems);
  checkPermissions(spec, problems);
  checkResources(spec, problems);
  const { healthcheck } = spec;
  if (healthcheck && !spec.listeners.some((listener) => listener.name === healthcheck.http.port)) {
    problems.push(`healthcheck.http.port: "${healthcheck.http.port}" is not a listener of this app (listeners: ${spec.listeners.map((l) => l.name).join(', ')})`);
  }
  const udpHealthcheck = healthcheck && udpHealthcheckProblem(spec.listeners, healthcheck.http.port);
  if (udpHealthcheck) problems.push(udpHealthcheck);
  (spec.depends_on ?? []).forEach((dependency, i) => {
    if (dependency === spec.name) problems.push(`depends_on[${i}]: an app cannot depend on itself`);
  });
  return problems;
}

function checkListeners(spec: AppSpecInput, problems: string[]): void {
  const nameOwners = new Map<string, string>();
  const portOwners = new Map<string, string>();
  const services = spec.services ? Object.keys(spec.services) : undefined;
  spec.listeners.forEach((listener, i) => {
    const path = `listeners[${i}]`;
    if (RESERVED_NAMES.has(listener.name)) problems.push(`${path}.name: "${listener.name}" is reserved`);
    const hostLabel = `${listener.name}-${spec.name}`;
    if (hostLabel.length > MAX_HOST_LABEL) {
      problems.push(`${path}.name: the hostname label ${hostLabel} is ${hostLabel.length} characters; DNS allows ${MAX_HOST_LABEL}`);
    }
    claim(nameOwners, listener.name, `${path}.name`, `"${listener.name}"`, problems);
    if (listener.service !== undefined && !(services ?? ['app']).includes(listener.service)) {
      problems.push(`${path}.service: "${listener.service}" is not a service of this app (services: ${(services ?? ['app']).join(', ')})`);
    }
    // Two containers may listen on the same port; one container cannot twice.
    const service = listener.service ?? services?.[0] ?? 'app';
    const shown = services ? `port ${listener.guest_port} of service ${service}` : String(listener.guest_port);
    claim(portOwners, `${service}:${guestPortKey(listener)}`, `${path}.guest_port`, shown, problems);
    checkMiddleware(listener, `${path}.protocol_middleware`, problems);
    problems.push(...udpListenerProblems(listener, path));
  });
  problems.push(...publicPortProblems(spec.listeners));
}

/** Middleware that works on HTTP requests, which a flow tls listener passes through unread. */
const READS_HTTP = new Set(['auth', 'request_log', 'rate_limit']);

function checkMiddleware(listener: ListenerInput, path: string, problems: string[]): void {
  const middleware = listener.protocol_middleware ?? [];
  // The route table's own check, which the proxy applies again: what passes here, the proxy can serve.
  problems.push(...validateMiddleware(middleware, listener.protocol ?? 'raw', path));
  middleware.forEach(({ name }, i) => {
    if (listener.flow === 'tls' && listener.protocol !== undefined && listener.protocol !== 'raw' && READS_HTTP.has(name)) {
      problems.push(`${path}[${i}].name: ${name} works on HTTP requests, which a flow tls listener passes through unread`);
    }
    if (name === 'auth' && listener.public) problems.push(`${path}[${i}].name: a public listener cannot also require auth`);
  });
}

function checkStorage(spec: AppSpecInput, problems: string[]): void {
  const storage = spec.storage ?? {};
  const nameOwners = new Map<string, string>();
  const pathOwners = new Map<string, string>();
  for (const kind of ['persistent', 'temporary'] as const) {
    for (const [name, volume] of Object.entries(storage[kind] ?? {})) {
      const path = `storage.${kind}.${name}`;
      claim(nameOwners, name, path, `the volume name ${name}`, problems);
      if (spec.services && volume.container !== undefined) {
        problems.push(`${path}.container: with services, each service mounts the volume itself (mounts: [${name}:${volume.container}])`);
      } else if (!spec.services && volume.container === undefined) {
        problems.push(`${path}.container: is required (the one container mounts the volume there)`);
      } else if (volume.container !== undefined) {
        const pathProblem = containerPathProblem(volume.container);
        if (pathProblem) problems.push(`${path}.container: ${pathProblem}`);
        else claim(pathOwners, volume.container, `${path}.container`, volume.container, problems);
      }
      const limit = volume.size_limit === undefined ? undefined : parseSize(volume.size_limit);
      if (limit === 0) problems.push(`${path}.size_limit: must be more than 0`);
      // A limited persistent volume is its own small file system (volumes/size-limited.ts); ext4 needs this much.
      else if (kind === 'persistent' && limit !== undefined && limit < MIN_PERSISTENT_LIMIT_BYTES) problems.push(`${path}.size_limit: must be at least 1Mi (a limited volume is its own file system)`);
    }
  }
}

/** Container paths must be plain absolute paths: no way to mount over / or step out with "..". */
function containerPathProblem(container: string): string | undefined {
  if (container === '/') return 'must not be the root directory';
  const segments = container.slice(1).split('/');
  if (segments.some((segment) => segment === '..' || segment === '.')) return 'must not contain . or .. segments';
  if (segments.some((segment) => segment === '')) return 'must not contain empty segments or end with /';
  return undefined;
}

function checkResources(spec: AppSpecInput, problems: string[]): void {
  const limits = spec.resources?.limits ?? {};
  if (limits.memory !== undefined && parseSize(limits.memory)! < MIN_MEMORY_BYTES) problems.push('resources.limits.memory: must be at least 6Mi');
  // Refused rather than ignored: there is nothing here that could hold an app to one total.
  if (limits.storage !== undefined) {
    problems.push("resources.limits.storage: cannot be enforced on this device, so it is refused: give each volume its own limit (storage.persistent.<name>.size_limit, enforced) instead; the containers' own file systems are not limited");
  }
}

/** Exactly one of the two forms: image (one container) or services. */
function checkForm(spec: AppSpecInput): string[] {
  if (spec.services) {
    const problems = SHORT_FORM_SERVICE_KEYS.filter((key) => spec[key] !== undefined).map(
      (key) => `${key}: with services, each service sets its own ${key} (services.<name>.${key})`,
    );
    if (Object.keys(spec.services).length > MAX_SERVICES) problems.push(`services: ${Object.keys(spec.services).length} services; an app may have at most ${MAX_SERVICES}`);
    return problems;
  }
  return spec.image === undefined ? ['image: is required (or services, for an app of several containers)'] : [];
}

/**
 * Each service's fields in compose's forms, read as normalize will read them; then what refers to
 * what: mounts to volumes, depends_on to services (without cycles), and service_healthy to a
 * service that has a healthcheck to wait for.
 */
function checkServices(spec: AppSpecInput, problems: string[]): void {
  const written = servicesAsWritten(spec);
  // The short form's fields sit at the top level, and its mounts come from storage (checked there).
  const base = (name: string) => (spec.services ? `services.${name}` : '');
  const read = new Map<string, ServiceSpec>();
  const indexes = new Map<string, Record<string, number[]>>();
  for (const [name, input] of written) {
    const found = readService(name, input, base(name), problems);
    if (!found) continue;
    read.set(name, found.service);
    indexes.set(name, found.indexes);
  }
  const volumes = new Set([...Object.keys(spec.storage?.persistent ?? {}), ...Object.keys(spec.storage?.temporary ?? {})]);
  for (const [name, service] of read) {
    const path = base(name);
    const paths = new Map<string, string>();
    // The engine socket takes its path: nothing else may be mounted there.
    if (service.engine_socket) paths.set(ENGINE_SOCKET_PATH, joinPath(path, 'engine_socket'));
    const writtenIndex = (field: string, i: number) => indexes.get(name)![field]?.[i] ?? i;
    if (spec.services) {
      service.mounts.forEach((mount, i) => {
        const at = `${path}.mounts[${writtenIndex('mounts', i)}]`;
        if (mount.volume !== undefined && !volumes.has(mount.volume)) {
          problems.push(`${at}: no volume ${mount.volume} in storage.persistent or storage.temporary${volumes.size ? ` (volumes: ${[...volumes].join(', ')})` : ''}`);
        }
        const pathProblem = containerPathProblem(mount.container);
        if (pathProblem) problems.push(`${at}: ${mount.container} ${pathProblem}`);
        else claim(paths, mount.container, at, mount.container, problems);
      });
    } else {
      // The short form's mounts are its volumes (their paths checked in storage), which a tmpfs must not hide.
      for (const mount of service.mounts) {
        const kind = spec.storage?.persistent?.[mount.volume!] ? 'persistent' : 'temporary';
        paths.set(mount.container, `storage.${kind}.${mount.volume}`);
      }
    }
    service.tmpfs.forEach((entry, i) => {
      const at = joinPath(path, 'tmpfs') + (Array.isArray(written.find(([n]) => n === name)![1].tmpfs) ? `[${writtenIndex('tmpfs', i)}]` : '');
      const pathProblem = containerPathProblem(entry.container);
      if (pathProblem) problems.push(`${at}: ${entry.container} ${pathProblem}`);
      else claim(paths, entry.container, at, entry.container, problems);
    });
    if (service.working_dir !== undefined) {
      const pathProblem = containerPathProblem(service.working_dir);
      if (pathProblem) problems.push(`${joinPath(path, 'working_dir')}: ${pathProblem}`);
    }
    service.depends_on.forEach(({ service: dependency, condition }) => {
      const at = `${path}.depends_on.${dependency}`;
      const target = read.get(dependency);
      if (dependency === name) problems.push(`${at}: a service cannot depend on itself`);
      else if (!written.some(([n]) => n === dependency)) problems.push(`${at}: no service ${dependency} in this app (services: ${written.map(([n]) => n).join(', ')})`);
      else if (condition === 'service_healthy' && target && (!target.healthcheck || target.healthcheck.test[0] === 'NONE')) {
        problems.push(`${at}.condition: service_healthy waits for the healthcheck of ${dependency}, which has none (add services.${dependency}.healthcheck)`);
      }
    });
  }
  const cycle = dependencyCycle([...read.values()]);
  if (cycle) problems.push(`services.${cycle[0]}.depends_on: the services wait for each other in a circle (${cycle.join(' → ')}); none could start`);
}

/** A service as far as it could be read; indexes maps a list's kept items to where they were written. */
interface ReadService {
  service: ServiceSpec;
  indexes: Record<string, number[]>;
}

/**
 * Reads one service's fields; each one that cannot be read is a problem at its path (each item of
 * a list on its own). The service is still returned without those fields, so what refers to what
 * is checked too.
 */
function readService(name: string, input: ServiceInput, path: string, problems: string[]): ReadService | undefined {
  try {
    return { service: normalizeService(name, input), indexes: {} };
  } catch (err) {
    if (!(err instanceof FieldProblem)) throw err;
  }
  // The short form's fields are at the top level: no leading dot there.
  const at = (subpath: string) => (path ? path + subpath : subpath.replace(/^\./, ''));
  /** Reads one field (or one item of it, shown at index); false when it cannot be read. */
  const readable = (field: keyof ServiceInput, value: unknown, index?: number): boolean => {
    try {
      normalizeService(name, { image: input.image, [field]: value } as ServiceInput);
      return true;
    } catch (err) {
      if (!(err instanceof FieldProblem)) throw err;
      const subpath = index === undefined ? err.subpath : err.subpath.replace(`.${field}[0]`, `.${field}[${index}]`);
      problems.push(`${at(subpath)}: ${err.message}`);
      return false;
    }
  };
  // What can be read is kept (a list keeps its good items), so what refers to what is checked too.
  const partial: Record<string, unknown> = { image: input.image };
  const kept: Record<string, number[]> = {};
  for (const field of Object.keys(input) as (keyof ServiceInput)[]) {
    const value = input[field];
    if (Array.isArray(value) && field !== 'command' && field !== 'entrypoint') {
      // Item by item, so each bad item is named; then as a whole (a key set twice).
      const good = value.flatMap((item, i) => (readable(field, [item], i) ? [i] : []));
      if (good.length === value.length && readable(field, value)) partial[field] = value;
      else if (field !== 'environment') {
        partial[field] = good.map((i) => value[i]);
        kept[field] = good;
      }
    } else if (readable(field, value)) {
      partial[field] = value;
    }
  }
  try {
    return { service: normalizeService(name, partial as unknown as ServiceInput), indexes: kept };
  } catch (err) {
    if (err instanceof FieldProblem) return undefined;
    throw err;
  }
}

/** The first circle in the services' depends_on, as names from its start back to it; undefined when there is none. */
function dependencyCycle(services: ServiceSpec[]): string[] | undefined {
  const byName = new Map(services.map((service) => [service.name, service]));
  const done = new Set<string>();
  const trail: string[] = [];
  const visit = (name: string): string[] | undefined => {
    const at = trail.indexOf(name);
    if (at >= 0) return [...trail.slice(at), name];
    if (done.has(name)) return undefined;
    trail.push(name);
    for (const { service } of byName.get(name)?.depends_on ?? []) {
      if (service === name) continue;
      const found = visit(service);
      if (found) return found;
    }
    trail.pop();
    done.add(name);
    return undefined;
  };
  for (const service of services) {
    const found = visit(service.name);
    if (found) return found;
  }
  return undefined;
}

/** Declared permissions in the same words as the services' own use of them. */
function checkPermissions(spec: AppSpecInput, problems: string[]): void {
  const each = (field: 'devices' | 'capabilities', read: (item: string) => string) =>
    (spec.permissions?.[field] ?? []).forEach((item, i) => {
      try {
        read(item);
      } catch (err) {
        if (!(err instanceof FieldProblem)) throw err;
        problems.push(`permissions.${field}[${i}]: ${err.message}`);
      }
    });
  each('devices', devicePath);
  each('capabilities', capabilityName);
}

/** Records who uses a value first; a second user is a problem naming the first. */
function claim<K>(owners: Map<K, string>, value: K, path: string, shown: string, problems: string[]): void {
  const owner = owners.get(value);
  if (owner !== undefined) problems.push(`${path}: ${shown} is already used by ${owner}`);
  else owners.set(value, path.replace(/\.(name|guest_port|container)$/, ''));
}

/**
 * anyOf (compose's "a string or a list") fails with the errors of every branch. Keep those of
 * the branch whose type the value has (a list's problems, for a list); when none has, only the
 * anyOf's own message ("must be a command line or a list of words").
 */
function relevantErrors(errors: ErrorObject[]): ErrorObject[] {
  const dropped = new Set<ErrorObject>();
  const inBranch = (error: ErrorObject, anyOf: ErrorObject, branch?: number) =>
    error !== anyOf &&
    error.instancePath.startsWith(anyOf.instancePath) &&
    error.schemaPath.startsWith(`${anyOf.schemaPath}/${branch ?? ''}`);
  const anyOfs = errors.filter((error) => error.keyword === 'anyOf').sort((a, b) => a.schemaPath.length - b.schemaPath.length || a.instancePath.length - b.instancePath.length);
  for (const anyOf of anyOfs) {
    if (dropped.has(anyOf)) continue;
    const branches = (anyOf.schema as unknown[]).map((_, i) => errors.filter((error) => inBranch(error, anyOf, i) && error.schemaPath.charAt(`${anyOf.schemaPath}/${i}`.length) === '/'));
    const fitting = branches.filter((branch) => !branch.some((error) => error.keyword === 'type' && error.instancePath === anyOf.instancePath));
    const kept = fitting.length === 1 ? fitting[0]! : [];
    for (const error of errors) if (inBranch(error, anyOf) && !kept.includes(error)) dropped.add(error);
    if (fitting.length === 1) {
      dropped.add(anyOf);
      // A branch's own failure (a pattern, say) reads better in the anyOf's words, when it has some.
      const message = (anyOf.parentSchema as SchemaAnnotations)['x-message'];
      for (const error of kept) {
        if (message && error.instancePath === anyOf.instancePath && !(error.parentSchema as SchemaAnnotations)['x-message']) (error.parentSchema as SchemaAnnotations) = { ...(error.parentSchema as SchemaAnnotations), 'x-message': message };
      }
    }
  }
  return errors.filter((error) => !dropped.has(error));
}

// ---- JSON Schema errors as "path: problem" ----

interface SchemaAnnotations {
  properties?: Record<string, unknown>;
  'x-message'?: string;
  'x-unsupported'?: Record<string, string>;
  /** The field an error of this (sub)schema is about, when it is not where the schema applies. */
  'x-field'?: string;
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
};

function describeSchemaError(error: ErrorObject): string | undefined {
  // Errors inside propertyNames carry the offending key; they say what is wrong with it.
  const path = error.propertyName === undefined ? specPath(error.instancePath) : joinPath(specPath(error.instancePath), error.propertyName);
  const schemaHere = (error.parentSchema ?? {}) as SchemaAnnotations;
  if (schemaHere['x-field'] && error.keyword === 'anyOf') return `${joinPath(path, schemaHere['x-field'])}: ${schemaHere['x-message']}`;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'propertyNames':
      return undefined;
    case 'required':
      return `${joinPath(path, String(params.missingProperty))}: is required`;
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const unsupported = schemaHere['x-unsupported']?.[key];
      if (unsupported) return `${joinPath(path, key)}: ${unsupported}`;
      const suggestion = closestKey(key, Object.keys(schemaHere.properties ?? {}));
      return `${joinPath(path, key)}: unknown field${suggestion ? `; did you mean ${suggestion}?` : ''}`;
    }
    case 'enum':
      return `${at(path)}: must be one of ${(params.allowedValues as unknown[]).join(', ')}`;
    case 'uniqueItems':
      return `${at(path)}: lists ${JSON.stringify((error.data as unknown[])[params.j as number])} twice`;
    case 'type':
      return `${at(path)}: ${schemaHere['x-message'] ?? `must be ${[params.type].flat().map((t) => TYPE_NAMES[String(t)] ?? t).join(' or ')}`}`;
    default:
      return `${at(path)}: ${schemaHere['x-message'] ?? error.message}`;
  }
}

/** "/listeners/1/guest_port" → "listeners[1].guest_port" */
function specPath(instancePath: string): string {
  if (!instancePath) return '';
  return instancePath
    .slice(1)
    .split('/')
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, segment) => (/^\d+$/.test(segment) ? `${path}[${segment}]` : joinPath(path, segment)), '');
}

function joinPath(path: string, key: string): string {
  if (!/^[A-Za-z_][\w-]*$/.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path ? `${path}.${key}` : key;
}

function at(path: string): string {
  return path || 'document';
}
