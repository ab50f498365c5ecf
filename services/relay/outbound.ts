// The outbound proxy's checks (§2.6, backend.go:909-1062): in the server's order, each refusal with
// the reason outbound_result carries. A passing request is dialed by the session.
import type { BackendClaims, ClaimPolicy } from './claims.js';

/** maxOutboundConnsPerBackend's default: established plus in-flight dials. */
export const MAX_OUTBOUND_PER_BACKEND = 100;
/** outboundDialTimeoutSeconds's default. */
export const OUTBOUND_DIAL_TIMEOUT_MS = 10_000;

const NIL_UUID = '00000000-0000-0000-0000-000000000000';

export type OutboundCheck = { target: { host: string; port: number } } | { refusal: string };

export function checkOutbound(clientId: string, targetAddr: unknown, claims: BackendClaims, outbound: ClaimPolicy['outbound'], open: number): OutboundCheck {
  if (!outbound) return { refusal: 'outbound connections disabled on this proxy' };
  if (!claims.outboundAllowed) return { refusal: 'outbound connections not allowed for this backend' };
  const target = parseTarget(targetAddr);
  if (!target) return { refusal: 'invalid target address' };
  if (outbound.allowedPorts.size && !outbound.allowedPorts.has(target.port)) return { refusal: `outbound port ${target.port} not allowed by server` };
  if (claims.allowedOutboundPorts.length && !claims.allowedOutboundPorts.includes(target.port)) return { refusal: `outbound port ${target.port} not allowed by token` };
  if (open >= MAX_OUTBOUND_PER_BACKEND) return { refusal: 'outbound connection limit exceeded' };
  if (clientId === NIL_UUID) return { refusal: 'invalid client id' };
  return { target };
}

/** "host:port" or "[v6]:port": at most 260 characters, no control characters, a port 1-65535. */
export function parseTarget(text: unknown): { host: string; port: number } | undefined {
  if (typeof text !== 'string' || text.length > 260 || /[\x00-\x1f\x7f]/.test(text)) return undefined;
  const match = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  return match && port >= 1 && port <= 65535 ? { host: match[1]!, port } : undefined;
}
