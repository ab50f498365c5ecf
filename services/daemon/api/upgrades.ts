// WebSocket upgrades: the HTTP server has one 'upgrade' event, dispatched here by path to the
// events stream or an app's terminal; and the gate every upgrade passes (session, Origin, and for
// sockets that act, the CSRF token). Refusals are plain HTTP answers before any WebSocket exists.
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { matchSegments } from '../../common/http.js';
import { csrfMatches, type Session, type SessionStore } from '../auth/sessions.js';
import { sessionIdOf } from './request.js';

export type UpgradeHandler = (req: http.IncomingMessage, socket: Duplex, head: Buffer, params: Record<string, string>) => void;

/** A browser cannot set headers on a WebSocket: the CSRF token comes as a subprotocol. */
export const CSRF_PROTOCOL_PREFIX = 'piccolo-csrf.';

export class UpgradeRouter {
  private readonly routes: { segments: string[]; handler: UpgradeHandler }[] = [];
  private closed = false;

  /** `pattern` as the HTTP router's: /api/v1/apps/:name/terminal. */
  on(pattern: string, handler: UpgradeHandler): this {
    this.routes.push({ segments: pattern.split('/'), handler });
    return this;
  }

  /**
   * Refuses every upgrade from now on (503): once the sockets' modules have stopped, a browser that
   * reconnects at once must not get a socket no one will close.
   */
  close(): void {
    this.closed = true;
  }

  /** For the HTTP server's 'upgrade' event. */
  readonly handle = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (this.closed) return refuseUpgrade(socket, 503, 'Service Unavailable');
    const segments = new URL(req.url ?? '/', 'http://piccolo.invalid').pathname.split('/');
    for (const route of this.routes) {
      let params: Record<string, string> | undefined;
      try {
        params = matchSegments(route.segments, segments);
      } catch {
        return refuseUpgrade(socket, 400, 'Bad Request'); // a malformed %-escape
      }
      if (params) return route.handler(req, socket, head, params);
    }
    refuseUpgrade(socket, 404, 'Not Found');
  };
}

export function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
}

export type GateResult = { session: Session } | { status: 401 | 403; reason: string; session?: Session };

/**
 * The session cookie, then the Origin: cookies ride along with cross-site WebSocket requests, so
 * only our own pages may connect. With `csrf`, also the token as the subprotocol
 * piccolo-csrf.<token>, for sockets through which the client changes things (a terminal).
 */
export function gateUpgrade(req: http.IncomingMessage, sessions: SessionStore, options: { csrf: boolean }): GateResult {
  const session = sessions.get(sessionIdOf(req));
  if (!session) return { status: 401, reason: 'Unauthorized' };
  const origin = req.headers.origin;
  if (origin !== undefined && hostOf(origin) !== req.headers.host) return { status: 403, reason: 'Forbidden', session };
  if (options.csrf) {
    const offered = offeredProtocols(req).find((protocol) => protocol.startsWith(CSRF_PROTOCOL_PREFIX));
    if (!csrfMatches(session, offered?.slice(CSRF_PROTOCOL_PREFIX.length))) return { status: 403, reason: 'Forbidden', session };
  }
  return { session };
}

export function offeredProtocols(req: http.IncomingMessage): string[] {
  return (req.headers['sec-websocket-protocol'] ?? '').split(',').map((protocol) => protocol.trim()).filter(Boolean);
}

/** "null" (a sandboxed page) or anything unparsable matches no host. */
function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}
