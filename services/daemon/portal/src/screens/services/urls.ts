// Where a listener is reached from a browser: on the local network (the proxy's public port, on
// the host this page was opened from, as by IP or by name), and from the internet through the
// relay once remote access gives it a name. Shared by the Services screen and the dashboard.
import type { ServiceEntry } from '../../../../apps/manager.js';
import type { RemoteStatus } from '../../../../remote/remote-access.js';

export interface ServiceUrls {
  local: string;
  remote?: string;
  /** A browser can open it (HTTP); WebSocket, raw TCP and UDP are addresses for other programs. */
  openable: boolean;
}

export function serviceUrls(service: ServiceEntry, remote: RemoteStatus | undefined, host: string = location.hostname): ServiceUrls {
  const address = `${host.includes(':') ? `[${host}]` : host}:${service.publicPort}`;
  const secure = service.flow === 'tls';
  const local =
    service.protocol === 'http'
      ? `${secure ? 'https' : 'http'}://${address}/`
      : service.protocol === 'websocket'
        ? `${secure ? 'wss' : 'ws'}://${address}/`
        : service.protocol === 'udp'
          ? `udp://${address}`
          : address;
  // The relay carries TCP streams only: a udp listener has no remote name (the daemon gives it none).
  const name = remote?.enabled && service.protocol !== 'udp' ? remote.hostnames.find((h) => h.kind === 'app' && h.app === service.app && h.listener === service.listener) : undefined;
  // Through the relay every name is on its TLS port (443): the device or the app terminates it.
  const remoteUrl = !name ? undefined : service.protocol === 'http' ? `https://${name.hostname}/` : service.protocol === 'websocket' ? `wss://${name.hostname}/` : `${name.hostname}:443`;
  return { local, remote: remoteUrl, openable: service.protocol === 'http' };
}

/** "HTTP over TLS", "raw TCP", "UDP": how a listener talks, in words. */
export function describeListener(service: Pick<ServiceEntry, 'protocol' | 'flow'>): string {
  if (service.protocol === 'udp') return 'UDP';
  const protocol = service.protocol === 'http' ? 'HTTP' : service.protocol === 'websocket' ? 'WebSocket' : 'raw TCP';
  return service.flow === 'tls' ? `${protocol} over TLS (the app's own)` : protocol;
}
