// Our tunnel in the bench: the tunnel client (tunnel-client-host.ts) against our relay
// (tunnel-relay-host.ts), or against the real Nexus server when Go can install it; plus the S4
// soak that kills the relay process again and again.
import { type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { freePort } from '../image/qemu.js';
import type { TunnelStatus } from '../services/common/remote-contract.js';
import type { ClientHostConfig } from './tunnel-client-host.js';
import { fdCount, goBinary, ProcessGroup, stopChild, TARGETS, waitPort, type BenchContext, type Peer, type RunningPeer, type Target } from './tunnel-peers.js';
import type { RelayHostConfig } from './tunnel-relay-host.js';

const HOSTNAMES: Record<Target, string> = { iperf: 'iperf.bench.test', blaster: 'blaster.bench.test', echo: 'echo.bench.test' };
/** Our relay routes by SNI or Host (the client declares names, not port claims): users name their target. */
const preface = (target: Target) => Buffer.from(`GET / HTTP/1.1\r\nHost: ${HOSTNAMES[target]}\r\n\r\n`, 'latin1');
/** The client's backoff forgets failures after a link stable this long (shipped: 30 s). */
const STABLE_MS = 1000;

export interface SoakResult {
  kills: number;
  p50ReconnectS: number;
  p90ReconnectS: number;
  maxReconnectS: number;
  p50KillToServingS: number;
  p50RelayRestartS: number;
  fdsBefore: number;
  fdsAfter: number;
  leakedFds: number;
  /** Streams the client still holds, plus connections left open at the echo target. */
  leakedStreams: number;
}

/** What the host processes answer on IPC. */
interface HostAnswer {
  heapUsed: number;
  status?: TunnelStatus;
}

interface OursRunning extends RunningPeer {
  clientStatus(): Promise<TunnelStatus>;
  clientPid: number;
  /** SIGKILLs the relay, starts it again on the same ports; resolves once it listens. */
  restartRelay(): Promise<{ killedAt: number; listeningAt: number }>;
}

function nodeHost(group: ProcessGroup, label: string, script: string, config: object, core?: string): ChildProcess {
  return group.pinned(label, process.execPath, ['--expose-gc', '--import', 'tsx', path.join('bench', script), JSON.stringify(config)], { core, ipc: true });
}

function ready(child: ChildProcess, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => line === 'ready' && (lines.close(), resolve()));
    child.once('exit', (code, signal) => reject(new Error(`${what} exited (${code ?? signal}) before it was ready`)));
  });
}

function ask<T>(child: ChildProcess, message: object): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (answer) => resolve(answer as T));
    child.send(message);
  });
}

/** One stream through the tunnel to the echo target: true once a byte came back. */
function echoOnce(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const done = (ok: boolean) => (clearTimeout(timer), socket.destroy(), resolve(ok));
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => socket.write(Buffer.concat([preface('echo'), Buffer.from('x')])));
    socket.once('data', () => done(true));
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
  });
}

async function waitServing(relayPort: number, timeoutMs = 120_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await echoOnce(relayPort, 1000)) return Date.now();
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`no echo through the tunnel within ${timeoutMs / 1000} s`);
}

type RelayStarter = (group: ProcessGroup, ctx: BenchContext, ports: { hub: number; relay: number }, secret: string) => Promise<ChildProcess>;

async function startOurs(name: string, ctx: BenchContext, startRelay: RelayStarter): Promise<OursRunning> {
  const group = new ProcessGroup(ctx);
  const ports = { hub: await freePort(), relay: await freePort(), iperf: await freePort() };
  const secret = randomBytes(24).toString('base64url');
  let relay = await startRelay(group, ctx, ports, secret);
  const config: ClientHostConfig = {
    relayUrl: `wss://localhost:${ports.hub}/connect`,
    secret,
    caFile: ctx.tls.caFile,
    targets: Object.fromEntries(TARGETS.map((target) => [HOSTNAMES[target], ctx.targets[target]])),
    prefaceBytes: Object.fromEntries(TARGETS.map((target) => [HOSTNAMES[target], preface(target).length])),
    stableMs: STABLE_MS,
  };
  const client = nodeHost(group, `${name}-client`, 'tunnel-client-host.ts', config);
  await ready(client, 'tunnel client');
  const shim = nodeHost(group, `${name}-iperf-preface`, 'tunnel-preface.ts', { listen: ports.iperf, relayPort: ports.relay, preface: preface('iperf').toString('latin1') }, ctx.clientCore);
  await ready(shim, 'iperf3 preface forwarder');
  await waitServing(ports.relay);
  return {
    name,
    entrances: { iperf: ports.iperf, blaster: ports.relay, echo: ports.relay },
    preface: { blaster: preface('blaster'), echo: preface('echo') },
    get entrancePids() {
      return [relay.pid!];
    },
    exitPids: [client.pid!],
    clientPid: client.pid!,
    settle: async () => {
      const exit = await ask<HostAnswer>(client, { gc: true });
      const entrance = await ask<HostAnswer>(relay, { gc: true });
      return { entranceHeapKb: entrance.heapUsed / 1024, exitHeapKb: exit.heapUsed / 1024 };
    },
    clientStatus: async () => (await ask<HostAnswer>(client, {})).status!,
    async restartRelay() {
      const killedAt = Date.now();
      await stopChild(relay, 'SIGKILL');
      relay = await startRelay(group, ctx, ports, secret);
      return { killedAt, listeningAt: Date.now() };
    },
    stop: () => group.stop(),
  };
}

