// What the proxy should serve, derived from the installed apps: one route per listener, with its
// access rule, middleware and the host names that reach it on the portal port.
import { defaultAccess, type Route } from '../../common/route-table.js';
import type { AppView } from './manager.js';

export function routesFromApps(apps: readonly AppView[], deviceName: string): Route[] {
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
        hostnames: [`${service.listener}-${app.name}.${deviceName}.local`, `${service.publicPort}-${app.name}`],
      };
    }),
  );
}
