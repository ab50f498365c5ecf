// Reads an app spec (app.yaml) into an AppSpec, or refuses it with every problem named by its
// path ("listeners[1].guest_port: must be 1-65535"). The JSON Schema, published as
// app-spec.schema.json, says what the shape is; the checks below say what a schema cannot
// (reserved and duplicate names, path traversal, middleware parameters, cross references).
import { Ajv, type ErrorObject } from 'ajv';
import { BadRequestError } from '../../../common/errors.js';
import { validateMiddleware } from '../../../common/route-table.js';
import schema from './app-spec.schema.json' with { type: 'json' };
import { normalizeSpec } from './normalize.js';
import { parseYamlMapping } from './safe-yaml.js';
import { closestKey } from './suggest.js';
import type { AppSpec, AppSpecInput, ListenerInput, StorageVolumeInput } from './types.js';
import { parseSize } from './units.js';

const INVALID_APP_SPEC = 'invalid app spec';

/** Names that would clash with the device's own hostnames. */
const RESERVED_NAMES: ReadonlySet<string> = new Set(['api', 'www', 'admin', 'root', 'system', 'piccolo', 'piccoloos']);

/** A DNS label is at most 63 characters, and a listener is reached at <listener>-<app>. */
const MAX_HOST_LABEL = 63;

/** The container runtime refuses memory limits below 6 MiB. */
const MIN_MEMORY_BYTES = 6 * 2 ** 20;

// x-message and x-unsupported are annotations of the schema for the messages below.
const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true });
ajv.addKeyword('x-message');
ajv.addKeyword('x-unsupported');
const matchesSchema = ajv.compile<AppSpecInput>(schema);

export function parseAppSpec(text: string): AppSpec {
  return validateAppSpec(parseYamlMapping(text, INVALID_APP_SPEC));
}

/** Checks plain data (parsed YAML, or what the compose import built) and applies the defaults. */
export function validateAppSpec(value: unknown): AppSpec {
  if (!matchesSchema(value)) {
    const problems = (matchesSchema.errors ?? []).map(describeSchemaError).filter((p): p is string => p !== undefined);
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
  checkListeners(spec, problems);
  checkStorage(spec.storage ?? {}, problems);
  checkResources(spec, problems);
  const { healthcheck } = spec;
  if (healthcheck && !spec.listeners.some((listener) => listener.name === healthcheck.http.port)) {
    problems.push(`healthcheck.http.port: "${healthcheck.http.port}" is not a listener of this app (listeners: ${spec.listeners.map((l) => l.name).join(', ')})`);
  }
  (spec.depends_on ?? []).forEach((dependency, i) => {
    if (dependency === spec.name) problems.push(`depends_on[${i}]: an app cannot depend on itself`);
  });
  return problems;
}

function checkListeners(spec: AppSpecInput, problems: string[]): void {
  const nameOwners = new Map<string, string>();
  const portOwners = new Map<number, string>();
  spec.listeners.forEach((listener, i) => {
    const path = `listeners[${i}]`;
    if (RESERVED_NAMES.has(listener.name)) problems.push(`${path}.name: "${listener.name}" is reserved`);
    const hostLabel = `${listener.name}-${spec.name}`;
    if (hostLabel.length > MAX_HOST_LABEL) {
      problems.push(`${path}.name: the hostname label ${hostLabel} is ${hostLabel.length} characters; DNS allows ${MAX_HOST_LABEL}`);
    }
    claim(nameOwners, listener.name, `${path}.name`, `"${listener.name}"`, problems);
    claim(portOwners, listener.guest_port, `${path}.guest_port`, String(listener.guest_port), problems);
    checkMiddleware(listener, `${path}.protocol_middleware`, problems);
  });
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

function checkStorage(storage: NonNullable<AppSpecInput['storage']>, problems: string[]): void {
  const nameOwners = new Map<string, string>();
  const pathOwners = new Map<string, string>();
  for (const kind of ['persistent', 'temporary'] as const) {
    for (const [name, volume] of Object.entries(storage[kind] ?? {})) {
      const path = `storage.${kind}.${name}`;
      claim(nameOwners, name, path, `the volume name ${name}`, problems);
      const pathProblem = containerPathProblem(volume);
      if (pathProblem) problems.push(`${path}.container: ${pathProblem}`);
      else claim(pathOwners, volume.container, `${path}.container`, volume.container, problems);
      if (volume.size_limit !== undefined && parseSize(volume.size_limit) === 0) problems.push(`${path}.size_limit: must be more than 0`);
    }
  }
}

/** Container paths must be plain absolute paths: no way to mount over / or step out with "..". */
function containerPathProblem({ container }: StorageVolumeInput): string | undefined {
  if (container === '/') return 'must not be the root directory';
  const segments = container.slice(1).split('/');
  if (segments.some((segment) => segment === '..' || segment === '.')) return 'must not contain . or .. segments';
  if (segments.some((segment) => segment === '')) return 'must not contain empty segments or end with /';
  return undefined;
}

function checkResources(spec: AppSpecInput, problems: string[]): void {
  const limits = spec.resources?.limits ?? {};
  if (limits.memory !== undefined && parseSize(limits.memory)! < MIN_MEMORY_BYTES) problems.push('resources.limits.memory: must be at least 6Mi');
  if (limits.storage !== undefined && parseSize(limits.storage) === 0) problems.push('resources.limits.storage: must be more than 0');
}

/** Records who uses a value first; a second user is a problem naming the first. */
function claim<K>(owners: Map<K, string>, value: K, path: string, shown: string, problems: string[]): void {
  const owner = owners.get(value);
  if (owner !== undefined) problems.push(`${path}: ${shown} is already used by ${owner}`);
  else owners.set(value, path.replace(/\.(name|guest_port|container)$/, ''));
}

// ---- JSON Schema errors as "path: problem" ----

interface SchemaAnnotations {
  properties?: Record<string, unknown>;
  'x-message'?: string;
  'x-unsupported'?: Record<string, string>;
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
