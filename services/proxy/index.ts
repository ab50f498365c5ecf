// Composition root of the proxy: the only door into the device. The portal listeners route by
// host name (apps and the portal); each app listener gets its own public port, opened and
// closed as the route table from the daemon changes; the tunnel ingress sockets take what
// arrives through the relay.
import { fileURLToPath } from 'node:url';
import { field, loadServiceConfig, parseAbsolutePath, parseList, parseListen, parsePositiveInt } from '../common/config.js';
import { HealthReporter, ServingReport } from '../common/health-report.js';
import type { LinkState } from '../common/long-poll.js';
import { runMain, startService } from '../common/lifecycle.js';
import { createLogger } from '../common/logger.js';
import { createNotifier } from '../common/notify.js';
import type { RouteTable } from '../common/route-table.js';
import { CertStore } from './cert-store.js';
import { childProcessAuthority } from './certificate-authority.js';
import { ClientAddresses } from './client-address.js';
import { DaemonClient } from './daemon-client.js';
import { DeviceCaPush } from './device-ca-push.js';
import { FrontDoor } from './front-door.js';
import { HttpForwarder } from './http-forwarder.js';
import { AppListeners, PortListener } from './listeners.js';
import { PortalAddress } from './portal-address.js';
import { RouteClient } from './route-client.js';
import { Routing } from './routing.js';
import { SessionCache } from './session-cache.js';
import { TunnelIngress } from './tunnel-ingress.js';
import { DEFAULT_FLOW_LIMITS } from './udp-flows.js';
import { UdpListeners } from './udp-relay.js';

