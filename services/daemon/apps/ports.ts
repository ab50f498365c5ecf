// Fortress ports. Each listener gets a host-bind port (what the engine publishes on 127.0.0.1)
// and a public port (where the proxy exposes it). Allocations live in the control store with the
// app, so they survive restarts; this module picks new ones and finds who holds a taken port.
import dgram from 'node:dgram';
import { readdir, readFile, readlink } from 'node:fs/promises';
import net from 'node:net';
import type { PortAllocation } from '../control-document.js';
import { PortInUseError, PortRangeExhaustedError } from './errors.js';
import { PUBLIC_PORT_RANGE } from './spec/public-port.js';

export interface PortRange {
  name: string;
  first: number;
  last: number;
}

export const HOST_BIND_PORTS: PortRange = { name: 'host-bind', first: 15000, last: 25000 };
export const PUBLIC_PORTS: PortRange = { name: 'public', ...PUBLIC_PORT_RANGE };

export interface PortProbe {
  /** True when nothing listens on the port on this machine. */
  isFree(port: number): Promise<boolean>;
  /** Who listens on the port, e.g. "pid 812 (nginx)", when it can be found. */
  holder(port: number): Promise<string | undefined>;
  /**
   * For a fixed public port: undefined when nothing on the machine holds it for `protocol` on any
   * address, else who does ('' when that cannot be told).
   */
  publicHolder?(port: number, protocol: 'tcp' | 'udp'): Promise<string | undefined>;
}

/** A listener as allocation sees it: its name, and the public port it fixes (spec public_port), if it does. */
export interface WantedListener {
  name: string;
  publicPort?: number;
  protocol?: 'tcp' | 'udp';
}

/**
 * Ports for each listener: a listener that already has ports keeps them (an update must not
 * move an app's public address); a new one gets the lowest ports that no app owns and nothing
 * on the machine listens on. A fixed public port (53 for DNS) is taken as asked, once no other
 * app owns it and nothing on the machine holds it, on any address: the proxy binds every one.
 * `owned` may say who owns each port (a Map), for the error.
 */
export async function allocatePorts(
  listeners: readonly (string | WantedListener)[],
  kept: Readonly<Record<string, PortAllocation>>,
  owned: ReadonlySet<number> | ReadonlyMap<number, string>,
  probe: Pick<PortProbe, 'isFree'> & Partial<Pick<PortProbe, 'publicHolder'>>,
  ranges = { hostBind: HOST_BIND_PORTS, public: PUBLIC_PORTS },
): Promise<Record<string, PortAllocation>> {
  const wanted = listeners.map((listener): WantedListener => (typeof listener === 'string' ? { name: listener } : listener));
  const taken = new Set(owned.keys());
  // The fixed ones first: none of them may be picked for another listener.
  for (const { publicPort } of wanted) if (publicPort !== undefined) taken.add(publicPort);
  const inRange = (port: number) => port >= ranges.public.first && port <= ranges.public.last;
  const result: Record<string, PortAllocation> = {};
  for (const listener of wanted) {
    const existing = kept[listener.name];
    let hostBind = existing?.hostBind;
    if (hostBind === undefined) {
      hostBind = await lowestFree(ranges.hostBind, taken, probe);
      taken.add(hostBind);
    }
    let publicPort: number;
    if (listener.publicPort !== undefined) {
      publicPort = listener.publicPort;
      // Kept: the proxy holds it for this very listener already.
      if (existing?.public !== publicPort) await assertPublicPortFree(publicPort, listener.protocol ?? 'tcp', owned, probe.publicHolder ?? holderOnAnyAddress);
    } else if (existing && inRange(existing.public)) {
      publicPort = existing.public;
    } else {
      // New, or no longer fixed: a port of the range.
      publicPort = await lowestFree(ranges.public, taken, probe);
      taken.add(publicPort);
    }
    result[listener.name] = { hostBind, public: publicPort };
  }
  return result;
}

/**
 * The host port a start failed on because something holds it: our own check's PortInUseError, or
 * the engine's words when another container took it between that check and the start
 * ("listen tcp4 127.0.0.1:15000: bind: address already in use").
 */
export function takenHostPort(err: unknown): number | undefined {
  if (err instanceof PortInUseError) return err.port;
  const match = /127\.0\.0\.1:(\d+): bind: address already in use/.exec(err instanceof Error ? err.message : String(err));
  return match ? Number(match[1]) : undefined;
}

/** The lowest host-bind port free of `owned` and of anything on the machine: for a listener whose one another daemon took. */
export function freeHostBindPort(owned: ReadonlySet<number>, probe: Pick<PortProbe, 'isFree'>, range = HOST_BIND_PORTS): Promise<number> {
  return lowestFree(range, owned, probe);
}

async function assertPublicPortFree(
  port: number,
  protocol: 'tcp' | 'udp',
  owned: ReadonlySet<number> | ReadonlyMap<number, string>,
  holderOf: NonNullable<PortProbe['publicHolder']>,
): Promise<void> {
  if (owned.has(port)) throw new PortInUseError(port, owned instanceof Map ? owned.get(port) : undefined, protocol);
  const holder = await holderOf(port, protocol);
  if (holder !== undefined) throw new PortInUseError(port, holder || undefined, protocol);
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
  publicHolder: (port, protocol) => holderOnAnyAddress(port, protocol),
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
  return processOf(await socketsOn(port, Object.keys(HOLDING_STATE), proc), proc);
}

/**
 * Whether anything holds `port` for `protocol` on any address, read from /proc rather than by a
 * test bind: the daemon need not be allowed to bind a port below 1024, and a listener on one
 * address only (systemd-resolved's 127.0.0.53:53, a container engine's DNS on a bridge address)
 * still keeps the proxy from binding all of them. Undefined when free, else its holder ('' when
 * it cannot be told).
 */
export async function holderOnAnyAddress(port: number, protocol: 'tcp' | 'udp', proc = '/proc'): Promise<string | undefined> {
  const inodes = await socketsOn(port, [protocol, `${protocol}6`], proc);
  if (!inodes.size) return undefined;
  return (await processOf(inodes, proc)) ?? '';
}

/** The inodes of the sockets that hold `port` in the given /proc/net tables. */
async function socketsOn(port: number, tables: readonly string[], proc: string): Promise<Set<string>> {
  const inodes = new Set<string>();
  for (const table of tables) {
    const text = await readFile(`${proc}/net/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      if (!local || fields[3] !== HOLDING_STATE[table]) continue;
      if (parseInt(local.split(':')[1]!, 16) === port) inodes.add(fields[9]!);
    }
  }
  return inodes;
}

/** "pid N (command)" of the first process with one of the sockets open. */
async function processOf(inodes: ReadonlySet<string>, proc: string): Promise<string | undefined> {
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
