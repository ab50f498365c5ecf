// The system area's parts, put together for the daemon's composition root: the device name,
// the device CA (from the proxy), the metrics sampler and the apps' stats history, plus their
// API routes. index.ts wires the name into the portal route and the apps' routes.
import type http from 'node:http';
import path from 'node:path';
import type { Router } from '../../common/http.js';
import type { Module } from '../../common/lifecycle.js';
import type { Logger } from '../../common/logger.js';
import type { EventHub } from '../api/events.js';
import type { ApiSchema } from '../api/schema.js';
import type { AuditLog } from '../auth/audit.js';
import type { ControlDocument } from '../control-document.js';
import type { ControlStore } from '../store/store.js';
import { addSystemRoutes } from './api.js';
import { DeviceCa } from './device-ca.js';
import { DeviceName } from './device-name.js';
import { readHealth } from './health-client.js';
import { MetricsSampler, hostReader, type SystemReader } from './metrics-sampler.js';
import { StatsHistory, type StatsSource } from './stats-history.js';

export interface SystemOptions {
  stateDir: string;
  /** PICCOLO_DEVICE_NAME. */
  defaultName: string;
  /** The health service's base URL (PICCOLO_HEALTH_URL). */
  healthUrl: string;
  metricsIntervalMs: number;
  statsIntervalMs: number;
  /** The running app manager; throws while apps are unavailable. */
  apps: () => StatsSource & { history(name: string): unknown };
  hub: EventHub;
  logger: Logger;
  now: () => number;
  version: string;
  reader?: SystemReader;
}

export interface SystemRouteDeps {
  schema: ApiSchema;
  requireSession: (req: http.IncomingMessage) => void;
  audit: AuditLog;
  store: () => ControlStore<ControlDocument>;
}

export class SystemArea {
  readonly deviceName: DeviceName;
  readonly deviceCa = new DeviceCa();
  readonly metrics: MetricsSampler;
  readonly stats: StatsHistory;

  constructor(private readonly options: SystemOptions) {
    const { hub, logger } = options;
    this.deviceName = new DeviceName({ fallback: options.defaultName, cacheFile: path.join(options.stateDir, 'device-name'), logger: logger.child({ module: 'device-name' }) });
    this.deviceName.onChange((info) => hub.publish('system.device', info));
    this.metrics = new MetricsSampler({
      reader: options.reader ?? hostReader(),
      stateDir: options.stateDir,
      intervalMs: options.metricsIntervalMs,
      onSample: (metrics) => hub.publish('system.metrics', metrics),
      logger: logger.child({ module: 'metrics' }),
      now: options.now,
    });
    this.stats = new StatsHistory({ apps: options.apps, events: hub, intervalMs: options.statsIntervalMs, logger: logger.child({ module: 'stats-history' }), now: options.now });
  }

  /** In start order: the name first, so the first routes published already carry it. */
  get modules(): Module[] {
    return [this.deviceName, this.metrics, this.stats];
  }

  addRoutes(router: Router, deps: SystemRouteDeps): Router {
    const { options } = this;
    return addSystemRoutes(router, {
      ...deps,
      metrics: this.metrics,
      health: () => readHealth({ url: options.healthUrl }),
      deviceName: this.deviceName,
      deviceCa: this.deviceCa,
      stats: this.stats,
      assertAppExists: (name) => void options.apps().history(name),
      version: options.version,
      now: options.now,
    });
  }
}
