// Composition root of the proxy: the public listeners for app services.
// In this first slice every listener answers 404 until the route table from the daemon arrives.
import { field, loadServiceConfig, parseList, parseListen } from '../common/config.js';
import { HealthReporter } from '../common/health-report.js';
import { HttpServerModule, Router } from '../common/http.js';
import { runMain, startService } from '../common/lifecycle.js';
import { createLogger } from '../common/logger.js';
import { createNotifier } from '../common/notify.js';

async function main(env: NodeJS.ProcessEnv) {
  const config = loadServiceConfig(
    'proxy',
    { listen: field('PICCOLO_PROXY_LISTEN', (raw) => parseList(raw).map(parseListen), [parseListen('0.0.0.0:35000')]) },
    env,
  );
  const logger = createLogger({ service: 'proxy', level: config.logLevel });
  // Until the route table from the daemon arrives, every other request gets a clear 404.
  const listener = new Router(logger).on('GET', '/health/live', () => ({ body: { live: true } })).listener;
  const listeners = config.listen.map((address, i) => new HttpServerModule({ name: `listener-${i}`, address, listener, logger }));
  const health = new HealthReporter({ socketPath: config.healthSocket, intervalMs: config.healthIntervalMs, logger });
  health.set('proxy', 'ok');
  return startService({ logger, notifier: createNotifier({ env, pid: process.pid }), modules: [...listeners, health] });
}

void runMain('proxy', () => main(process.env));
