// Fortress ports. Each listener gets a host-bind port (what the engine publishes on 127.0.0.1)
// and a public port (where the proxy exposes it). Allocations live in the control store with the
// app, so they survive restarts; this module picks new ones and finds who holds a taken port.
import dgram from 'node:dgram';
import { readdir, readFile, readlink } from 'node:fs/promises';
import net from 'node:net';
import type { PortAllocation } from '../control-document.js';
import { PortInUseError, PortRangeExhaustedError } from './errors.js';

export interface PortRange {
  name: string;
  first: number;
  last: number;
}

export const HOST_BIND_PORTS: PortRange = { name: 'host-bind', first: 15000, last: 25000 };
export const PUBLIC_PORTS: PortRange = { name: 'public', first: 35000, last: 45000 };

export interface PortProbe {
  /** True when nothing listens on the port on this machine. */
  isFree(port: number): Promise<boolean>;
  /** Who listens on the port, e.g. "pid 812 (nginx)", when it can be found. */
  holder(port: number): Promise<string | undefined>;
}

/**
 * Ports for each listener: a listener that already has ports keeps them (an update must not
 * move an app's public address); a new one gets the lowest ports that no app owns and nothing
 * on the machine listens on.
 */
export async function allocatePorts(
  listeners: readonly string[],
  kept: Readonly<Record<string, PortAllocation>>,
  owned: ReadonlySet<number>,
  probe: Pick<PortProbe, 'isFree'>,
  ranges = { hostBind: HOST_BIND_PORTS, public: PUBLIC_PORTS },
): Promise<Record<string, PortAllocation>> {
  const taken = new Set(owned);
  const result: Record<string, PortAllocation> = {};
  for (const listener of listeners) {
    const existing = kept[listener];
    if (existing) {
      result[listener] = { ...existing };
      continue;
    }
    const hostBind = await lowestFree(ranges.hostBind, taken, probe);
    taken.add(hostBind);
    const publicPort = await lowestFree(ranges.public, taken, probe);
    taken.add(publicPort);
    result[listener] = { hostBind, public: publicPort };
  }
  return result;
}

async function lowestFree(range: PortRange, taken: ReadonlySet<number>, probe: Pick<PortProbe, 'isFree'>): Promise<number> {
  for (let port = range.first; port <= range.last; port++) {
    if (!taken.has(port) && (await probe.isFree(port))) return port;
  }
  throw new PortRangeExhaustedError(`${range.name} (${range.first}-${range.last})`);
}

/** Throws PortInUseError, naming the holder when it can, for the first port something holds. */
export async function assertPortsFree(ports: readonly number[], probe: PortProbe): Promise<void> {
  for (const port of ports) {
    if (!(await probe.isFree(port))) throw new PortInUseError(port, await probe.holder(port));
  }
}

/**
 * The probe for this machine: a test bind, and /proc to name the holder. A port is free only when
 * both TCP and UDP are: a listener may be either (protocol udp), and one number per listener keeps
 * the host-bind and public ranges a single pool.
 */
export const hostPortProbe: PortProbe = {
  isFree: async (port) => (await tcpFree(port)) && (await udpFree(port)),
  holder: findPortHolder,
};

function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    // A listener on 0.0.0.0 or 127.0.0.1 makes this bind fail, which is all that matters for loopback.
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind({ port, address: '127.0.0.1', exclusive: true }, () => socket.close(() => resolve(true)));
  });
}

/** The socket states that hold a port: a listening TCP socket, or any bound UDP one (UDP has no listen state). */
const HOLDING_STATE: Record<string, string> = { tcp: '0A', tcp6: '0A', udp: '07', udp6: '07' };

/** Finds the process holding a TCP or UDP port through /proc/net/{tcp,udp}{,6} and /proc/<pid>/fd. */
export async function findPortHolder(port: number, proc = '/proc'): Promise<string | undefined> {
  const inodes = new Set<string>();
  for (const [table, state] of Object.entries(HOLDING_STATE)) {
    const text = await readFile(`${proc}/net/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      if (!local || fields[3] !== state) continue;
      if (parseInt(local.split(':')[1]!, 16) === port) inodes.add(fields[9]!);
    }
  }
  if (!inodes.size) return undefined;
  for (const pid of (await readdir(proc)).filter((entry) => /^\d+$/.test(entry))) {
    const fds = await readdir(`${proc}/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`${proc}/${pid}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode && inodes.has(inode)) {
        const command = (await readFile(`${proc}/${pid}/comm`, 'utf8').catch(() => '?')).trim();
        return `pid ${pid} (${command})`;
      }
    }
  }
  return undefined;
}
