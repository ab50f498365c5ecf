// Composition root of the health service: liveness and readiness of the whole device.
import { field, loadServiceConfig, parseList, parseListen } from '../common/config.js';
import { HttpServerModule } from '../common/http.js';
import { startService, runMain, type Module } from '../common/lifecycle.js';
import { createLogger, type Logger } from '../common/logger.js';
import { createNotifier, type Notifier } from '../common/notify.js';
import { ComponentRegistry } from './registry.js';
import { publicRoutes, reportRoutes } from './routes.js';

async function main(env: NodeJS.ProcessEnv) {
  const config = loadServiceConfig(
    'health',
    {
      // Dual-stack ('::' takes IPv4 too); the firewall lets only loopback in unless configured otherwise.
      listen: field('PICCOLO_HEALTH_LISTEN', parseListen, parseListen('[::]:4040')),
      required: field('PICCOLO_HEALTH_REQUIRED', parseList, ['daemon', 'proxy']),
    },
    env,
  );
  const logger = createLogger({ service: 'health', level: config.logLevel });
  const now = Date.now;
  const registry = new ComponentRegistry(config.required);
  const routes = { registry, logger, now, startedAt: now() };
  const notifier = createNotifier({ env, pid: process.pid });

  const reportSocket = new HttpServerModule({
    name: 'report-socket',
    // Group piccolo (the unit's group) may report; nobody else.
    address: { path: config.healthSocket, mode: 0o660 },
    listener: reportRoutes(routes).listener,
    logger,
    requestTimeoutMs: 5000,
  });
  const publicHttp = new HttpServerModule({ name: 'http', address: config.listen, listener: publicRoutes(routes).listener, logger, requestTimeoutMs: 5000 });
  const statusPublisher = new ReadinessStatus({ registry, notifier, logger, now });

  return startService({ logger, notifier, modules: [reportSocket, publicHttp, statusPublisher] });
}

/** Keeps systemd's STATUS= line saying why the device is not ready, and logs each change. */
class ReadinessStatus implements Module {
  readonly name = 'readiness-status';
  private timer: NodeJS.Timeout | undefined;
  private last = '';

  constructor(private readonly deps: { registry: ComponentRegistry; notifier: Notifier; logger: Logger; now: () => number }) {}

  async start(): Promise<void> {
    this.timer = setInterval(() => void this.publish(), 1000);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
  }

  private async publish(): Promise<void> {
    const { ready, reasons } = this.deps.registry.readiness(this.deps.now());
    const status = ready ? 'ready' : `not ready: ${reasons.join('; ')}`;
    if (status === this.last) return;
    this.last = status;
    this.deps.logger.info('readiness changed', { ready, reasons });
    await this.deps.notifier.status(status).catch((err) => this.deps.logger.warn('status notify failed', { err }));
  }
}

void runMain('health', () => main(process.env));
