// The hub's token checks (§1.2, §1.3, §1.5): an HMAC JWT verified by jose, then the claim rules.
// Error texts follow the Go server's, because a backend sees them only as Close reasons.
import { jwtVerify } from 'jose';
import { normalizeHostname } from '../tunnel/protocol.js';

/** A refused token; the message becomes the Close reason (or, above 123 bytes, no Close frame at all). */
export class HandshakeError extends Error {}

export type TokenStage = 'stage0' | 'stage1' | 'reauth';

/** What the hub keeps of a valid token: the claim sets that must stay equal, and the session knobs. */
export interface BackendClaims {
  sub?: string;
  /** Normalized, deduplicated, sorted. */
  hostnames: string[];
  /** Deduplicated, sorted. */
  tcpPorts: number[];
  /** Sorted by port; the idle timeout clamped to the server's bounds. */
  udpRoutes: UdpRoute[];
  /** As sent; ≤ 0 means 1 for balancing but "unchanged" when stages are compared. */
  weight: number;
  outboundAllowed: boolean;
  /** Empty: any port the server allows. Sorted. */
  allowedOutboundPorts: number[];
  sessionNonce?: string;
  reauthIntervalSeconds: number;
  reauthGraceSeconds: number;
}

export interface UdpRoute {
  port: number;
  idleSeconds: number;
}

export interface ClaimPolicy {
  /** The HMAC key: the secret's raw UTF-8 bytes. */
  secret: Uint8Array;
  /** Empty: tcp_ports claims are refused. */
  allowedTcpPortClaims: ReadonlySet<number>;
  /** Empty: udp_routes claims are refused. */
  allowedUdpPortClaims: ReadonlySet<number>;
  /** udpFlowIdleTimeout bounds, in seconds (Nexus: 5 and 300). */
  udpIdleBounds: { min: number; max: number };
  /** The outbound proxy (allowOutbound) and its port list (allowedOutboundPorts, empty = any); undefined: off. */
  outbound?: { allowedPorts: ReadonlySet<number> };
  /** Milliseconds since the epoch. */
  now: () => number;
}

const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'];
const DEFAULT_REAUTH_GRACE_SECONDS = 10;

export async function verifyToken(token: string, stage: TokenStage, policy: ClaimPolicy): Promise<BackendClaims> {
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, policy.secret, {
      issuer: 'authorizer',
      audience: 'nexus',
      algorithms: HMAC_ALGORITHMS,
      currentDate: new Date(policy.now()),
    }));
  } catch (err) {
    throw new HandshakeError(`${stage} token validation failed: jwt validation failed: ${(err as Error).message}`);
  }
  return checkClaims(payload, stage, policy);
}

/** The claim rules of §1.2 on a verified payload. Exported for the unit tests. */
export function checkClaims(payload: Record<string, unknown>, stage: TokenStage, policy: ClaimPolicy): BackendClaims {
  const hostnames = [...new Set(stringList(payload.hostnames, 'hostnames').map(hostnameClaim))].sort();
  const tcpPorts = [...new Set(intList(payload.tcp_ports, 'tcp_ports'))].sort((a, b) => a - b);
  for (const port of tcpPorts) {
    if (port < 1 || port > 65535) throw new HandshakeError(`invalid tcp port claim ${port}`);
    if (policy.allowedTcpPortClaims.size === 0) throw new HandshakeError('tcp port claims are disabled (allowedTCPPortClaims is empty)');
    if (!policy.allowedTcpPortClaims.has(port)) throw new HandshakeError(`tcp port ${port} is not in allowedTCPPortClaims`);
  }
  const udpRoutes = udpRouteClaims(payload.udp_routes, policy);
  const outboundAllowed = payload.outbound_allowed === true;
  const allowedOutboundPorts = [...new Set(intList(payload.allowed_outbound_ports, 'allowed_outbound_ports'))].sort((a, b) => a - b);
  if (outboundAllowed && !policy.outbound) throw new HandshakeError('outbound_allowed requested but outbound is disabled on this proxy');
  if (!outboundAllowed && allowedOutboundPorts.length) throw new HandshakeError('allowed_outbound_ports requires outbound_allowed');
  const serverPorts = policy.outbound?.allowedPorts;
  for (const port of allowedOutboundPorts) {
    if (serverPorts?.size && !serverPorts.has(port)) throw new HandshakeError(`allowed_outbound_ports: ${port} is not in allowedOutboundPorts`);
  }
  if (hostnames.length === 0 && tcpPorts.length === 0 && udpRoutes.length === 0) throw new HandshakeError(`${stage} token missing hostnames and port claims`);

  const weight = optionalInt(payload.weight, 'weight') ?? 0;
  if (stage === 'stage0') {
    const maxAge = optionalInt(payload.handshake_max_age_seconds, 'handshake_max_age_seconds') ?? 0;
    if (maxAge > 0) {
      const iat = optionalInt(payload.iat, 'iat');
      if (iat === undefined) throw new HandshakeError('stage0 token missing iat required by handshake_max_age_seconds');
      const age = Math.floor(policy.now() / 1000) - iat;
      if (age > maxAge) throw new HandshakeError(`stage0 token too old: issued ${age}s ago, handshake_max_age_seconds is ${maxAge}`);
    }
    // The session fields count only from stage 1 on (§1.2).
    return { sub: stringClaim(payload.sub), hostnames, tcpPorts, udpRoutes, weight, outboundAllowed, allowedOutboundPorts, reauthIntervalSeconds: 0, reauthGraceSeconds: DEFAULT_REAUTH_GRACE_SECONDS };
  }
  const cap = optionalInt(payload.maintenance_grace_cap_seconds, 'maintenance_grace_cap_seconds');
  if (cap !== undefined && cap < 0) throw new HandshakeError('maintenance_grace_cap_seconds must not be negative');
  if (payload.authorizer_status_uri !== undefined) statusUri(payload.authorizer_status_uri);
  const grace = optionalInt(payload.reauth_grace_seconds, 'reauth_grace_seconds') ?? 0;
  return {
    sub: stringClaim(payload.sub),
    hostnames,
    tcpPorts,
    udpRoutes,
    weight,
    outboundAllowed,
    allowedOutboundPorts,
    sessionNonce: stringClaim(payload.session_nonce),
    reauthIntervalSeconds: Math.max(0, optionalInt(payload.reauth_interval_seconds, 'reauth_interval_seconds') ?? 0),
    reauthGraceSeconds: grace > 0 ? grace : DEFAULT_REAUTH_GRACE_SECONDS,
  };
}

