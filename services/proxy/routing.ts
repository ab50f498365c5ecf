// The route table compiled for serving: routes by public port and by host name, each with its
// middleware pipeline and a pool of keep-alive connections to its upstream. A new table keeps the
// pipelines (their rate-limit buckets and connection counts) and pools (their idle upstream
// connections) of routes that did not change.
import { isIP } from 'node:net';
import type { PortalRoute, Route, RouteTable } from '../common/route-table.js';
import { UpstreamPool } from './h1/upstream-pool.js';
import { Pipeline, type PipelineDeps } from './middleware.js';

export interface Upstream {
  /** An app on 127.0.0.1:port, or the portal on the daemon's unix socket. */
  target: { port: number } | { socketPath: string };
  pool: UpstreamPool;
}

export interface ServedRoute {
  route: Route;
  /** "app/listener", for logs. */
  name: string;
  upstream: Upstream;
  pipeline: Pipeline;
}

export type HostMatch = { kind: 'route'; served: ServedRoute } | { kind: 'portal'; upstream: Upstream } | { kind: 'unknown' };

export class Routing {
  private constructor(
    readonly rev: number | undefined,
    private readonly byPort: Map<number, ServedRoute>,
    private readonly udpByPort: Map<number, ServedRoute>,
    private readonly byHost: Map<string, ServedRoute>,
    private readonly portal: { route: PortalRoute; upstream: Upstream } | undefined,
    private readonly pools: Map<number | string, UpstreamPool>,
    private readonly pipelines: Map<string, Pipeline>,
  ) {}

  static empty(): Routing {
    return new Routing(undefined, new Map(), new Map(), new Map(), undefined, new Map(), new Map());
  }

  /** Compiles a table; routes whose public port is one of reservedPorts (the portal listeners) are skipped. */
  next(table: RouteTable, deps: PipelineDeps, reservedPorts: ReadonlySet<number>): { routing: Routing; skipped: string[] } {
    const pools = new Map<number | string, UpstreamPool>();
    const poolFor = (target: Upstream['target']): Upstream => {
      const key = 'port' in target ? target.port : target.socketPath;
      const pool = pools.get(key) ?? this.pools.get(key) ?? new UpstreamPool(target);
      pools.set(key, pool);
      return { target, pool };
    };
    const pipelines = new Map<string, Pipeline>();
    const byPort = new Map<number, ServedRoute>();
    const udpByPort = new Map<number, ServedRoute>();
    const byHost = new Map<string, ServedRoute>();
    const skipped: string[] = [];
    for (const route of table.routes) {
      const name = `${route.app}/${route.listener}`;
      if (reservedPorts.has(route.publicPort)) {
        skipped.push(`${name}: public port ${route.publicPort} is a portal listener`);
        continue;
      }
      const key = JSON.stringify([name, route.protocol, route.access, route.middleware]);
      const pipeline = this.pipelines.get(key) ?? new Pipeline(route, deps);
      pipelines.set(key, pipeline);
      const served = { route, name, upstream: poolFor({ port: route.hostBindPort }), pipeline };
      // A datagram has no Host header nor SNI: a udp route is reached by its port alone, and may
      // share its number with a TCP route (53/udp and 53/tcp of a DNS app).
      if (route.protocol === 'udp') {
        udpByPort.set(route.publicPort, served);
        continue;
      }
      byPort.set(route.publicPort, served);
      for (const hostname of route.hostnames) byHost.set(hostname, served);
    }
    const { portal: portalRoute } = table;
    const portal = portalRoute ? { route: portalRoute, upstream: poolFor(portalRoute.socketPath ? { socketPath: portalRoute.socketPath } : { port: portalRoute.hostBindPort }) } : undefined;
    // Idle connections to upstreams nobody routes to any more are closed; busy ones finish first.
    for (const [port, pool] of this.pools) if (!pools.has(port)) pool.destroy();
    return { routing: new Routing(table.rev, byPort, udpByPort, byHost, portal, pools, pipelines), skipped };
  }

  /** The TCP routes by public port. */
  get ports(): Map<number, ServedRoute> {
    return this.byPort;
  }

  /** The udp routes by public port. */
  get udpPorts(): Map<number, ServedRoute> {
    return this.udpByPort;
  }

  get portalHostnames(): string[] {
    return this.portal?.route.hostnames ?? [];
  }

  forPort(port: number): ServedRoute | undefined {
    return this.byPort.get(port);
  }

  /** Routing on the portal port: an app by its full name or first label, else the device itself, else unknown. */
  forHost(hostname: string): HostMatch {
    const served = this.byHost.get(hostname) ?? this.byHost.get(hostname.split('.')[0]!);
    if (served) return { kind: 'route', served };
    if (this.portal && (this.portal.route.hostnames.includes(hostname) || hostname === 'localhost' || isIP(hostname) !== 0)) {
      return { kind: 'portal', upstream: this.portal.upstream };
    }
    return { kind: 'unknown' };
  }

  /** A passthrough route (flow tls, or raw) named by a ClientHello's SNI. */
  forServerName(serverName: string | undefined): ServedRoute | undefined {
    if (!serverName) return undefined;
    const match = this.forHost(serverName);
    return match.kind === 'route' && isPassthrough(match.served.route) ? match.served : undefined;
  }

  close(): void {
    for (const pool of this.pools.values()) pool.destroy();
  }
}

/** Bytes go to the app untouched: it terminates TLS itself, or speaks no HTTP at all. */
export function isPassthrough(route: Route): boolean {
  return route.flow === 'tls' || route.protocol === 'raw';
}
