// The health service's two faces: read-only HTTP for people, load balancers and the OS
// health-checker, and the report endpoint on a local socket that only Piccolo's services reach.
import { Router } from '../common/http.js';
import { readJson } from '../common/http.js';
import { REPORT_PATH } from '../common/health-report.js';
import type { Logger } from '../common/logger.js';
import { parseReport, type ComponentRegistry } from './registry.js';

export interface HealthRoutesOptions {
  registry: ComponentRegistry;
  logger: Logger;
  now: () => number;
  startedAt: number;
}

export function publicRoutes({ registry, logger, now, startedAt }: HealthRoutesOptions): Router {
  return new Router(logger)
    .on('GET', '/health/live', () => ({ body: { live: true } }))
    .on('GET', '/health/ready', () => {
      const { ready, reasons, notes } = registry.readiness(now());
      return { status: ready ? 200 : 503, body: { ready, reasons, notes } };
    })
    .on('GET', '/health/detail', () => {
      const readiness = registry.readiness(now());
      return { status: readiness.ready ? 200 : 503, body: { ...readiness, uptimeSeconds: Math.round((now() - startedAt) / 1000) } };
    });
}

export function reportRoutes({ registry, logger, now }: HealthRoutesOptions): Router {
  return new Router(logger).on('POST', REPORT_PATH, async (req) => {
    const report = parseReport(await readJson(req, 4096));
    registry.apply(report, now());
    return { status: 204 };
  });
}
