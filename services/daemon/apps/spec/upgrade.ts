// Specs stored before multi-container apps (control store v3) were the short form already
// normalized: a top-level image, listeners without a service, permissions with only network.
// The v3 → v4 migration turns each into today's shape, exactly as normalizeSpec would have made
// it from the same app.yaml, so an upgrade recreates no container and loses no setting.
import { normalizeService } from './normalize.js';
import { SHORT_FORM_SERVICE, type AppSpec } from './types.js';

/** A stored spec of either shape → today's; one that already has services is returned as is. */
export function upgradeStoredSpec(stored: unknown): unknown {
  if (!isObject(stored) || Array.isArray(stored.services) || typeof stored.image !== 'string') return stored;
  const { image, ...rest } = stored;
  const storage = (isObject(rest.storage) ? rest.storage : {}) as { persistent?: Record<string, { container?: string }>; temporary?: Record<string, { container?: string }> };
  const mounts = (['persistent', 'temporary'] as const).flatMap((kind) =>
    Object.entries(storage[kind] ?? {}).flatMap(([volume, { container }]) => (container === undefined ? [] : [{ volume, container }])),
  );
  const network = (isObject(rest.permissions) && isObject(rest.permissions.network) ? rest.permissions.network : { internet: 'deny' }) as AppSpec['permissions']['network'];
  // The one service as normalize makes it from the short form, so the defaults are not written twice.
  const service = normalizeService(SHORT_FORM_SERVICE, { image, mounts });
  // Nothing beyond the network could be asked for before.
  const permissions: AppSpec['permissions'] = { network, host_network: false, privileged: false, engine_socket: false, devices: [], capabilities: [], media: [] };
  return {
    ...rest,
    services: [service],
    listeners: (Array.isArray(rest.listeners) ? rest.listeners : []).map((listener) => ({ ...listener, service: SHORT_FORM_SERVICE })),
    permissions,
  };
}

/** The v3 → v4 control store migration: every app's spec and its history; grants start empty (none could be needed). */
export function upgradeAppRecords(apps: unknown): unknown {
  if (!isObject(apps)) return apps;
  return Object.fromEntries(
    Object.entries(apps).map(([name, record]) => {
      if (!isObject(record) || !('spec' in record)) return [name, record];
      const history = Array.isArray(record.history) ? record.history.map((entry) => (isObject(entry) ? { ...entry, spec: upgradeStoredSpec(entry.spec) } : entry)) : record.history;
      return [name, { ...record, spec: upgradeStoredSpec(record.spec), history, granted: Array.isArray(record.granted) ? record.granted : [] }];
    }),
  );
}

function isObject(value: unknown): value is Record<string, any> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
