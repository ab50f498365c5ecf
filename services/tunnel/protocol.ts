// The Nexus relay wire format (shared/notes/nexus-protocol.md, server v0.3.14): after the token
// handshake (text messages), every message is binary; its first byte says DATA (then the 16 raw
// bytes of the client id, then payload) or CONTROL (then a JSON object). Both our client and our
// test relay build and read frames only through this module.
import { randomUUID } from 'node:crypto';
import { domainToASCII } from 'node:url';

export const FRAME_DATA = 0x01;
export const FRAME_CONTROL = 0x02;

/** The largest message a backend may send; the server closes with 1009 above it (§2.2). */
export const MAX_BACKEND_MESSAGE = 32 * 1024 + 17;
/** Payload per DATA frame we send: a whole frame then stays within MAX_BACKEND_MESSAGE. */
export const MAX_DATA_PAYLOAD = 32 * 1024;
/** What we accept from a server: its first frame (the sniffed prelude) may hold 64 KiB of HTTP head. */
export const MAX_SERVER_MESSAGE = 128 * 1024;

/** Credits are counted in frames, per client id and per direction (§3). */
export const CREDIT_WINDOW = 64;
export const CREDIT_BATCH = 8;
/** Grants above this are clamped, as the reference does. */
export const MAX_CREDITS = 1_048_576;

export const CONTROL_EVENTS = ['connect', 'disconnect', 'resume_stream', 'pause_stream', 'ping_client', 'pong_client', 'outbound_connect', 'outbound_result'] as const;
export type ControlEvent = (typeof CONTROL_EVENTS)[number];

export const DISCONNECT_REASONS = ['normal', 'buffer_full', 'dial_failed', 'timeout', 'local_error', 'shutdown', 'session_ended', 'pause_violated', 'unknown'] as const;
export type DisconnectReason = (typeof DISCONNECT_REASONS)[number];

/** A control message; every field but event and client_id is left out when zero, false or empty. */
export interface ControlMessage {
  event: ControlEvent;
  client_id: string;
  conn_port?: number;
  /** The end user's "ip:port" ("[v6]:port" for IPv6). */
  client_ip?: string;
  transport?: 'tcp' | 'udp';
  hostname?: string;
  is_tls?: boolean;
  reason?: string;
  target_addr?: string;
  success?: boolean;
  credits?: number;
}

export type Frame =
  | { kind: 'data'; clientId: string; payload: Buffer }
  | { kind: 'control'; message: ControlMessage }
  /** Dropped by the receiver (logged), never answered: an empty or unknown frame, bad JSON. */
  | { kind: 'invalid'; reason: string };

/** The JWT claims of §1.2 that we send or check. */
export interface TunnelClaims {
  iss: 'authorizer';
  aud: string | string[];
  sub?: string;
  iat?: number;
  exp?: number;
  nbf?: number;
  hostnames?: string[];
  tcp_ports?: number[];
  udp_routes?: { port: number; flow_idle_timeout_seconds?: number }[];
  weight?: number;
  session_nonce?: string;
  handshake_max_age_seconds?: number;
  reauth_interval_seconds?: number;
  reauth_grace_seconds?: number;
  maintenance_grace_cap_seconds?: number;
}

/** Text messages the server sends during the handshake and for re-authentication. */
export interface ServerChallenge {
  type: 'handshake_challenge' | 'reauth_challenge';
  nonce: string;
}

export function encodeData(clientId: string | Buffer, payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(17 + payload.length);
  frame[0] = FRAME_DATA;
  if (typeof clientId === 'string') frame.write(clientId.replace(/-/g, ''), 1, 16, 'hex');
  else clientId.copy(frame, 1, 0, 16);
  payload.copy(frame, 17);
  return frame;
}

export function encodeControl(message: ControlMessage): Buffer {
  const json = Buffer.from(JSON.stringify(withoutEmpty(message)));
  const frame = Buffer.allocUnsafe(1 + json.length);
  frame[0] = FRAME_CONTROL;
  json.copy(frame, 1);
  return frame;
}

export function decodeFrame(message: Buffer): Frame {
  if (message.length === 0) return { kind: 'invalid', reason: 'empty message' };
  if (message[0] === FRAME_DATA) {
    if (message.length < 17) return { kind: 'invalid', reason: 'data frame shorter than 17 bytes' };
    return { kind: 'data', clientId: bytesToUuid(message.subarray(1, 17)), payload: message.subarray(17) };
  }
  if (message[0] !== FRAME_CONTROL) return { kind: 'invalid', reason: `unknown frame type ${message[0]}` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(message.subarray(1).toString('utf8'));
  } catch {
    return { kind: 'invalid', reason: 'control frame is not JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { kind: 'invalid', reason: 'control frame is not a JSON object' };
  const fields = lowerKeys(parsed as Record<string, unknown>);
  const clientId = typeof fields.client_id === 'string' ? parseUuid(fields.client_id) : undefined;
  if (typeof fields.event !== 'string' || !clientId) return { kind: 'invalid', reason: 'control frame needs an event and a client_id' };
  return { kind: 'control', message: { ...(fields as unknown as ControlMessage), client_id: clientId } };
}

/** A fresh client id (RFC 4122 v4), canonical lower-case form. */
export function newClientId(): string {
  return randomUUID();
}

/** The canonical form of a UUID given as 36 characters, {…}, urn:uuid:… or 32 hex digits; undefined if none. */
export function parseUuid(text: string): string | undefined {
  const hex = text.trim().toLowerCase().replace(/^urn:uuid:/, '').replace(/^\{(.*)\}$/, '$1').replace(/-/g, '');
  return /^[0-9a-f]{32}$/.test(hex) ? bytesToUuid(Buffer.from(hex, 'hex')) : undefined;
}

export function bytesToUuid(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** Server-side name normalization (§5): trim, one trailing dot off, IDNA ToASCII, lower case; undefined if not a name. */
export function normalizeHostname(name: string): string | undefined {
  const trimmed = name.trim().replace(/\.$/, '');
  const ascii = trimmed.startsWith('*.') ? `*.${domainToASCII(trimmed.slice(2))}` : domainToASCII(trimmed);
  return ascii && ascii !== '*.' ? ascii.toLowerCase() : undefined;
}

/** Splits "ip:port" or "[v6]:port" (connect's client_ip); undefined when malformed. */
export function splitClientAddress(text: string): { address: string; port: number } | undefined {
  const match = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([0-9.]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  return match && port <= 65535 ? { address: match[1]!, port } : undefined;
}

/** Clamps a credit grant as the reference does; 0 or absent stays 0 (the peer is old: unlimited). */
export function clampCredits(credits: unknown): number {
  return typeof credits === 'number' && Number.isFinite(credits) && credits > 0 ? Math.min(Math.floor(credits), MAX_CREDITS) : 0;
}

function withoutEmpty(message: ControlMessage): Partial<ControlMessage> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(message)) {
    if (key === 'event' || key === 'client_id' || (value !== undefined && value !== 0 && value !== false && value !== '')) out[key] = value;
  }
  return out;
}

/** Go matches JSON keys without regard to case; so do we. */
function lowerKeys(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) out[key.toLowerCase()] = value;
  return out;
}
