// Compose's several ways of writing one container field ("10s", "64m", a command as one string, a
// healthcheck test as a string or a list, environment as a list of K=V) read into the one shape
// of ServiceSpec. Each reader throws FieldProblem with what is wrong; the validator adds the path,
// and normalize (which runs only on input that passed) never sees one.
import type { EnvironmentInput, MountInput, ServiceHealthCheck, ServiceHealthCheckInput, ServiceMount, TmpfsInput } from './types.js';
import { parseDuration, parseSize } from './units.js';

export class FieldProblem extends Error {
  /** Relative to the field being read ("[2]", ".test"), or '' for the field itself. */
  constructor(message: string, readonly subpath = '') {
    super(message);
  }
}

/** Docker's defaults for a healthcheck that leaves a timing out. */
const HEALTHCHECK_DEFAULTS = { interval_ms: 30_000, timeout_ms: 30_000, retries: 3, start_period_ms: 0 };

/** Capabilities Podman gives every container already: adding them asks for nothing more. */
export const DEFAULT_CAPABILITIES: ReadonlySet<string> = new Set([
  'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT',
]);

/** Linux capabilities (capabilities(7)), without CAP_. */
export const KNOWN_CAPABILITIES: ReadonlySet<string> = new Set([
  ...DEFAULT_CAPABILITIES,
  'AUDIT_CONTROL', 'AUDIT_READ', 'AUDIT_WRITE', 'BLOCK_SUSPEND', 'BPF', 'CHECKPOINT_RESTORE', 'DAC_READ_SEARCH', 'IPC_LOCK',
  'IPC_OWNER', 'LEASE', 'LINUX_IMMUTABLE', 'MAC_ADMIN', 'MAC_OVERRIDE', 'MKNOD', 'NET_ADMIN', 'NET_BROADCAST', 'NET_RAW',
  'PERFMON', 'SYSLOG', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_MODULE', 'SYS_NICE', 'SYS_PACCT', 'SYS_PTRACE', 'SYS_RAWIO',
  'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'WAKE_ALARM',
]);

/** "cap_net_admin" → "NET_ADMIN"; ALL stays ALL. */
export function capabilityName(text: string): string {
  const upper = text.toUpperCase();
  const name = upper.startsWith('CAP_') ? upper.slice(4) : upper;
  if (name !== 'ALL' && !KNOWN_CAPABILITIES.has(name)) throw new FieldProblem(`${text} is not a Linux capability`);
  return name;
}

/** A command as compose takes it: a list as it is, one string split like a shell would (quotes kept together). */
export function commandLine(value: string | readonly string[]): string[] {
  if (typeof value !== 'string') return [...value];
  const words: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (let i = 0; i < value.length; i++) {
    const char = value[i]!;
    if (quote) {
      if (char === quote) quote = undefined;
      else if (char === '\\' && quote === '"' && i + 1 < value.length) word += value[++i]!;
      else word += char;
    } else if (char === '"' || char === "'") {
      quote = char;
      word ??= '';
    } else if (char === '\\' && i + 1 < value.length) {
      word = (word ?? '') + value[++i]!;
    } else if (/\s/.test(char)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? '') + char;
    }
  }
  if (quote) throw new FieldProblem(`the quote ${quote} is not closed`);
  if (word !== undefined) words.push(word);
  if (!words.length) throw new FieldProblem('is empty');
  return words;
}

/** A mapping (values as strings) or compose's list of KEY=value. */
export function environmentMap(value: EnvironmentInput | undefined): Record<string, string> {
  if (value === undefined) return {};
  // Object.fromEntries, not assignment: a key named __proto__ stays an ordinary key.
  if (!Array.isArray(value)) return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, String(v)]));
  const seen = new Set<string>();
  return Object.fromEntries(
    value.map((entry, i) => {
      const at = entry.indexOf('=');
      if (at < 0) throw new FieldProblem(`"${entry}" has no value; write ${entry}=value (the device has no environment of its own to take it from)`, `[${i}]`);
      const key = entry.slice(0, at);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new FieldProblem(`${key} must be letters, digits and underscores, not starting with a digit`, `[${i}]`);
      if (seen.has(key)) throw new FieldProblem(`${key} is set twice`, `[${i}]`);
      seen.add(key);
      return [key, entry.slice(at + 1)];
    }),
  );
}

/** Bytes from "64m" (compose: binary), "256Mi", "1GB" or a plain number. */
export function sizeBytes(value: string | number): number {
  const bytes = typeof value === 'number' ? value : parseSize(value);
  if (bytes === undefined || !Number.isFinite(bytes) || bytes < 0) throw new FieldProblem(`must be a size such as 64m, 256Mi or 1GB`);
  return Math.floor(bytes);
}

export function durationMs(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new FieldProblem('must be a duration such as 500ms, 10s or 1m30s');
  return ms;
}

/**
 * compose's healthcheck: test as a string (run by a shell) or a list starting with CMD, CMD-SHELL
 * or NONE. Undefined when it only turns the image's own check off (NONE, disable: true)... which
 * is kept as ['NONE'] so the runtime can tell the engine.
 */