/** How a later token (stage 1, reauth) differs from the earlier claims ("hostnames differ"), or undefined. */
export function claimDifference(earlier: BackendClaims, later: BackendClaims): string | undefined {
  if (!sameList(earlier.hostnames, later.hostnames)) return 'hostnames differ';
  if (!sameList(earlier.tcpPorts, later.tcpPorts)) return 'tcp_ports differ';
  if (!sameList(earlier.udpRoutes.map(routeText), later.udpRoutes.map(routeText))) return 'udp_routes differ';
  if (earlier.outboundAllowed !== later.outboundAllowed) return 'outbound_allowed differs';
  if (!sameList(earlier.allowedOutboundPorts, later.allowedOutboundPorts)) return 'allowed_outbound_ports differ';
  if (later.weight > 0 && later.weight !== earlier.weight) return 'weight differs';
  return undefined;
}

/** A hostname claim, normalized; `*.domain` needs at least two labels after the star (§5). */
export function hostnameClaim(raw: string): string {
  if (/^(tcp|udp):/i.test(raw.trim())) throw new HandshakeError(`invalid hostname claim ${JSON.stringify(raw)}: port claims belong in tcp_ports or udp_routes`);
  const name = normalizeHostname(raw);
  const invalid = () => new HandshakeError(`invalid hostname claim ${JSON.stringify(raw)}`);
  if (!name || name.length > 253) throw invalid();
  const labels = name.split('.');
  const wildcard = labels[0] === '*';
  if (wildcard && labels.length < 3) throw invalid();
  for (const label of wildcard ? labels.slice(1) : labels) {
    if (!/^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/.test(label)) throw invalid();
  }
  return name;
}

/** Absent timeout: 30 s; then clamped to the server's bounds (§1.2). */
const DEFAULT_UDP_IDLE_SECONDS = 30;

function udpRouteClaims(value: unknown, policy: ClaimPolicy): UdpRoute[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new HandshakeError('udp_routes must be an array');
  const routes = new Map<number, UdpRoute>();
  for (const entry of value as unknown[]) {
    const route = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    const port = route.port;
    if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) throw new HandshakeError(`invalid udp route port ${JSON.stringify(port)}`);
    if (policy.allowedUdpPortClaims.size === 0) throw new HandshakeError('udp port claims are disabled (allowedUDPPortClaims is empty)');
    if (!policy.allowedUdpPortClaims.has(port as number)) throw new HandshakeError(`udp port ${port} is not in allowedUDPPortClaims`);
    const timeout = optionalInt(route.flow_idle_timeout_seconds, 'flow_idle_timeout_seconds') ?? DEFAULT_UDP_IDLE_SECONDS;
    const idleSeconds = Math.min(policy.udpIdleBounds.max, Math.max(policy.udpIdleBounds.min, timeout));
    routes.set(port as number, { port: port as number, idleSeconds });
  }
  return [...routes.values()].sort((a, b) => a.port - b.port);
}

function routeText(route: UdpRoute): string {
  return `${route.port}/${route.idleSeconds}`;
}

function stringList(value: unknown, claim: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw new HandshakeError(`${claim} must be an array of strings`);
  return value;
}

function intList(value: unknown, claim: string): number[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every(Number.isInteger)) throw new HandshakeError(`${claim} must be an array of integers`);
  return value as number[];
}

function optionalInt(value: unknown, claim: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Number.isInteger(value)) throw new HandshakeError(`${claim} must be an integer`);
  return value as number;
}

function stringClaim(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function statusUri(value: unknown): void {
  let url: URL | undefined;
  try {
    url = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'https:' || !url.hostname) throw new HandshakeError('authorizer_status_uri must be an https URL with a host');
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}
