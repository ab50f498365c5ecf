// Composition root of the tunnel: the device's client of a Nexus relay (remote access). The
// daemon says which relay and names (long poll on its internal socket); each relay stream goes to
// one of the proxy's tunnel ingress sockets with a PROXY v2 header naming the end user.
import { hostname } from 'node:os';
import { field, loadServiceConfig, parseAbsolutePath, parseListen } from '../common/config.js';
import { HealthReporter } from '../common/health-report.js';
import { HttpServerModule, Router } from '../common/http.js';
import { runMain, startService } from '../common/lifecycle.js';
import { createLogger } from '../common/logger.js';
import { LongPoll } from '../common/long-poll.js';
import { createNotifier } from '../common/notify.js';
import type { RemoteTable, TunnelStatus } from '../common/remote-contract.js';
import { TunnelClient } from './client.js';
import { DaemonLink, StatusPusher } from './daemon-link.js';
import { proxyIngressDialer } from './dialer.js';

async function main(env: NodeJS.ProcessEnv) {
  const config = loadServiceConfig(
    'tunnel',
    {
      listen: field('PICCOLO_TUNNEL_LISTEN', parseListen, parseListen('127.0.0.1:4041')),
      daemonSocket: field('PICCOLO_TUNNEL_DAEMON_SOCKET', parseAbsolutePath, '/run/piccolo-daemon/internal.sock'),
      proxyTlsSocket: field('PICCOLO_TUNNEL_PROXY_TLS_SOCKET', parseAbsolutePath, '/run/piccolo-proxy/tunnel-tls.sock'),
      proxyHttpSocket: field('PICCOLO_TUNNEL_PROXY_HTTP_SOCKET', parseAbsolutePath, '/run/piccolo-proxy/tunnel-http.sock'),
    },
    env,
  );
  const logger = createLogger({ service: 'tunnel', level: config.logLevel });
  const notifier = createNotifier({ env, pid: process.pid });
  const health = new HealthReporter({ socketPath: config.healthSocket, intervalMs: config.healthIntervalMs, logger });
  const daemon = new DaemonLink(config.daemonSocket);

  let lastState: TunnelStatus['state'] | undefined;
  const onStatus = (status: TunnelStatus) => {
    pusher.push();
    reportHealth(health, status);
    if (status.state !== lastState) void notifier.status(statusLine(status)).catch((err) => logger.warn('cannot send STATUS to systemd', { err }));
    lastState = status.state;
  };
  const tunnel = new TunnelClient({ logger, dialer: proxyIngressDialer({ tls: config.proxyTlsSocket, http: config.proxyHttpSocket }), subject: hostname(), onStatus });
  const pusher = new StatusPusher({ link: daemon, status: () => tunnel.status(), logger });
  reportHealth(health, tunnel.status());
  const remote = new LongPoll<RemoteTable>({
    name: 'remote-table',
    what: 'remote table',
    fetch: (rev, signal) => daemon.remote(rev, signal),
    logger,
    onTable: (table) => tunnel.update(table),
    // The tunnel keeps its session while the daemon restarts; only a long outage is worth a note.
    onLinkState: (link) => (link.up ? reportHealth(health, tunnel.status()) : health.set('tunnel', 'degraded', link.reason)),
    close: () => daemon.close(),
  });

  const routes = new Router(logger)
    .on('GET', '/health/live', () => ({ body: { live: true } }))
    .on('GET', '/status', () => ({ body: tunnel.status() }));
  const http = new HttpServerModule({ name: 'status', address: config.listen, listener: routes.listener, logger });
  return startService({ logger, notifier, modules: [http, health, pusher, tunnel, remote] });
}

function reportHealth(health: HealthReporter, status: TunnelStatus): void {
  if (status.state === 'disabled') health.set('tunnel', 'ok', 'remote access not configured');
  else if (status.state === 'backoff') health.set('tunnel', 'degraded', `relay unreachable: ${status.lastError ?? 'unknown error'}`);
  else health.set('tunnel', 'ok', status.state === 'connecting' ? 'connecting to the relay' : undefined);
}

function statusLine(status: TunnelStatus): string {
  if (status.state === 'disabled') return 'remote access not configured';
  if (status.state === 'backoff') return `relay unreachable, retrying: ${status.lastError ?? 'unknown error'}`;
  return `${status.state === 'connected' ? 'connected to' : 'connecting to'} ${status.relay}`;
}

void runMain('tunnel', () => main(process.env));
