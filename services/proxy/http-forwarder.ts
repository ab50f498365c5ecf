// HTTP/1.1 forwarding to an app: the request head written as raw bytes to a pooled keep-alive
// connection (h1/upstream-exchange.ts), the client's header fields as it sent them with only what
// must change rewritten (X-Forwarded-*, Forwarded, hop-by-hop removed), the response framed by a
// strict parser of our own, bodies streamed both ways with backpressure, request bodies bounded,
// upstream silence bounded. A WebSocket upgrade is passed on once and then the two
// sockets are spliced: frames flow through untouched. Bodies are never decoded or re-encoded:
// Accept-Encoding goes to the app, Content-Encoding and Content-Length come back as it sent them.
import http from 'node:http';
import net from 'node:net';
import type { Logger } from '../common/logger.js';
import { USER_HEADER } from '../common/route-table.js';
import { BadResponse, type ResponseHead } from './h1/response-parser.js';
import { UpstreamExchange, UpstreamTimeoutError } from './h1/upstream-exchange.js';
import type { PortalAddress } from './portal-address.js';
import { sendProblem, writeRawProblem, type Problem } from './problem-pages.js';
import type { ServedRoute, Upstream } from './routing.js';
import { splice } from './sockets.js';

/** What the proxy vouches for about a request: whether TLS carried it, and who sent it (ClientAddresses). */
export interface Origin {
  secure: boolean;
  client: string;
}

export interface ForwarderOptions {
  logger: Logger;
  /** An upstream silent this long gets a 504 (or, mid-response, a dropped connection). */
  upstreamTimeoutMs: number;
  maxBodyBytes: number;
  /** For the problem pages' link to the portal. */
  portal: PortalAddress;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings']);

export class HttpForwarder {
  constructor(private readonly options: ForwarderOptions) {}

  /** To an app's route (served), or to the portal (served undefined). */
  forward(req: http.IncomingMessage, res: http.ServerResponse, upstream: Upstream, origin: Origin, served?: ServedRoute): void {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > this.options.maxBodyBytes) {
      // The body will not be read, so the connection cannot carry another request.
      res.shouldKeepAlive = false;
      return sendProblem(req, res, this.tooLarge());
    }
    const chunked = declared === undefined && req.headers['transfer-encoding'] !== undefined;
    const overrides = served?.pipeline.responseHeaders;
    new UpstreamExchange({
      req,
      res,
      pool: upstream.pool,
      head: requestHead(req, origin, chunked ? 'chunked' : undefined),
      body: chunked ? 'chunked' : declared !== undefined && declared !== '0' ? 'length' : 'none',
      timeoutMs: this.options.upstreamTimeoutMs,
      maxBodyBytes: this.options.maxBodyBytes,
      responseHeaders: (head) => responseHeaders(head, overrides),
      failed: (err) => sendProblem(req, res, this.upstreamDown(req, origin, served, err)),
      tooLarge: () => sendProblem(req, res, this.tooLarge()),
    }).start();
  }

  upgrade(req: http.IncomingMessage, client: net.Socket, head: Buffer, upstream: Upstream, origin: Origin): void {
    const app = connectUpstream(upstream);
    let answered = false;
    app.once('data', () => (answered = true));
    app.once('error', (err) => {
      if (!answered) writeRawProblem(client, { status: 502, message: `the app is not answering (${(err as NodeJS.ErrnoException).code ?? err.message})` });
    });
    app.write(requestHead(req, origin, 'upgrade'), 'latin1');
    if (head.length) app.write(head);
    splice(client, app);
  }

/** What a person is told when the app (or the portal) cannot answer, and where to look next. */
  private upstreamDown(req: http.IncomingMessage, origin: Origin, served: ServedRoute | undefined, err: Error): Problem {
    const timedOut = err instanceof UpstreamTimeoutError;
    const seconds = this.options.upstreamTimeoutMs / 1000;
    const detail = (err as NodeJS.ErrnoException).code ?? err.message;
    if (!served) {
      return timedOut
        ? { status: 504, title: 'The portal is taking too long', message: `the device's portal did not answer within ${seconds} s`, advice: 'The device may be busy. Reload this page in a minute.' }
        : { status: 502, title: 'The portal is not answering', message: `the device's portal is not answering (${detail})`, advice: 'It may be starting or restarting. Reload this page in a minute; if it stays like this, restart the device.' };
    }
    const app = served.route.app;
    const portal = this.options.portal.origin(req, origin.secure);
    // The app's own page in the portal shows its state, the reason it failed, and its logs.
    const link = portal ? { href: `${portal}/apps/${encodeURIComponent(app)}`, text: `Open ${app} in the portal` } : undefined;
    // It runs, but what it sent cannot be passed on safely: "not running" would send the person looking in the wrong place.
    if (err instanceof BadResponse) return { status: 502, title: `${app} sent a broken answer`, message: `the app ${app} sent a response the proxy refuses: ${err.message}`, advice: 'Try again. If it keeps happening, the app has a bug; its logs in the portal may say more.', link };
    return timedOut
      ? { status: 504, title: `${app} is taking too long`, message: `the app ${app} did not answer within ${seconds} s`, advice: 'Try again in a moment. If it keeps happening, open the portal to see the app\'s state and logs.', link }
      : { status: 502, title: `${app} is not running`, message: `the app ${app} is not answering: ${inWords(detail)}`, advice: 'It may be stopped, still starting, or failed. Open the portal to see why and to start it.', link };
  }

