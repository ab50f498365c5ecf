// What a `protocol: udp` listener cannot have. The proxy relays its datagrams per client flow
// (services/proxy/udp-relay.ts): no TLS (flow tls), no relay (the tunnel carries TCP streams), no
// HTTP middleware (validateMiddleware refuses auth and request_log), and no HTTP health check.
import type { ListenerInput } from './types.js';

export function udpListenerProblems(listener: Pick<ListenerInput, 'protocol' | 'flow' | 'remote_ports'>, path: string): string[] {
  if (listener.protocol !== 'udp') return [];
  const problems: string[] = [];
  if (listener.flow === 'tls') problems.push(`${path}.flow: a udp listener has no TLS; leave flow out`);
  if (listener.remote_ports?.length) problems.push(`${path}.remote_ports: the relay carries TCP streams only; a udp listener is reached on your network only`);
  return problems;
}

/** The HTTP health check goes through a TCP listener: a udp one cannot carry it. */
export function udpHealthcheckProblem(listeners: readonly Pick<ListenerInput, 'name' | 'protocol'>[], port: string): string | undefined {
  return listeners.some((l) => l.name === port && l.protocol === 'udp') ? `healthcheck.http.port: "${port}" is a udp listener; the HTTP check needs a TCP one` : undefined;
}

/** Guest ports are per transport: 53/tcp and 53/udp are two listeners, as DNS servers have. */
export function guestPortKey(listener: Pick<ListenerInput, 'protocol' | 'guest_port'>): string {
  return `${listener.guest_port}/${listener.protocol === 'udp' ? 'udp' : 'tcp'}`;
}
