// Who is asking, read off a request: its session cookie, its client address and whether it came
// over TLS. A leaf module: the routes, the upgrades (events, terminal) and the system API use it.
import type http from 'node:http';
import { isIP } from 'node:net';
import { parse as parseCookies } from 'cookie';
import { SESSION_COOKIE } from '../../common/route-table.js';

export function sessionIdOf(req: http.IncomingMessage): string | undefined {
  const header = req.headers.cookie;
  return header ? parseCookies(header)[SESSION_COOKIE] : undefined;
}

export function headerOf(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Who sent the request: on the portal socket, which only the proxy can reach, the last
 * X-Forwarded-For entry (the proxy replaces whatever the client sent); anywhere else, the peer.
 */
export function clientAddress(req: http.IncomingMessage): string {
  if (!viaProxySocket(req)) return req.socket.remoteAddress ?? 'unknown';
  const forwarded = headerOf(req, 'x-forwarded-for')?.split(',').pop()?.trim() ?? '';
  return isIP(forwarded) ? forwarded : 'unknown';
}

/**
 * A unix socket has no peer address; a TCP one has one while it is open (a closed TCP socket has
 * none either, hence the destroyed check: a client that hung up must not pass for the proxy).
 */
function viaProxySocket(req: http.IncomingMessage): boolean {
  return req.socket.remoteAddress === undefined && !req.socket.destroyed;
}

/** Over TLS, or behind Piccolo's own proxy (on the portal socket) that terminated TLS. */
export function isHttps(req: http.IncomingMessage): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted) return true;
  return viaProxySocket(req) && headerOf(req, 'x-forwarded-proto') === 'https';
}
