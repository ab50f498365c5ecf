// The tunnel's status as it pushes it (POST /v1/tunnel/status on the internal socket), checked
// field by field: what the portal shows must be what the contract promises.
import { BadRequestError } from '../../common/errors.js';
import { TUNNEL_STATES, type TunnelState, type TunnelStatus } from '../../common/remote-contract.js';

const COUNTERS = ['streams', 'bytesIn', 'bytesOut'] as const;
const TEXTS = { relay: 2048, lastError: 2048 } as const;

export function parseTunnelStatus(body: unknown): TunnelStatus {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequestError('body: must be a JSON object');
  const doc = body as Record<string, unknown>;
  const problems: string[] = [];
  const known = new Set(['state', 'since', 'backoffMs', ...COUNTERS, ...Object.keys(TEXTS)]);
  for (const key of Object.keys(doc)) if (!known.has(key)) problems.push(`${key}: unknown field`);
  if (!TUNNEL_STATES.includes(doc.state as TunnelState)) problems.push(`state: must be one of ${TUNNEL_STATES.join(', ')}`);
  for (const key of COUNTERS) if (!Number.isSafeInteger(doc[key]) || (doc[key] as number) < 0) problems.push(`${key}: must be a whole number >= 0`);
  if (doc.backoffMs !== undefined && (!Number.isSafeInteger(doc.backoffMs) || (doc.backoffMs as number) < 0)) problems.push('backoffMs: must be a whole number >= 0');
  for (const [key, max] of Object.entries(TEXTS)) {
    if (doc[key] !== undefined && (typeof doc[key] !== 'string' || (doc[key] as string).length > max)) problems.push(`${key}: must be text of at most ${max} characters`);
  }
  if (typeof doc.since !== 'string' || Number.isNaN(Date.parse(doc.since))) problems.push('since: must be an ISO time');
  if (problems.length) throw new BadRequestError('invalid tunnel status', problems);
  return doc as unknown as TunnelStatus;
}