async function main(env: NodeJS.ProcessEnv) {
  const config = loadServiceConfig(
    'proxy',
    {
      /**
       * The portal listeners: host-name routing to the portal and the apps, plain HTTP and TLS on the same port.
       * '::' is dual-stack (Node listens with ipv6Only false): IPv6 and IPv4 clients on one socket,
       * the IPv4 ones as ::ffff:a.b.c.d, which client-address.ts unmaps.
       */
      listen: field('PICCOLO_PROXY_LISTEN', (raw) => parseList(raw).map(parseListen), [parseListen('[::]:80'), parseListen('[::]:443')]),
      /** Where the apps' public ports are opened (TCP and UDP), dual-stack as the portal's. */
      bindHost: field('PICCOLO_PROXY_BIND_HOST', String, '::'),
      daemonSocket: field('PICCOLO_PROXY_DAEMON_SOCKET', parseAbsolutePath, '/run/piccolo-daemon/internal.sock'),
      certDir: field('PICCOLO_PROXY_CERT_DIR', parseAbsolutePath, '/var/lib/piccolo-proxy/certs'),
      /** Unset: the portal as each client reaches the device (its scheme and host, the portal listener's port). */
      loginUrl: field('PICCOLO_PROXY_LOGIN_URL', parseLoginUrl, ''),
      headersTimeoutMs: field('PICCOLO_PROXY_HEADERS_TIMEOUT_MS', parsePositiveInt, 10_000),
      requestTimeoutMs: field('PICCOLO_PROXY_REQUEST_TIMEOUT_MS', parsePositiveInt, 300_000),
      keepAliveTimeoutMs: field('PICCOLO_PROXY_KEEPALIVE_TIMEOUT_MS', parsePositiveInt, 30_000),
      upstreamTimeoutMs: field('PICCOLO_PROXY_UPSTREAM_TIMEOUT_MS', parsePositiveInt, 60_000),
      maxBodyBytes: field('PICCOLO_PROXY_MAX_BODY_BYTES', parsePositiveInt, 1024 ** 3),
      maxHeaderBytes: field('PICCOLO_PROXY_MAX_HEADER_BYTES', parsePositiveInt, 16 * 1024),
      /** The tunnel ingress: relay streams, each led by a PROXY v2 header; TLS, and plain HTTP (ACME and redirects only). */
      tunnelTlsSocket: field('PICCOLO_PROXY_TUNNEL_TLS_SOCKET', parseAbsolutePath, '/run/piccolo-proxy/tunnel-tls.sock'),
      tunnelHttpSocket: field('PICCOLO_PROXY_TUNNEL_HTTP_SOCKET', parseAbsolutePath, '/run/piccolo-proxy/tunnel-http.sock'),
      tunnelGroup: field('PICCOLO_PROXY_TUNNEL_GROUP', String, 'piccolo-tunnel'),
      /** UDP listeners: flows (client address:port, each an upstream socket) per listener and per client address, and their idle timeouts (udp-flows.ts). */
      udpMaxFlows: field('PICCOLO_PROXY_UDP_MAX_FLOWS', parsePositiveInt, DEFAULT_FLOW_LIMITS.maxFlows),
      udpMaxFlowsPerClient: field('PICCOLO_PROXY_UDP_MAX_FLOWS_PER_CLIENT', parsePositiveInt, DEFAULT_FLOW_LIMITS.maxFlowsPerClient),
      udpIdleMs: field('PICCOLO_PROXY_UDP_IDLE_MS', parsePositiveInt, DEFAULT_FLOW_LIMITS.idleMs),
      udpBriefIdleMs: field('PICCOLO_PROXY_UDP_BRIEF_IDLE_MS', parsePositiveInt, DEFAULT_FLOW_LIMITS.briefIdleMs),
      /** How often a UDP listener that saw traffic logs its counters (datagrams, flows, refusals). */
      udpTrafficLogMs: field('PICCOLO_PROXY_UDP_TRAFFIC_LOG_MS', parsePositiveInt, 60_000),
    },
    env,
  );
  const logger = createLogger({ service: 'proxy', level: config.logLevel });
  const health = new HealthReporter({ socketPath: config.healthSocket, intervalMs: config.healthIntervalMs, logger });
  // Serving once every module has started and a route table came (until then every request gets
  // 503 "starting"); degraded while the daemon's table cannot be fetched, the last one still served.
  let daemonLink: LinkState = { up: true };
  let tableApplied = false;
  const serving = new ServingReport(health, 'proxy', () => {
    if (!tableApplied) return { state: 'down', reason: 'waiting for the first route table from the daemon' };
    return daemonLink.up ? { state: 'ok' } : { state: 'degraded', reason: daemonLink.reason };
  });

  const daemon = new DaemonClient({ socketPath: config.daemonSocket });
  // The bundle's cert-maker.mjs, beside this index.mjs (image/bundle.ts).
  const certMaker = fileURLToPath(new URL('./cert-maker.mjs', import.meta.url));
  const certs = new CertStore({ dir: config.certDir, logger, authority: childProcessAuthority(certMaker) });
  // The portal offers the CA's certificate for download: the daemon gets it from here.
  const caPush = new DeviceCaPush({ daemon, certificate: () => certs.caCertificate, logger });
  const portalPorts = new Set<number>();
  let routing = Routing.empty();
  const portal = new PortalAddress({ portalPorts, portalHostnames: () => routing.portalHostnames, loginUrl: config.loginUrl });
  const pipelineDeps = { sessions: new SessionCache({ daemon, logger }), portal, logger };
  const clients = new ClientAddresses();
  const frontDoor = new FrontDoor({
    routing: () => routing,
    portalPorts,
    certs,
    forwarder: new HttpForwarder({ logger, upstreamTimeoutMs: config.upstreamTimeoutMs, maxBodyBytes: config.maxBodyBytes, portal }),
    daemon,
    clients,
    limits: config,
    portal,
    logger,
  });
  const tunnelIngress = new TunnelIngress({
    tlsSocket: config.tunnelTlsSocket,
    httpSocket: config.tunnelHttpSocket,
    group: config.tunnelGroup,
    onTlsConnection: (socket) => void frontDoor.onTunnelTlsConnection(socket),
    routing: () => routing,
    daemon,
    clients,
    limits: config,
    logger,
  });
  const portalListeners = config.listen.map((address, i) => new PortListener(`listener-${i}`, address, frontDoor.onConnection, logger));
  const registerPortalPorts = {
    name: 'portal-ports',
    start: async () => portalListeners.forEach((listener) => portalPorts.add(listener.port)),
    stop: async () => {},
  };
  const appListeners = new AppListeners({ bindHost: config.bindHost, onConnection: frontDoor.onConnection, logger });
  const udpListeners = new UdpListeners({
    bindHost: config.bindHost,
    limits: { maxFlows: config.udpMaxFlows, maxFlowsPerClient: config.udpMaxFlowsPerClient, idleMs: config.udpIdleMs, briefIdleMs: config.udpBriefIdleMs },
    trafficLogMs: config.udpTrafficLogMs,
    logger,
  });

  const applyTable = async (table: RouteTable) => {
    const next = routing.next(table, pipelineDeps, portalPorts);
    for (const reason of next.skipped) logger.error('route skipped', { reason });
    routing = next.routing;
    certs.useTableCertificates(table.certificates ?? []);
    await appListeners.reconcile(new Map([...routing.ports].map(([port, served]) => [port, served.name])));
    await udpListeners.reconcile(routing.udpPorts);
    await certs.coverDeviceNames(routing.portalHostnames).catch((err) => logger.error('cannot issue the device certificate', { err }));
    logger.info('routes applied', { rev: table.rev, routes: table.routes.length, portal: table.portal !== null });
    // A new table may come from a restarted daemon, which has lost the CA certificate: hand it over again.
    caPush.push();
    if (!tableApplied) {
      tableApplied = true;
      serving.refresh();
    }
  };
  const routeClient = new RouteClient({
    daemon,
    logger,
    onTable: applyTable,
    onLinkState: (link) => {
      daemonLink = link;
      serving.refresh();
    },
  });

  return startService({
    logger,
    notifier: createNotifier({ env, pid: process.pid }),
    // The reporter first, so that a long first start (the local CA) keeps saying "starting".
    modules: [health, certs, frontDoor, ...portalListeners, registerPortalPorts, appListeners, udpListeners, routeClient, caPush, tunnelIngress, serving],
  });
}

/** An absolute http(s) URL in which "{host}" stands for the host name the browser asked for. */
function parseLoginUrl(raw: string): string {
  const url = new URL(raw.replace('{host}', 'device.invalid'));
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('must be an http or https URL');
  return raw;
}

void runMain('proxy', () => main(process.env));
