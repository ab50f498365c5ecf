// The system API: device status and metrics, the device name, the device CA, the audit log and
// the apps' stats history. Shapes in ./types.ts; openapi.yaml lists each route.
import type http from 'node:http';
import type { Handler, Router } from '../../common/http.js';
import type { ControlDocument } from '../control-document.js';
import type { ControlStore } from '../store/store.js';
import type { ApiSchema } from '../api/schema.js';
import type { AuditLog } from '../auth/audit.js';
import { clientAddress } from '../api/request.js';
import { parseAuditLimit, readAuditTail } from './audit-tail.js';
import type { DeviceCa } from './device-ca.js';
import type { DeviceName } from './device-name.js';
import type { MetricsSampler } from './metrics-sampler.js';
import type { StatsHistory } from './stats-history.js';
import type { HealthView, SystemStatus } from './types.js';

export interface SystemRoutesDeps {
  schema: ApiSchema;
  /** Checks the session (and the CSRF token on state-changing requests). */
  requireSession: (req: http.IncomingMessage) => void;
  audit: AuditLog;
  metrics: Pick<MetricsSampler, 'current' | 'uptimeSeconds'>;
  health: () => Promise<HealthView>;
  deviceName: DeviceName;
  /** The control store (throws 423 while locked). */
  store: () => ControlStore<ControlDocument>;
  deviceCa: DeviceCa;
  stats: Pick<StatsHistory, 'history'>;
  /** Throws a 404 for an app that is not installed (and 423/503 while apps are unavailable). */
  assertAppExists: (name: string) => void;
  version: string;
  now: () => number;
}

export function addSystemRoutes(router: Router, deps: SystemRoutesDeps): Router {
  const { schema, requireSession, audit, deviceName, deviceCa } = deps;
  const signedIn =
    (handler: Handler): Handler =>
    (req, params) => {
      requireSession(req);
      return handler(req, params);
    };

  return router
    .on('GET', '/api/v1/system/status', signedIn(async () => {
      const [health, metrics, uptimeSeconds] = await Promise.all([deps.health(), deps.metrics.current(), deps.metrics.uptimeSeconds()]);
      const body: SystemStatus = { device: { ...deviceName.info, version: deps.version, uptimeSeconds }, health, metrics, sampledAt: new Date(deps.now()).toISOString() };
      return { body };
    }))
    .on('GET', '/api/v1/system/device', signedIn(() => ({ body: deviceName.info })))
    .on('PUT', '/api/v1/system/device', signedIn(async (req) => {
      const { name } = await schema.body<{ name: string }>(req, 'setDeviceName');
      const before = deviceName.current;
      const info = await deviceName.set(name, deps.store());
      await audit.record({ event: 'system.device-name', outcome: 'ok', client: clientAddress(req), detail: `${before} -> ${info.name}` });
      return { body: info };
    }))
    // Public on purpose: a certificate is no secret, and a person installs it before signing in
    // (that sign-in is what it protects).
    .on('GET', '/api/v1/system/ca.crt', () => ({
      headers: { 'content-type': 'application/x-x509-ca-cert', 'content-disposition': 'attachment; filename="piccolo-ca.crt"' },
      body: deviceCa.pem,
    }))
    .on('GET', '/api/v1/system/ca', signedIn(() => ({ body: deviceCa.info })))
    .on('GET', '/api/v1/system/audit', signedIn(async (req) => {
      const limit = parseAuditLimit(new URL(req.url ?? '/', 'http://x').searchParams.get('limit'));
      return { body: { entries: await readAuditTail(audit.file, limit) } };
    }))
    .on('GET', '/api/v1/apps/:name/stats/history', signedIn((_req, { name }) => {
      deps.assertAppExists(name!);
      return { body: deps.stats.history(name!) };
    }));
}
