// What the proxy should serve, derived from the installed apps: one route per listener, with its
// access rule, middleware and the host names that reach it on the portal port. Made from the
// store's records alone (apps-host.ts rebuilds it on each commit): no engine read is needed.
import { ConflictError } from '../../common/errors.js';
import { defaultAccess, type Route } from '../../common/route-table.js';
import type { AppRecord } from '../control-document.js';
import type { DeepReadonly } from '../store/store.js';
import { serviceEntries, type AppView } from './views.js';
import type { AppSpec } from './spec/types.js';

/** The host-name label of a listener: <listener>-<app>, as in <listener>-<app>.<device>.local. */
export function hostLabel(app: string, listener: string): string {
  return `${listener}-${app}`;
}

/**
 * Dashes are allowed in both names, so "c" of app "a-b" and "c-a" of app "b" would share the
 * label "c-a-b": such a spec is refused at install, naming the app that holds the label.
 */
export function assertHostLabelsFree(spec: Pick<AppSpec, 'name' | 'listeners'>, installed: readonly Pick<AppView, 'name' | 'spec'>[]): void {
  const taken = new Map<string, string>();
  for (const app of installed) {
    if (app.name === spec.name) continue;
    for (const listener of app.spec.listeners) taken.set(hostLabel(app.name, listener.name), `${app.name}/${listener.name}`);
  }
  const clashes = spec.listeners
    .map((listener, i) => ({ i, label: hostLabel(spec.name, listener.name) }))
    .filter(({ label }) => taken.has(label));
  if (!clashes.length) return;
  const [first] = clashes;
  throw new ConflictError(
    `the app would share the host name ${first!.label} with ${taken.get(first!.label)}`,
    clashes.map(({ i, label }) => `listeners[${i}].name: its host name ${label} is already used by ${taken.get(label)}`),
  );
}

/** The routes of every app the store records. */
export function routesFromRecords(apps: DeepReadonly<Record<string, AppRecord>>, deviceName: string): Route[] {
  const views = Object.keys(apps).sort().map((name) => ({ name, spec: apps[name]!.spec, services: serviceEntries(name, apps[name]!) }));
  return routesFromApps(views, deviceName);
}

export function routesFromApps(apps: readonly Pick<AppView, 'name' | 'spec' | 'services'>[], deviceName: string): Route[] {
  return apps.flatMap((app) =>
    app.services.map((service): Route => {
      const listener = app.spec.listeners.find((l) => l.name === service.listener)!;
      return {
        app: app.name,
        listener: service.listener,
        publicPort: service.publicPort,
        hostBindPort: service.hostBindPort,
        flow: service.flow,
        protocol: service.protocol,
        access: defaultAccess(app.spec.type, service.protocol, listener.public),
        middleware: listener.protocol_middleware.map((m) => ({ name: m.name, params: { ...m.params } })),
        // A datagram names no host: a udp listener is reached by its public port alone.
        hostnames: service.protocol === 'udp' ? [] : [`${hostLabel(app.name, service.listener)}.${deviceName}.local`, `${service.publicPort}-${app.name}`],
      };
    }),
  );
}