export function serviceHealthCheck(input: ServiceHealthCheckInput): ServiceHealthCheck {
  const timings = {
    interval_ms: input.interval === undefined ? HEALTHCHECK_DEFAULTS.interval_ms : within('.interval', () => durationMs(input.interval!)),
    timeout_ms: input.timeout === undefined ? HEALTHCHECK_DEFAULTS.timeout_ms : within('.timeout', () => durationMs(input.timeout!)),
    retries: input.retries ?? HEALTHCHECK_DEFAULTS.retries,
    start_period_ms: input.start_period === undefined ? HEALTHCHECK_DEFAULTS.start_period_ms : within('.start_period', () => durationMs(input.start_period!)),
  };
  if (input.disable) return { test: ['NONE'], ...timings };
  const { test } = input;
  if (test === undefined) throw new FieldProblem('is required (or disable: true)', '.test');
  if (typeof test === 'string') {
    if (!test.trim()) throw new FieldProblem('is empty', '.test');
    return { test: ['CMD-SHELL', test], ...timings };
  }
  const [kind, ...rest] = test;
  if (kind === 'NONE') return { test: ['NONE'], ...timings };
  if (kind !== 'CMD' && kind !== 'CMD-SHELL') throw new FieldProblem(`must start with CMD, CMD-SHELL or NONE, not ${JSON.stringify(kind ?? '')}`, '.test[0]');
  if (!rest.length) throw new FieldProblem(`${kind} needs the command after it`, '.test');
  if (kind === 'CMD-SHELL' && rest.length > 1) return { test: ['CMD-SHELL', rest.join(' ')], ...timings };
  return { test: [kind, ...rest], ...timings };
}

/** "data:/var/lib/app:ro" or {volume|media, subpath, container, read_only}. */
export function mount(input: MountInput): ServiceMount {
  if (typeof input !== 'string') {
    if ((input.volume === undefined) === (input.media === undefined)) throw new FieldProblem('needs exactly one of volume and media');
    if (input.subpath !== undefined) {
      const segments = input.subpath.split('/');
      if (input.subpath.startsWith('/') || segments.some((segment) => segment === '' || segment === '.' || segment === '..')) {
        throw new FieldProblem(`${input.subpath} must be a folder inside the ${input.volume !== undefined ? 'volume' : 'media folder'}, such as db or Movies/4k (no leading /, no . or .. segments)`, '.subpath');
      }
    }
    return {
      ...(input.volume !== undefined ? { volume: input.volume } : { media: input.media! }),
      ...(input.subpath !== undefined && { subpath: input.subpath }),
      container: input.container,
      read_only: input.read_only ?? false,
    };
  }
  const parts = input.split(':');
  const [source, container, mode] = parts;
  if (parts.length < 2 || parts.length > 3 || !source || !container) throw new FieldProblem(`"${input}" must be volume:/path or volume:/path:ro`);
  if (source.startsWith('/') || source.startsWith('.') || source.startsWith('~') || source.includes('$')) {
    throw new FieldProblem(`${source} is a host path; the data lives in the app's encrypted volume: name a volume of storage.persistent or storage.temporary instead`);
  }
  if (!container.startsWith('/')) throw new FieldProblem(`${container} must be an absolute path inside the container`);
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw') throw new FieldProblem(`the mode ${mode} must be ro or rw`);
  return { volume: source, container, read_only: mode === 'ro' };
}

const TMPFS_OPTIONS = new Set(['rw', 'ro', 'exec', 'noexec', 'suid', 'nosuid', 'dev', 'nodev']);

/** "/run", "/run:size=64m,mode=1777" or {container, size}. */
export function tmpfsEntry(input: TmpfsInput): { container: string; size_bytes?: number } {
  if (typeof input !== 'string') return input.size === undefined ? { container: input.container } : { container: input.container, size_bytes: within('.size', () => sizeBytes(input.size!)) };
  const [container, options] = splitOnce(input, ':');
  let size: number | undefined;
  for (const option of options ? options.split(',') : []) {
    const [key, value] = splitOnce(option, '=');
    if (key === 'size' && value !== undefined) size = sizeBytes(value);
    else if (!(TMPFS_OPTIONS.has(key) && value === undefined) && !((key === 'mode' || key === 'uid' || key === 'gid') && value !== undefined && /^\d+$/.test(value))) {
      throw new FieldProblem(`the tmpfs option ${option} is not supported (size=, mode=, uid=, gid=, rw, noexec, nosuid, nodev)`);
    }
  }
  return size === undefined ? { container } : { container, size_bytes: size };
}

/** "/dev/dri" or "/dev/dri:/dev/dri[:rwm]": the container sees the device at the host's path. */
export function devicePath(input: string): string {
  const [host, container, permissions] = input.split(':');
  if (!host!.startsWith('/dev/')) throw new FieldProblem(`${host} is not a device under /dev/`);
  if (host!.split('/').some((segment) => segment === '..' || segment === '.')) throw new FieldProblem(`${host} must not contain . or .. segments`);
  if (container !== undefined && container !== host) throw new FieldProblem(`${input}: the device is shown inside at its own path (${host}); a different path is not supported`);
  if (permissions !== undefined && !/^[rwm]{1,3}$/.test(permissions)) throw new FieldProblem(`the device permissions ${permissions} must be letters of rwm`);
  return host!;
}

/** Reads each item of a list; a problem names the item's index. */
export function mapAt<T, R>(subpath: string, items: readonly T[], read: (item: T) => R): R[] {
  return items.map((item, i) => within(`${subpath}[${i}]`, () => read(item)));
}

/** Adds a subpath to a problem thrown by read. */
export function within<T>(subpath: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof FieldProblem) throw new FieldProblem(err.message, subpath + err.subpath);
    throw err;
  }
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + separator.length)];
}
