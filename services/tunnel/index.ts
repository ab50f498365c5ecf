// Composition root of the tunnel: the client of a Nexus relay (remote access).
// In this first slice it serves its local status and reports that remote access is not configured.
import { field, loadServiceConfig, parseListen } from '../common/config.js';
import { HealthReporter } from '../common/health-report.js';
import { HttpServerModule, Router } from '../common/http.js';
import { runMain, startService } from '../common/lifecycle.js';
import { createLogger } from '../common/logger.js';
import { createNotifier } from '../common/notify.js';

async function main(env: NodeJS.ProcessEnv) {
  const config = loadServiceConfig('tunnel', { listen: field('PICCOLO_TUNNEL_LISTEN', parseListen, parseListen('127.0.0.1:4041')) }, env);
  const logger = createLogger({ service: 'tunnel', level: config.logLevel });
  const status = { relay: 'not configured' };
  const routes = new Router(logger)
    .on('GET', '/health/live', () => ({ body: { live: true } }))
    .on('GET', '/status', () => ({ body: status }));
  const http = new HttpServerModule({ name: 'status', address: config.listen, listener: routes.listener, logger });
  const health = new HealthReporter({ socketPath: config.healthSocket, intervalMs: config.healthIntervalMs, logger });
  health.set('tunnel', 'ok', 'remote access not configured');
  return startService({ logger, notifier: createNotifier({ env, pid: process.pid }), modules: [http, health] });
}

void runMain('tunnel', () => main(process.env));
