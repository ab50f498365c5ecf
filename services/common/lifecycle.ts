// The life of a service: start modules in order, tell systemd READY only when all of them serve,
// ping the watchdog from the event loop, stop in reverse order on SIGTERM.
import { createLogger, type Logger } from './logger.js';
import type { Notifier } from './notify.js';

export interface Module {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface ServiceOptions {
  logger: Logger;
  notifier: Notifier;
  modules: Module[];
  /** Where SIGTERM/SIGINT come from; process in production, an EventEmitter in tests. */
  signals?: NodeJS.EventEmitter;
}

export interface RunningService {
  /** Resolves when the service has stopped, with the exit code it should end with. */
  readonly stopped: Promise<number>;
  stop(reason: string): Promise<number>;
}

export async function startService({ logger, notifier, modules, signals = process }: ServiceOptions): Promise<RunningService> {
  const started: Module[] = [];
  try {
    for (const module of modules) {
      await module.start();
      started.push(module);
      logger.debug('module started', { module: module.name });
    }
  } catch (err) {
    logger.error('start failed', { module: modules[started.length]?.name, err });
    await stopAll(started, logger);
    throw err;
  }

  await notifier.ready();
  logger.info('ready', { modules: modules.map((m) => m.name) });

  const watchdog =
    notifier.watchdogIntervalMs === undefined
      ? undefined
      : setInterval(() => notifier.watchdog().catch((err) => logger.warn('watchdog ping failed', { err })), notifier.watchdogIntervalMs);

  let resolveStopped!: (code: number) => void;
  const stopped = new Promise<number>((resolve) => (resolveStopped = resolve));
  let stopping: Promise<number> | undefined;

  const stop = (reason: string): Promise<number> => {
    stopping ??= (async () => {
      logger.info('stopping', { reason });
      clearInterval(watchdog);
      const failures = await stopAll(started, logger);
      // Only now: a second SIGTERM while stopping must not kill the process half-way.
      signals.off('SIGTERM', onSignal);
      signals.off('SIGINT', onSignal);
      logger.info('stopped', { failures });
      const code = failures ? 1 : 0;
      resolveStopped(code);
      return code;
    })();
    return stopping;
  };
  const onSignal = (signal: string) => void stop(signal);
  signals.on('SIGTERM', onSignal);
  signals.on('SIGINT', onSignal);
  return { stopped, stop };
}

async function stopAll(started: Module[], logger: Logger): Promise<number> {
  let failures = 0;
  for (const module of [...started].reverse()) {
    try {
      await module.stop();
    } catch (err) {
      failures++;
      logger.error('stop failed', { module: module.name, err });
    }
  }
  return failures;
}

/** Entry point glue for index.ts: a config or start error exits non-zero, so systemd sees the failure. */
export async function runMain(service: string, main: () => Promise<RunningService>): Promise<void> {
  try {
    const running = await main();
    process.exit(await running.stopped);
  } catch (err) {
    createLogger({ service }).error('fatal', { err });
    process.exit(1);
  }
}
