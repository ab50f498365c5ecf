// A real Avahi in a network namespace made by a test: its own D-Bus bus (there is no system bus
// here) and its own /run/avahi-daemon (pid file and socket paths are fixed at build time, so two
// daemons in two namespaces would otherwise share them). `ip netns exec` gives each command its
// own mount namespace, so the bind mount is seen by that daemon alone.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { inNsAsync } from './netns.js';
import { waitFor } from './processes.js';

export interface NetnsAvahi {
  /** DBUS_SYSTEM_BUS_ADDRESS for Avahi's clients in this namespace (avahi-resolve, avahi-publish, the daemon). */
  bus: string;
  /** What avahi-daemon logged (host name, conflicts). */
  log: string[];
  /** avahi-resolve -4 -n name: the address, or undefined when nobody answers (its own 5 s timeout). */
  resolve(name: string): Promise<string | undefined>;
  /** avahi-publish -a -R name address, held until the returned stop(). */
  publish(name: string, address: string): Promise<() => void>;
  /** Stops avahi-daemon only (it withdraws its records with goodbyes); the bus stays for a restart. */
  stopDaemon(): Promise<void>;
  startDaemon(): Promise<void>;
  stop(): Promise<void>;
}

function ended(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startNetnsAvahi(ns: string, dir: string, iface: string): Promise<NetnsAvahi> {
  await mkdir(path.join(dir, 'run'), { recursive: true });
  const socket = path.join(dir, 'bus');
  const bus = `unix:path=${socket}`;
  const conf = path.join(dir, 'avahi-daemon.conf');
  // Only the test's link, IPv4 (the namespaces' IPv6 is link-local only); no HINFO/workstation extras.
  await writeFile(conf, `[server]\nuse-ipv4=yes\nuse-ipv6=no\nallow-interfaces=${iface}\nenable-dbus=yes\nratelimit-burst=1000\n[publish]\npublish-workstation=no\npublish-hinfo=no\n`);
  const dbus = spawn('ip', ['netns', 'exec', ns, 'dbus-daemon', '--session', `--address=${bus}`, '--nofork', '--print-address'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => createInterface({ input: dbus.stdout! }).once('line', resolve));
  const log: string[] = [];
  const publishers = new Set<ChildProcess>();
  let daemon: ChildProcess | undefined;
  const env = (...args: string[]) => ['env', `DBUS_SYSTEM_BUS_ADDRESS=${bus}`, ...args];

  const startDaemon = async () => {
    const from = log.length;
    daemon = spawn('ip', ['netns', 'exec', ns, 'sh', '-c', `mkdir -p /run/avahi-daemon && mount --bind '${dir}/run' /run/avahi-daemon && rm -f /run/avahi-daemon/pid && DBUS_SYSTEM_BUS_ADDRESS='${bus}' exec avahi-daemon --no-drop-root --no-chroot --no-rlimits -f '${conf}'`], { stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [daemon.stdout!, daemon.stderr!]) createInterface({ input: stream }).on('line', (line) => log.push(line));
    await waitFor(() => log.slice(from).some((l) => l.includes('Server startup complete')) || undefined, 15_000, `avahi-daemon in ${ns} started (${log.slice(from).join(' | ')})`);
  };
  const stopDaemon = async () => {
    if (!daemon) return;
    daemon.kill('SIGTERM');
    await ended(daemon);
    daemon = undefined;
  };
  await startDaemon();

  return {
    bus,
    log,
    async resolve(name) {
      try {
        const out = await inNsAsync(ns, 'env', [`DBUS_SYSTEM_BUS_ADDRESS=${bus}`, 'avahi-resolve', '-4', '-n', name], 15_000);
        const [answered, address] = out.trim().split('\t');
        return answered === name ? address : undefined;
      } catch {
        return undefined;
      }
    },
    async publish(name, address) {
      const child = spawn('ip', ['netns', 'exec', ns, ...env('avahi-publish', '-a', '-R', name, address)], { stdio: ['ignore', 'pipe', 'pipe'] });
      publishers.add(child);
      const said: string[] = [];
      for (const stream of [child.stdout!, child.stderr!]) createInterface({ input: stream }).on('line', (line) => said.push(line));
      await waitFor(() => said.some((l) => l.startsWith('Established')) || (child.exitCode !== null && Promise.reject(new Error(said.join(' | ')))) || undefined, 15_000, `${name} published in ${ns}`);
      return () => {
        child.kill('SIGTERM');
        publishers.delete(child);
      };
    },
    stopDaemon,
    startDaemon,
    async stop() {
      for (const child of publishers) child.kill('SIGTERM');
      await stopDaemon();
      dbus.kill('SIGTERM');
      await ended(dbus);
    },
  };
}
