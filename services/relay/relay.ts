// A Nexus relay (the server side of shared/notes/nexus-protocol.md, v0.3.14) for tests and
// development: backends connect to the TLS hub at /connect; end users connect to the relay ports,
// are routed by SNI, Host or port claim, and are multiplexed onto the chosen backend's WebSocket.
// Every rule of the server can be switched (RelayRules) so tests can play a misbehaving server.
// Not implemented: the mesh of peers, remote token verification, and authorizer_status_uri
// polling before a reauth.
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import https from 'node:https';
import net from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ListenAddress } from '../common/config.js';
import type { Module } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import { CREDIT_WINDOW, CREDIT_BATCH, MAX_BACKEND_MESSAGE, type Frame } from '../tunnel/protocol.js';
import { BackendSession, type SessionHooks, type SessionRules } from './backend-session.js';
import type { ClaimPolicy } from './claims.js';
import { RoutePools, lookupKeys, portKey, udpPortKey } from './routing.js';
import { NEXUS_SNIFF_TIMEOUTS, sniffConnection } from './sniff.js';
import { UDP_MAX_DATAGRAM_BYTES, type UdpFlow } from './udp.js';

export interface RelayRules {
  /** For each handshake token (stage 0 after the upgrade, stage 1 after the challenge). */
  authTimeoutMs: number;
  pingIntervalMs: number;
  /** Reset by any message or pong from the backend. */
  readDeadlineMs: number;
  /** A backend whose WebSocket stays congested (users' reads paused) this long is dropped. */
  writeTimeoutMs: number;
  /** False: no client queue limit and no forward semaphore (grants are ignored). */
  enforceCredits: boolean;
  /** Reverse frames queued for one user before the client is removed. */
  clientQueueLimit: number;
  /** Grant the backend this many frames back per that many written to the user; 0 = never. */
  replenishBatch: number;
  /** The reverse window in connect; 0 = behave as an old server (no credits at all). */
  grantCredits: number;
  /** When set, re-authenticate at this interval whatever the token asks (fractions allowed). */
  reauthIntervalSeconds?: number;
  /** Sniffing (§5): first-byte wait per peek, extension per read, absolute cap. */
  sniffFirstByteMs: number;
  sniffExtensionMs: number;
  sniffCapMs: number;
  /** Bounds of a udp_routes claim's flow_idle_timeout_seconds (fractions allowed). */
  udpIdleMinSeconds: number;
  udpIdleMaxSeconds: number;
  /** How often idle UDP flows are looked for. */
  udpSweepMs: number;
  udpMaxDatagramBytes: number;
}

export const NEXUS_RULES: RelayRules = {
  authTimeoutMs: 10_000,
  pingIntervalMs: 54_000,
  readDeadlineMs: 60_000,
  writeTimeoutMs: 10_000,
  enforceCredits: true,
  clientQueueLimit: 128,
  replenishBatch: CREDIT_BATCH,
  grantCredits: CREDIT_WINDOW,
  sniffFirstByteMs: NEXUS_SNIFF_TIMEOUTS.firstByteMs,
  sniffExtensionMs: NEXUS_SNIFF_TIMEOUTS.extensionMs,
  sniffCapMs: NEXUS_SNIFF_TIMEOUTS.capMs,
  udpIdleMinSeconds: 5,
  udpIdleMaxSeconds: 300,
  udpSweepMs: 5000,
  udpMaxDatagramBytes: UDP_MAX_DATAGRAM_BYTES,
};

export interface RelayOptions {
  hub: ListenAddress;
  tls: { key: string; cert: string };
  /** backendsJWTSecret: the HMAC key, as its UTF-8 bytes. */
  secret: string;
  /** Relay ports, on 127.0.0.1 when given as a number; 0 picks a free port. */
  relayPorts: (number | ListenAddress)[];
  allowedTcpPortClaims?: number[];
  /** UDP relay ports (§2.7), on 127.0.0.1 when given as a number; 0 picks a free port. */
  udpRelayPorts?: (number | ListenAddress)[];
  allowedUdpPortClaims?: number[];
  /** The outbound proxy (§2.6); off by default, as in Nexus. */
  allowOutbound?: boolean;
  /** Ports outbound connections may reach; empty or absent: any. */
  allowedOutboundPorts?: number[];
  /** User idle limit, and the starved-forwarding limit (30 s when 0). Fractions allowed. */
  idleTimeoutSeconds?: number;
  rules?: Partial<RelayRules>;
  logger: Logger;
}

export interface BackendInfo {
  id: string;
  hostnames: string[];
  tcpPorts: number[];
  /** Open end-user connections. */
  streams: number;
}