const ourRelay: RelayStarter = async (group, ctx, ports, secret) => {
  const config: RelayHostConfig = { hubPort: ports.hub, relayPort: ports.relay, keyFile: ctx.tls.keyFile, certFile: ctx.tls.certFile, secret };
  const relay = nodeHost(group, 'ours-relay', 'tunnel-relay-host.ts', config);
  await ready(relay, 'relay');
  return relay;
};

export const oursPeer: Peer = {
  name: 'ours',
  describe: 'our tunnel client (services/tunnel TunnelClient) to our relay (services/relay), wss on loopback; users name the target with an HTTP Host head',
  unavailable: () => undefined,
  start: (ctx) => startOurs('ours', ctx, ourRelay),
};

const NEXUS_MODULE = 'github.com/AtDexters-Lab/nexus-proxy/cmd/nexus-proxy-server@v0.3.14';
let nexus: { file?: string; reason?: string } | undefined;
export const nexusPeer: Peer = {
  name: 'ours-nexus',
  describe: 'our tunnel client to the real Nexus proxy server (v0.3.14)',
  unavailable(ctx) {
    nexus ??= goBinary('nexus-proxy-server', NEXUS_MODULE, ctx.log);
    return nexus.reason;
  },
  start: (ctx) =>
    startOurs('ours-nexus', ctx, async (group, ctx, ports, secret) => {
      // Manual TLS from files, relay ports on loopback, no mesh (shared/notes/nexus-protocol.md §6).
      const config = path.join(ctx.dir, 'nexus.yaml');
      writeFileSync(config, [`backendListenAddress: "127.0.0.1:${ports.hub}"`, `hubTlsCertFile: "${ctx.tls.certFile}"`, `hubTlsKeyFile: "${ctx.tls.keyFile}"`, `relayPorts: [${ports.relay}]`, 'idleTimeoutSeconds: 3600', `backendsJWTSecret: "${secret}"`, ''].join('\n'));
      const server = group.pinned('nexus-server', nexus!.file!, ['-config', config]);
      await waitPort(ports.hub);
      await waitPort(ports.relay);
      return server;
    }),
};

const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!;

/** S4: the relay SIGKILLed `kills` times with streams open; reconnect times, then what was left behind. */
export async function reconnectSoak(peer: RunningPeer, kills: number, options: { echoConnections: () => Promise<number>; log: (line: string) => void }): Promise<SoakResult | undefined> {
  const ours = peer as OursRunning;
  if (!kills || !ours.restartRelay) return undefined;
  const port = ours.entrances.echo;
  const settled = async () => {
    await new Promise((r) => setTimeout(r, 1500));
    return fdCount(ours.clientPid);
  };
  const fdsBefore = await settled();
  const echoBefore = await options.echoConnections();
  const reconnect: number[] = [];
  const total: number[] = [];
  const restart: number[] = [];
  for (let kill = 1; kill <= kills; kill++) {
    // A few streams are open when the relay dies: their sockets must go with the session.
    const streams = await Promise.all(Array.from({ length: 5 }, () => echoOnce(port, 5000)));
    if (streams.includes(false)) throw new Error(`S4 kill ${kill}: the tunnel did not serve before the kill`);
    const held = await Promise.all(
      Array.from({ length: 5 }, () => new Promise<net.Socket>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.write(Buffer.concat([preface('echo'), Buffer.from('x')])));
        socket.on('error', () => undefined);
        socket.once('data', () => resolve(socket));
      })),
    );
    const { killedAt, listeningAt } = await ours.restartRelay();
    const servingAt = await waitServing(port);
    for (const socket of held) socket.destroy();
    reconnect.push((servingAt - listeningAt) / 1000);
    total.push((servingAt - killedAt) / 1000);
    restart.push((listeningAt - killedAt) / 1000);
    if (kill % 10 === 0) options.log(`  S4 ${kill}/${kills}: reconnect p50 so far ${percentile(reconnect, 0.5).toFixed(3)} s`);
    // The next kill comes after the link counts as stable, as a real outage would.
    await new Promise((r) => setTimeout(r, STABLE_MS));
  }
  const fdsAfter = await settled();
  const status = await ours.clientStatus();
  const leakedStreams = status.streams + (await options.echoConnections()) - echoBefore;
  return {
    kills,
    p50ReconnectS: percentile(reconnect, 0.5),
    p90ReconnectS: percentile(reconnect, 0.9),
    maxReconnectS: Math.max(...reconnect),
    p50KillToServingS: percentile(total, 0.5),
    p50RelayRestartS: percentile(restart, 0.5),
    fdsBefore,
    fdsAfter,
    leakedFds: fdsAfter - fdsBefore,
    leakedStreams,
  };
}
