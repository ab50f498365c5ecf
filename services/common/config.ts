// Configuration: environment variables first, then an optional JSON file with the same keys,
// then defaults. Every value is parsed up front; any problem stops the service before it starts.
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.js';
import type { LogLevel } from './logger.js';

export type Parse<T> = (raw: string) => T; // throws an Error whose message says what is wrong

export interface Field<T> {
  env: string;
  parse: Parse<T>;
  fallback?: T;
}

export function field<T>(env: string, parse: Parse<T>, fallback?: T): Field<T> {
  return { env, parse, fallback };
}

type Values<S> = { [K in keyof S]: S[K] extends Field<infer T> ? T : never };

export interface ConfigSources {
  env: NodeJS.ProcessEnv;
  /** Optional JSON file; a missing file is fine, an unreadable or malformed one is not. */
  file?: string;
}

export function loadConfig<S extends Record<string, Field<unknown>>>(spec: S, sources: ConfigSources): Values<S> {
  const problems: string[] = [];
  const fromFile = sources.file ? readConfigFile(sources.file, spec, problems) : {};
  const values: Record<string, unknown> = {};
  for (const [name, { env, parse, fallback }] of Object.entries(spec)) {
    const raw = sources.env[env] ?? fromFile[env];
    if (raw === undefined || raw === '') {
      if (fallback === undefined) problems.push(`${env}: required`);
      values[name] = fallback;
      continue;
    }
    try {
      values[name] = parse(raw);
    } catch (err) {
      problems.push(`${env}: ${(err as Error).message} (got ${JSON.stringify(raw)})`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return values as Values<S>;
}

function readConfigFile(file: string, spec: Record<string, Field<unknown>>, problems: string[]): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    problems.push(`${file}: cannot read (${(err as Error).message})`);
    return {};
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    problems.push(`${file}: not valid JSON (${(err as Error).message})`);
    return {};
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    problems.push(`${file}: must hold a JSON object`);
    return {};
  }
  const known = new Set(Object.values(spec).map((f) => f.env));
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(doc)) {
    if (!known.has(key)) problems.push(`${file}: unknown key ${key}; known keys: ${[...known].join(', ')}`);
    else if (['string', 'number', 'boolean'].includes(typeof value)) result[key] = String(value);
    else problems.push(`${file}: ${key} must be a string, number or boolean`);
  }
  return result;
}

// ---- parsers ----

export interface ListenAddress {
  host: string;
  port: number;
}

/** "host:port", "[v6]:port" or ":port" (all addresses). Port 0 picks a free port. */
export const parseListen: Parse<ListenAddress> = (raw) => {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]*)):(\d{1,5})$/.exec(raw.trim());
  if (!match) throw new Error('must be host:port');
  const port = Number(match[3]);
  if (port > 65535) throw new Error('port must be 0-65535');
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
};

export const parseAbsolutePath: Parse<string> = (raw) => {
  if (!raw.startsWith('/')) throw new Error('must be an absolute path');
  return raw;
};

export const parseList: Parse<string[]> = (raw) =>
  raw.split(',').map((item) => item.trim()).filter(Boolean);

export const parseLogLevel: Parse<LogLevel> = (raw) => {
  if (!['debug', 'info', 'warn', 'error'].includes(raw)) throw new Error('must be debug, info, warn or error');
  return raw as LogLevel;
};

export const parsePositiveInt: Parse<number> = (raw) => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error('must be a positive integer');
  return n;
};

export const parseBoolean: Parse<boolean> = (raw) => {
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new Error('must be true or false (or 1 or 0)');
};

export const parseUrl: Parse<URL> = (raw) => {
  try {
    return new URL(raw);
  } catch {
    throw new Error('must be an absolute URL');
  }
};

const commonFields = {
  logLevel: field('PICCOLO_LOG_LEVEL', parseLogLevel, 'info' as LogLevel),
  healthSocket: field('PICCOLO_HEALTH_SOCKET', parseAbsolutePath, '/run/piccolo-health/report.sock'),
  /** Heartbeat to the health service; a component is down after three missed beats. */
  healthIntervalMs: field('PICCOLO_HEALTH_INTERVAL_MS', parsePositiveInt, 5000),
};

/** A service's settings plus the shared ones, from the environment and /etc/piccolo/<service>.json. */
export function loadServiceConfig<S extends Record<string, Field<unknown>>>(service: string, spec: S, env: NodeJS.ProcessEnv) {
  const file = env.PICCOLO_CONFIG_FILE || `/etc/piccolo/${service}.json`;
  return { configFile: file, ...loadConfig({ ...commonFields, ...spec }, { env, file }) };
}