/** Events: 'registered' {backendId, hostnames, tcpPorts}, 'rejected' {reason}, 'frame' {backendId, from, frame}, 'closed' {backendId, code}. */
export interface RelayEvents {
  registered: { backendId: string; hostnames: string[]; tcpPorts: number[] };
  rejected: { reason: string };
  frame: { backendId: string; from: 'backend' | 'relay'; frame: Frame };
  closed: { backendId: string; code: number };
}

/** The server's cap on connections being sniffed at once (v0.3.12); later ones wait their turn. */
const MAX_CONCURRENT_SNIFFS = 256;
const DEFAULT_IDLE_TIMEOUT_SECONDS = 60;

export class Relay implements Module {
  readonly name = 'relay';
  readonly events = new EventEmitter();
  hubPort = 0;
  relayPorts: number[] = [];
  udpRelayPorts: number[] = [];
  private readonly rules: RelayRules;
  private readonly policy: ClaimPolicy;
  private readonly sessionRules: SessionRules;
  private readonly hooks: SessionHooks;
  private readonly pools = new RoutePools<BackendSession>();
  private readonly sessions = new Set<BackendSession>();
  private readonly sockets = new Set<net.Socket>();
  private readonly hub: https.Server;
  private readonly listeners: net.Server[] = [];
  private readonly udpSockets: dgram.Socket[] = [];
  /** By "<relay port> <user ip>:<user port>". */
  private readonly flows = new Map<string, UdpFlow>();
  private udpSweep: NodeJS.Timeout | undefined;
  private sniffing = 0;
  private readonly sniffQueue: (() => void)[] = [];
  private nextBackend = 1;

