// The device's public names once remote access is on: the portal hostname, and for each app
// listener <listener>-<app>.<appDomain>. They go to the tunnel (what to declare to the relay and
// where each stream goes), to the proxy (which routes by Host/SNI) and to the certificates.
import type { RemoteRoute } from '../../common/remote-contract.js';
import type { Flow, PortalRoute, Protocol, Route } from '../../common/route-table.js';
import { hostLabel } from '../apps/routes-from-apps.js';
import type { RemoteSettings } from './settings.js';

export type RemoteMode = RemoteRoute['mode'];

export interface AppListener {
  app: string;
  listener: string;
  flow: Flow;
  protocol: Protocol;
}

/** A remote name with who terminates its TLS: the device (with an ACME certificate) or the app. */
export type RemoteName = RemoteRoute & { tls: 'device' | 'passthrough' };

export function appRemoteName(app: string, listener: string, appDomain: string): string {
  return `${hostLabel(app, listener)}.${appDomain}`;
}

/** flow tcp + HTTP or WebSocket: the proxy terminates TLS; flow tls or raw: passthrough by SNI. */
export function deviceTerminatesTls(flow: Flow, protocol: Protocol): boolean {
  return flow === 'tcp' && protocol !== 'raw';
}

/** The relay carries TCP streams: a udp listener has no remote name (it is reached on the local network only). */
export function reachableRemotely(protocol: Protocol): boolean {
  return protocol !== 'udp';
}

export function remoteNames(settings: RemoteSettings, listeners: readonly AppListener[], modeFor: (app: string) => RemoteMode): RemoteName[] {
  return [
    { hostname: settings.portalHostname, kind: 'portal', mode: 'local', tls: 'device' },
    ...listeners.filter((l) => reachableRemotely(l.protocol)).map(({ app, listener, flow, protocol }): RemoteName => ({
      hostname: appRemoteName(app, listener, settings.appDomain),
      kind: 'app',
      app,
      listener,
      flow,
      protocol,
      mode: modeFor(app),
      tls: deviceTerminatesTls(flow, protocol) ? 'device' : 'passthrough',
    })),
  ];
}

/** The proxy's portal and app routes with their remote names added (unchanged when remote is off). */
export function withRemoteNames(portal: PortalRoute | null, routes: readonly Route[], settings: RemoteSettings | undefined): { portal: PortalRoute | null; routes: Route[] } {
  if (!settings?.enabled) return { portal, routes: [...routes] };
  return {
    portal: portal && { ...portal, hostnames: [...portal.hostnames, settings.portalHostname] },
    routes: routes.map((route) => (reachableRemotely(route.protocol) ? { ...route, hostnames: [...route.hostnames, appRemoteName(route.app, route.listener, settings.appDomain)] } : route)),
  };
}