  private tooLarge(): Problem {
    const limit = this.options.maxBodyBytes;
    return { status: 413, title: 'Too large to send', message: `the request body is larger than ${limit} bytes`, advice: `This device accepts uploads of up to ${formatBytes(limit)}.` };
  }
}

/**
 * The request head the app sees, as raw bytes: the client's header fields as it sent them (case,
 * order, repeats), less the hop-by-hop ones and what clients claim about earlier hops; the ones the
 * middleware may have changed (Cookie, the user header) and the proxy's forwarding facts added.
 * framing: the body is re-chunked (chunked), or the WebSocket upgrade is asked for (upgrade).
 */
export function requestHead(req: http.IncomingMessage, { secure, client }: Origin, framing: 'chunked' | 'upgrade' | undefined): string {
  const source = req.headers;
  const raw = req.rawHeaders;
  const listed = source.connection ? connectionTokens(source.connection) : undefined;
  let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
  let hostSeen = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || lower === 'forwarded' || lower.startsWith('x-forwarded-') || lower === 'cookie' || lower === USER_HEADER || (listed !== undefined && listed.includes(lower))) continue;
    // A repeated Host would let the app see another name than the one the proxy routed by.
    if (lower === 'host') {
      if (hostSeen) continue;
      hostSeen = true;
    }
    head += `${name}: ${raw[i + 1]}\r\n`;
  }
  if (source.cookie !== undefined) head += `cookie: ${source.cookie}\r\n`;
  const user = source[USER_HEADER];
  if (user !== undefined) head += `${USER_HEADER}: ${user}\r\n`;
  // The proxy is the edge: what clients claim about earlier hops is dropped, not passed on.
  const proto = secure ? 'https' : 'http';
  const host = source.host;
  const forwardedFor = client.includes(':') ? `"[${client}]"` : client;
  head += `x-forwarded-for: ${client}\r\nx-forwarded-proto: ${proto}\r\n`;
  if (host) head += `x-forwarded-host: ${host}\r\n`;
  head += `forwarded: for=${forwardedFor};proto=${proto}${host ? `;host="${host.replace(QUOTE_OR_BACKSLASH, '')}"` : ''}\r\n`;
  if (framing === 'chunked') head += 'transfer-encoding: chunked\r\n';
  if (framing === 'upgrade') head += `connection: Upgrade\r\nupgrade: ${source.upgrade}\r\n`;
  return `${head}\r\n`;
}

const QUOTE_OR_BACKSLASH = /["\\]/g;

/** A raw connection to the upstream (WebSocket upgrades, passthrough). */
export function connectUpstream({ target }: Upstream): net.Socket {
  const where = 'port' in target ? { host: '127.0.0.1', port: target.port } : { path: target.socketPath };
  return net.connect({ ...where, allowHalfOpen: true, noDelay: true });
}

/** The app's response headers, hop-by-hop ones removed, then the middleware's set over them (Vary merged, so Accept-Encoding stays). */
function responseHeaders({ headers: raw, connection }: ResponseHead, overrides: Record<string, string> | undefined): string[] {
  const listed = connection ? connectionTokens(connection) : undefined;
  const headers: string[] = [];
  let theirVary: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || (listed !== undefined && listed.includes(lower))) continue;
    if (overrides !== undefined) {
      if (overrides[lower] !== undefined) {
        if (lower === 'vary') theirVary = theirVary === undefined ? raw[i + 1] : `${theirVary}, ${raw[i + 1]}`;
        continue;
      }
      // Cache-Control decides now; an app's Expires would only confuse an old cache.
      if (lower === 'expires' && overrides['cache-control'] !== undefined) continue;
    }
    headers.push(name, raw[i + 1]!);
  }
  if (overrides === undefined) return headers;
  for (const name of Object.keys(overrides)) headers.push(name, name === 'vary' ? mergeVary(theirVary, overrides[name]!) : overrides[name]!);
  return headers;
}

function mergeVary(theirs: string | undefined, ours: string): string {
  if (!theirs) return ours;
  const listed = theirs.split(',').map((token) => token.trim().toLowerCase());
  if (listed.includes('*')) return theirs;
  const missing = ours.split(',').map((token) => token.trim()).filter((token) => !listed.includes(token.toLowerCase()));
  return missing.length ? `${theirs}, ${missing.join(', ')}` : theirs;
}

/** A connection error as a person can read it, the code kept for whoever digs further. */
function inWords(code: string): string {
  const words: Record<string, string> = {
    ECONNREFUSED: 'nothing listens on its port',
    ECONNRESET: 'it closed the connection',
    EPIPE: 'it closed the connection',
    EHOSTUNREACH: 'its address cannot be reached',
  };
  return words[code] ? `${words[code]} (${code})` : code;
}

function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) [value, unit] = [value / 1024, unit + 1];
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
}

/** The header names a Connection header lists (lower-cased, trimmed): hop-by-hop for this one message. */
function connectionTokens(value: string): string[] {
  return value.toLowerCase().split(',').map((token) => token.trim());
}
