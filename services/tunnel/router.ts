// Where an incoming relay stream goes (pure): TLS to the proxy's TLS ingress (which terminates
// with the ACME certificate or passes through by SNI), plain HTTP to the proxy's HTTP ingress
// (ACME challenges and the redirect to https), anything else is refused. Remote traffic always
// goes through the proxy, so its middleware and auth gate apply.
import type { RemoteTable } from '../common/remote-contract.js';
import { normalizeHostname, type ControlMessage } from './protocol.js';

export type Ingress = 'tls' | 'http';

export type RouteDecision =
  | { kind: 'proxy'; ingress: Ingress; hostname: string }
  | { kind: 'refuse'; reason: string };

export function route(connect: ControlMessage, table: RemoteTable): RouteDecision {
  if (connect.transport === 'udp') return { kind: 'refuse', reason: 'udp streams are not served' };
  const hostname = normalizeHostname(connect.hostname ?? '');
  const remote = hostname === undefined ? undefined : table.routes.find((candidate) => candidate.hostname === hostname);
  if (!hostname || !remote) return { kind: 'refuse', reason: `no remote route for ${JSON.stringify(connect.hostname ?? '')}` };
  // Another node leads this app; single-node Piccolo has no peer to forward to yet.
  if (remote.mode === 'tunnel') return { kind: 'refuse', reason: `${hostname} is in tunnel mode: would forward to the leader` };
  return { kind: 'proxy', ingress: connect.is_tls ? 'tls' : 'http', hostname };
}
