// The one client of the daemon's /api/v1 (same origin), shared by every screen. Errors arrive typed:
// an ApiError carries the status, the daemon's code and message, the fields it named, and how long
// to wait after a 429.
import { signal } from '@preact/signals';

/** The session's CSRF token, sent on every state-changing request; set by the session module. */
export const csrfToken = signal('');
/** Called when a signed-in request answers 401: the session ended elsewhere (logout, lock, expiry). */
let onSignedOut: () => void = () => {};
export function whenSignedOut(handler: () => void): void {
  onSignedOut = handler;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Messages by field path ("password", "remote.relayUrl"): shown next to that field. */
    readonly fields: Record<string, string> = {},
    /** From Retry-After on a 429. */
    readonly retryAfterSeconds?: number,
    readonly details?: unknown,
  ) {
    super(message);
  }

  /** The message for a field, if the daemon named it. */
  field(name: string): string | undefined {
    return this.fields[name];
  }
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

async function request<T>(method: Method, path: string, body?: unknown, init: RequestInit = {}): Promise<T> {
  // A Blob (a chosen file) goes as it is, streamed by the browser; anything else as JSON.
  const raw = body instanceof Blob;
  const headers: Record<string, string> = { accept: 'application/json', ...(init.headers as Record<string, string> | undefined) };
  if (method !== 'GET') headers['x-csrf-token'] = csrfToken.value;
  if (body !== undefined) headers['content-type'] = raw ? 'application/octet-stream' : 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { ...init, method, headers, body: body === undefined ? undefined : raw ? body : JSON.stringify(body), credentials: 'same-origin' });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'offline', 'The device does not answer. Check that it is on and on your network, then try again.');
  }
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('content-type') ?? '';
  // A file the device sends (a backup) arrives as a Blob, which the browser may keep on disk.
  const data: unknown = type.includes('json') ? await res.json().catch(() => undefined) : res.ok && type.startsWith('application/octet-stream') ? await res.blob() : await res.text();
  if (res.ok) return data as T;
  const error = apiError(res, data);
  // A 401 may be a wrong password or code typed on a form: only the daemon can say the session ended.
  if (res.status === 401 && csrfToken.value && path !== SESSION_PATH) void confirmSignedOut();
  throw error;
}

const SESSION_PATH = '/api/v1/auth/session';

async function confirmSignedOut(): Promise<void> {
  const current = await request<{ authenticated: boolean }>('GET', SESSION_PATH).catch(() => undefined);
  if (current && !current.authenticated) onSignedOut();
}

function apiError(res: Response, data: unknown): ApiError {
  const body = (data as { error?: { code?: string; message?: string; details?: unknown } } | undefined)?.error;
  const message = body?.message ?? `The device answered ${res.status} ${res.statusText}.`;
  const retry = Number(res.headers.get('retry-after'));
  const lines = [message, ...(Array.isArray(body?.details) ? body!.details.filter((d): d is string => typeof d === 'string') : [])];
  const text = lines.length > 1 && message === 'invalid request body' ? lines.slice(1).join('\n') : message;
  return new ApiError(res.status, body?.code ?? 'http_' + res.status, text, fieldMessages(lines), Number.isFinite(retry) && retry > 0 ? retry : undefined, body?.details);
}

/**
 * The daemon names a field at the start of a message ("password: too short", "body: missing field
 * claimCode"): those become messages by field, so a form shows each beside its input.
 */
export function fieldMessages(lines: string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of lines) {
    const match = /^([A-Za-z_][\w.[\]-]*): (.+)$/s.exec(line);
    if (!match) continue;
    const [, where, text] = match as unknown as [string, string, string];
    const missing = /^missing field (\S+)/.exec(text);
    const name = missing ? (where === 'body' ? missing[1]! : `${where}.${missing[1]}`) : where;
    if (name !== 'body') fields[name] = missing ? 'required' : text;
  }
  return fields;
}

export const api = {
  get: <T>(path: string, init?: RequestInit) => request<T>('GET', path, undefined, init),
  post: <T>(path: string, body: unknown = {}, init?: RequestInit) => request<T>('POST', path, body, init),
  put: <T>(path: string, body: unknown, init?: RequestInit) => request<T>('PUT', path, body, init),
  del: <T>(path: string, body?: unknown, init?: RequestInit) => request<T>('DELETE', path, body, init),
};

/** A path segment, escaped: app names are safe today, but a screen should not depend on it. */
export const seg = (value: string) => encodeURIComponent(value);
