// Raw UDP through the proxy: one datagram socket per udp route's public port. Each client
// address:port gets a flow (udp-flows.ts) with its own upstream socket on loopback, so what the app
// answers on that socket goes back to that client and no other. Connection-level middleware
// applies per new flow: ip_allow, rate_limit (a token per flow) and connection_limit (flows), on
// top of the proxy's own flow caps. The auth gate does not apply: a datagram carries no session
// cookie, which is why the daemon makes udp routes public and refuses auth on them.
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIPv6 } from 'node:net';
import type { ListenAddress } from '../common/config.js';
import type { Logger } from '../common/logger.js';
import { unmapped } from './client-address.js';
import { PortSet, type OpenPort } from './listeners.js';
import type { ServedRoute } from './routing.js';
import { FlowTable, type FlowEntry, type FlowLimits, type FlowRefusal } from './udp-flows.js';

export type RefusalReason = FlowRefusal | 'middleware';

export interface UdpCounters {
  flowsOpened: number;
  datagramsIn: number;
  datagramsOut: number;
  refused: Record<RefusalReason, number>;
}

/** The upstream side of a flow; emits 'close' when the flow is forgotten (connection_limit counts on it). */
class Flow extends EventEmitter {
  /** Datagrams from the client and from the app, for the log line when the flow ends. */
  datagramsIn = 0;
  datagramsOut = 0;

  constructor(readonly upstream: dgram.Socket) {
    super();
  }
}

/** How often refusals are summed up in the log: the first one is logged at once, then one line per period. */
const REFUSAL_LOG_MS = 10_000;

export class UdpListener implements OpenPort<ServedRoute> {
  private readonly socket: dgram.Socket;
  private readonly flows: FlowTable<Flow>;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  readonly counters: UdpCounters = { flowsOpened: 0, datagramsIn: 0, datagramsOut: 0, refused: { listener_full: 0, client_full: 0, middleware: 0 } };
  /** Per reason: refusals since the last line about them, and when that line was. */
  private readonly refusalLog = new Map<RefusalReason, { unlogged: number; at: number }>();
  private trafficLog = { at: 0, datagramsIn: 0 };

