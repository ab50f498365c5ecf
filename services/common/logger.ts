// Structured logs: one JSON object per line on stdout, which journald keeps as is.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  service: string;
  level?: LogLevel;
  write?: (line: string) => void;
  now?: () => Date;
}

export function createLogger(options: LoggerOptions, bound: LogFields = {}): Logger {
  const { service, level = 'info', write = (line) => process.stdout.write(line), now = () => new Date() } = options;
  const emit = (lvl: LogLevel) => (msg: string, fields: LogFields = {}) => {
    if (LEVEL_RANK[lvl] < LEVEL_RANK[level]) return;
    write(JSON.stringify({ ts: now().toISOString(), level: lvl, service, msg, ...bound, ...fields }, errorToJson) + '\n');
  };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (fields) => createLogger(options, { ...bound, ...fields }),
  };
}

function errorToJson(_key: string, value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message } : value;
}
