// sd_notify: READY once listeners are bound, WATCHDOG from the main loop, STATUS when degraded.
// The `systemd-notify` package (and binary) sends the datagrams: Node has no unix datagram sockets.
// The package spawns the binary too, so every message is one short-lived child. Measured (bench
// notes in bench/results/footprint-*.md): ~2 ms of the service's CPU and ~4.5 ms of the child's per
// ping from a 109 MiB process, at load 16 on 2 cores; with WatchdogSec=30 that is one ping per
// 15 s, 0.04% of a core and no resident memory. A resident helper (a socat or python process)
// would cost more (its own RSS, always) and a native add-on would need a compiler in the image:
// the spawn stays.
// Without NOTIFY_SOCKET every call is a no-op, so services run the same outside systemd.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import systemdNotify from 'systemd-notify';

export interface Notifier {
  ready(): Promise<void>;
  status(text: string): Promise<void>;
  watchdog(): Promise<void>;
  /** How often to ping the watchdog (half its timeout), or undefined when systemd set none. */
  readonly watchdogIntervalMs: number | undefined;
}

export interface NotifierOptions {
  env: NodeJS.ProcessEnv;
  pid: number;
}

const execFileAsync = promisify(execFile);

export function createNotifier({ env, pid }: NotifierOptions): Notifier {
  if (!env.NOTIFY_SOCKET) {
    const noop = async () => {};
    return { ready: noop, status: noop, watchdog: noop, watchdogIntervalMs: undefined };
  }
  return {
    ready: async () => void (await systemdNotify({ ready: true, pid })),
    status: async (text) => void (await systemdNotify({ status: text, pid })),
    // The package has no WATCHDOG option; the binary takes it as an assignment.
    watchdog: async () => void (await execFileAsync('systemd-notify', [`--pid=${pid}`, 'WATCHDOG=1'])),
    watchdogIntervalMs: watchdogInterval(env, pid),
  };
}

function watchdogInterval(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  // WATCHDOG_PID names the process systemd watches; when it is another one, the watchdog is not ours.
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 2000));
}
