// Composition root of piccolod: the API, the portal and setup wizard.
import { mkdir } from 'node:fs/promises';
import { field, loadServiceConfig, parseAbsolutePath, parseListen } from '../common/config.js';
import { HealthReporter } from '../common/health-report.js';
import { HttpServerModule } from '../common/http.js';
import { runMain, startService } from '../common/lifecycle.js';
import { createLogger } from '../common/logger.js';
import { createNotifier } from '../common/notify.js';
import { daemonRoutes } from './routes.js';

async function main(env: NodeJS.ProcessEnv) {
  const config = loadServiceConfig(
    'daemon',
    {
      listen: field('PICCOLO_DAEMON_LISTEN', parseListen, parseListen('0.0.0.0:80')),
      stateDir: field('PICCOLO_STATE_DIR', parseAbsolutePath, '/var/lib/piccolo'),
    },
    env,
  );
  const logger = createLogger({ service: 'daemon', level: config.logLevel });
  const health = new HealthReporter({ socketPath: config.healthSocket, intervalMs: config.healthIntervalMs, logger });
  const http = new HttpServerModule({ name: 'http', address: config.listen, listener: daemonRoutes(logger).listener, logger });
  health.set('daemon', 'ok');
  // tmpfiles.d makes it in the image; `make run` and tests point it at a fresh folder.
  await mkdir(config.stateDir, { recursive: true, mode: 0o700 });
  logger.info('starting', { stateDir: config.stateDir, configFile: config.configFile });
  return startService({ logger, notifier: createNotifier({ env, pid: process.pid }), modules: [http, health] });
}

void runMain('daemon', () => main(process.env));