  constructor(
    private served: ServedRoute,
    private readonly address: ListenAddress,
    private readonly limits: FlowLimits,
    logger: Logger,
    /** How often a listener that saw traffic logs its counters (the TCP side's request_log, for datagrams). */
    private readonly trafficLogMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {
    this.log = logger.child({ listener: served.name, protocol: 'udp' });
    this.flows = new FlowTable(limits);
    // '::' is dual-stack (ipv6Only defaults to false), as the TCP listeners on '::' are.
    this.socket = dgram.createSocket({ type: isIPv6(address.host) ? 'udp6' : 'udp4' });
    this.socket.on('message', (message, client) => this.fromClient(message, client));
    // A send to a client that went away (ICMP unreachable) must not end the listener.
    this.socket.on('error', (err) => this.log.warn('udp listener error', { err }));
  }

  get name(): string {
    return this.served.name;
  }

  get port(): number {
    return this.socket.address().port;
  }

  get openFlows(): number {
    return this.flows.size;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => {
        this.socket.close();
        reject(err);
      };
      this.socket.once('error', fail);
      this.socket.bind({ address: this.address.host, port: this.address.port, exclusive: true }, () => {
        this.socket.off('error', fail);
        resolve();
      });
    });
    this.sweeper = setInterval(() => this.expire(), Math.max(50, Math.min(1000, this.limits.briefIdleMs / 4)));
    this.sweeper.unref();
    this.trafficLog.at = this.now();
    this.log.info('listening', { address: `${this.address.host}:${this.port}` });
  }

  /**
   * A new table: the same upstream and middleware keep their flows; any change closes them, so
   * the next datagram of each client is admitted again under the new rules (an ip_allow that no
   * longer lists it, say) and goes to the new upstream.
   */
  update(served: ServedRoute): void {
    const same = served.pipeline === this.served.pipeline && served.route.hostBindPort === this.served.route.hostBindPort;
    this.served = served;
    if (!same) this.closeAll('route changed');
  }

  stop(): void {
    clearInterval(this.sweeper);
    this.closeAll('listener closed');
    this.socket.close();
    this.log.info('stopped listening');
  }

  private fromClient(message: Buffer, rinfo: dgram.RemoteInfo): void {
    this.counters.datagramsIn++;
    const key = `${rinfo.address}|${rinfo.port}`;
    const entry = this.flows.get(key) ?? this.open(key, rinfo);
    if (!entry) return;
    this.flows.fromClient(entry, this.now());
    entry.value.datagramsIn++;
    entry.value.upstream.send(message, this.served.route.hostBindPort, '127.0.0.1');
  }

  private open(key: string, rinfo: dgram.RemoteInfo): FlowEntry<Flow> | undefined {
    const client = unmapped(rinfo.address);
    const full = this.flows.refusal(client);
    if (full) return void this.refuse(full, client);
    const upstream = dgram.createSocket('udp4');
    const flow = new Flow(upstream);
    if (!this.served.pipeline.admitConnection(flow, client)) {
      upstream.close();
      return void this.refuse('middleware', client);
    }
    const entry = this.flows.add(key, client, flow, this.now());
    this.counters.flowsOpened++;
    const hostBindPort = this.served.route.hostBindPort;
    upstream.on('message', (reply, from) => {
      // Only the app answers on this socket's port; anything else on loopback is not its reply.
      if (from.port !== hostBindPort || from.address !== '127.0.0.1') return;
      this.flows.fromUpstream(entry, this.now());
      this.counters.datagramsOut++;
      flow.datagramsOut++;
      this.socket.send(reply, rinfo.port, rinfo.address);
    });
    upstream.on('error', (err) => {
      this.log.debug('udp upstream error', { err, client });
      this.close(entry, 'upstream error');
    });
    upstream.bind({ address: '127.0.0.1', port: 0 });
    return entry;
  }

  private refuse(reason: RefusalReason, client: string): void {
    this.counters.refused[reason]++;
    const now = this.now();
    const log = this.refusalLog.get(reason) ?? { unlogged: 0, at: -Infinity };
    this.refusalLog.set(reason, log);
    log.unlogged++;
    // One line per reason and period, not one per datagram: a flood must not become a flood of log lines.
    if (now - log.at < REFUSAL_LOG_MS) return;
    this.log.warn('udp flow refused', { reason, client, refused: log.unlogged, totals: { ...this.counters.refused }, limits: { maxFlows: this.limits.maxFlows, maxFlowsPerClient: this.limits.maxFlowsPerClient } });
    log.unlogged = 0;
    log.at = now;
  }

  private expire(): void {
    const now = this.now();
    for (const entry of this.flows.expire(now)) this.release(entry, 'idle');
    if (now - this.trafficLog.at < this.trafficLogMs) return;
    // Totals since the listener opened, and only when something came in since the last line.
    if (this.counters.datagramsIn !== this.trafficLog.datagramsIn) this.log.info('udp traffic', { ...this.counters, refused: { ...this.counters.refused }, openFlows: this.flows.size });
    this.trafficLog = { at: now, datagramsIn: this.counters.datagramsIn };
  }

  private close(entry: FlowEntry<Flow>, why: string): void {
    if (this.flows.remove(entry)) this.release(entry, why);
  }

  private closeAll(why: string): void {
    for (const entry of this.flows.clear()) this.release(entry, why);
  }

  private release(entry: FlowEntry<Flow>, why: string): void {
    entry.value.upstream.removeAllListeners('message');
    try {
      entry.value.upstream.close();
    } catch {
      // Already closed.
    }
    entry.value.emit('close');
    this.log.debug('udp flow closed', { client: entry.client, flow: entry.key, why, assured: entry.assured, datagramsIn: entry.value.datagramsIn, datagramsOut: entry.value.datagramsOut });
  }
}

export interface UdpListenersOptions {
  bindHost: string;
  limits: FlowLimits;
  trafficLogMs?: number;
  logger: Logger;
}

/** The udp routes' public ports: each a UdpListener, its route updated in place as the table changes. */
export class UdpListeners extends PortSet<ServedRoute> {
  constructor(options: UdpListenersOptions) {
    super('udp-listeners', (port, served) => new UdpListener(served, { host: options.bindHost, port }, options.limits, options.logger, options.trafficLogMs), options.logger);
  }
}