  constructor(private readonly options: RelayOptions) {
    this.rules = { ...NEXUS_RULES, ...options.rules };
    this.policy = {
      secret: new TextEncoder().encode(options.secret),
      allowedTcpPortClaims: new Set(options.allowedTcpPortClaims ?? []),
      allowedUdpPortClaims: new Set(options.allowedUdpPortClaims ?? []),
      udpIdleBounds: { min: this.rules.udpIdleMinSeconds, max: this.rules.udpIdleMaxSeconds },
      outbound: options.allowOutbound ? { allowedPorts: new Set(options.allowedOutboundPorts ?? []) } : undefined,
      now: Date.now,
    };
    this.sessionRules = {
      authTimeoutMs: this.rules.authTimeoutMs,
      pingIntervalMs: this.rules.pingIntervalMs,
      readDeadlineMs: this.rules.readDeadlineMs,
      writeTimeoutMs: this.rules.writeTimeoutMs,
      grantCredits: this.rules.grantCredits,
      reauthIntervalSeconds: this.rules.reauthIntervalSeconds,
      stream: {
        enforceCredits: this.rules.enforceCredits,
        clientQueueLimit: this.rules.clientQueueLimit,
        // An old server grants nothing, so it replenishes nothing either.
        replenishBatch: this.rules.grantCredits > 0 ? this.rules.replenishBatch : 0,
        idleTimeoutMs: (options.idleTimeoutSeconds ?? DEFAULT_IDLE_TIMEOUT_SECONDS) * 1000,
      },
      udpMaxDatagramBytes: this.rules.udpMaxDatagramBytes,
    };
    this.hooks = {
      registered: (s) => {
        const { hostnames, tcpPorts, udpRoutes, weight } = s.claims!;
        this.pools.add(s, [...hostnames, ...tcpPorts.map(portKey), ...udpRoutes.map((route) => udpPortKey(route.port))], weight);
        options.logger.info('backend registered', { backend: s.id, sub: s.claims!.sub, hostnames, tcpPorts });
        this.emit('registered', { backendId: s.id, hostnames, tcpPorts });
      },
      rejected: (_s, reason) => this.emit('rejected', { reason }),
      frame: (s, from, frame) => this.emit('frame', { backendId: s.id, from, frame }),
      opened: (socket) => this.track(socket),
      closed: (s, code) => {
        this.sessions.delete(s);
        this.pools.remove(s);
        options.logger.info('backend closed', { backend: s.id, code });
        this.emit('closed', { backendId: s.id, code });
      },
    };
    // Exact path /connect (a query is ignored); no subprotocol is ever chosen, no compression.
    const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_BACKEND_MESSAGE, perMessageDeflate: false, handleProtocols: () => false, clientTracking: false });
    this.hub = https.createServer({ key: options.tls.key, cert: options.tls.cert }, (_req, res) => res.writeHead(404).end());
    this.hub.on('upgrade', (req, socket: net.Socket, head) => {
      if (req.url?.split('?')[0] !== '/connect') {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, socket));
    });
    this.hub.on('tlsClientError', (err) => options.logger.debug('hub TLS handshake failed', { err }));
  }

  async start(): Promise<void> {
    const { hub, logger } = this.options;
    this.hubPort = await listen(this.hub, hub);
    for (const entry of this.options.relayPorts) {
      const address = typeof entry === 'number' ? { host: '127.0.0.1', port: entry } : entry;
      const server = net.createServer({ allowHalfOpen: true }, (socket) => void this.onUser(socket, server));
      this.listeners.push(server);
      this.relayPorts.push(await listen(server, address));
    }
    for (const entry of this.options.udpRelayPorts ?? []) {
      const { host, port } = typeof entry === 'number' ? { host: '127.0.0.1', port: entry } : entry;
      const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
      this.udpSockets.push(socket);
      await bindUdp(socket, { host, port });
      const bound = socket.address().port;
      socket.on('message', (datagram, peer) => this.onDatagram(socket, bound, datagram, peer));
      socket.on('error', (err) => logger.warn('udp relay port error', { port: bound, err }));
      this.udpRelayPorts.push(bound);
    }
    if (this.udpSockets.length) this.udpSweep = setInterval(() => this.sweepFlows(), this.rules.udpSweepMs);
    logger.info('relay listening', { hub: `${hub.host}:${this.hubPort}`, relayPorts: this.relayPorts, udpRelayPorts: this.udpRelayPorts });
  }

  async stop(): Promise<void> {
    const closing = [this.hub, ...this.listeners].map((server) => new Promise((resolve) => server.close(resolve)));
    clearInterval(this.udpSweep);
    for (const socket of this.udpSockets) socket.close();
    this.dropBackends();
    for (const socket of this.sockets) socket.destroy();
    this.hub.closeAllConnections();
    await Promise.all(closing);
  }

  backends(): BackendInfo[] {
    return [...this.sessions]
      .filter((session) => session.claims)
      .map((session) => ({ id: session.id, hostnames: session.claims!.hostnames, tcpPorts: session.claims!.tcpPorts, streams: session.streams.size }));
  }

  /** Destroys every backend TCP connection, without a Close frame (a crashed or cut-off relay). */
  dropBackends(): void {
    for (const session of this.sessions) session.drop('dropBackends()');
  }

  private accept(ws: WebSocket, socket: net.Socket): void {
    const session = new BackendSession(`backend-${this.nextBackend++}`, ws, socket, this.policy, this.sessionRules, this.hooks, this.options.logger);
    this.sessions.add(session);
  }

  /** Every user and outbound socket, so that stop() ends them all. */
  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  private async onUser(socket: net.Socket, server: net.Server): Promise<void> {
    this.track(socket);
    socket.on('error', () => {}); // 'close' follows
    const connPort = (server.address() as net.AddressInfo).port;
    if (this.sniffing >= MAX_CONCURRENT_SNIFFS) await new Promise<void>((resolve) => this.sniffQueue.push(resolve));
    this.sniffing++;
    const result = socket.destroyed
      ? ({ route: 'drop', reason: 'user left while waiting to be sniffed' } as const)
      : await sniffConnection(socket, { firstByteMs: this.rules.sniffFirstByteMs, extensionMs: this.rules.sniffExtensionMs, capMs: this.rules.sniffCapMs });
    this.sniffing--;
    this.sniffQueue.shift()?.();
    const { logger } = this.options;
    if (result.route === 'drop') {
      logger.debug('user dropped while sniffing', { reason: result.reason });
      return void socket.destroy();
    }
    // A name never falls back to a port claim (§5).
    const hostname = result.route === 'host' ? result.name : portKey(connPort);
    const backend = this.pools.pick(result.route === 'host' ? lookupKeys(result.name) : [hostname]);
    if (!backend?.open(socket, { hostname, isTls: result.isTls, connPort, prelude: result.prelude })) {
      logger.info('no backend for route', { hostname, connPort });
      socket.destroy();
    }
  }

  private onDatagram(socket: dgram.Socket, port: number, datagram: Buffer, peer: dgram.RemoteInfo): void {
    const key = `${port} ${peer.address}:${peer.port}`;
    let flow = this.flows.get(key);
    if (!flow || flow.ended) {
      this.flows.delete(key);
      flow = this.pools.pick([udpPortKey(port)])?.openUdp(socket, peer, port);
      if (!flow) return void this.options.logger.debug('no backend for udp route', { port });
      this.flows.set(key, flow);
    }
    if (!flow.fromUser(datagram)) this.options.logger.debug('udp datagram dropped', { port, bytes: datagram.length });
  }

  /** Expired flows get disconnect; ended ones are forgotten. */
  private sweepFlows(): void {
    const now = Date.now();
    for (const [key, flow] of this.flows) {
      flow.sweep(now);
      if (flow.ended) this.flows.delete(key);
    }
  }

  private emit<E extends keyof RelayEvents>(event: E, payload: RelayEvents[E]): void {
    this.events.emit(event, payload);
  }
}

function bindUdp(socket: dgram.Socket, { host, port }: ListenAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

function listen(server: net.Server, { host, port }: ListenAddress): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}
