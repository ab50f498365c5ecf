// HTTP/1.1 forwarding to an app: headers rewritten for the upstream (X-Forwarded-*, Forwarded,
// hop-by-hop removed), bodies streamed both ways with backpressure (pipe), request bodies
// bounded, upstream silence bounded. A WebSocket upgrade is passed on once and then the two
// sockets are spliced: frames flow through untouched. Bodies are never decoded or re-encoded:
// Accept-Encoding goes to the app, Content-Encoding and Content-Length come back as it sent them.
import http from 'node:http';
import net from 'node:net';
import type { Logger } from '../common/logger.js';
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
/** Only these methods are retried on a keep-alive connection the upstream had just closed. */
const RETRYABLE = new Set(['GET', 'HEAD', 'OPTIONS']);

class UpstreamTimeoutError extends Error {}

interface Exchange {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  upstream: Upstream;
  origin: Origin;
  served: ServedRoute | undefined;
}

export class HttpForwarder {
  constructor(private readonly options: ForwarderOptions) {}

  /** To an app's route (served), or to the portal (served undefined). */
  forward(req: http.IncomingMessage, res: http.ServerResponse, upstream: Upstream, origin: Origin, served?: ServedRoute): void {
    const declared = req.headers['content-length'];
    const exchange: Exchange = { req, res, upstream, origin, served };
    if (declared !== undefined && Number(declared) > this.options.maxBodyBytes) {
      // The body will not be read, so the connection cannot carry another request.
      res.shouldKeepAlive = false;
      return sendProblem(req, res, this.tooLarge());
    }
    const headers = upstreamHeaders(req, origin, false);
    const chunked = declared === undefined && req.headers['transfer-encoding'] !== undefined;
    if (chunked) headers['transfer-encoding'] = 'chunked';
    this.send(exchange, headers, chunked || (declared !== undefined && declared !== '0'), true);
  }

  upgrade(req: http.IncomingMessage, client: net.Socket, head: Buffer, upstream: Upstream, origin: Origin): void {
    const headers = upstreamHeaders(req, origin, true);
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    for (const [name, value] of Object.entries(headers)) {
      for (const item of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${item}`);
    }
    const app = connectUpstream(upstream);
    let answered = false;
    app.once('data', () => (answered = true));
    app.once('error', (err) => {
      if (!answered) writeRawProblem(client, { status: 502, message: `the app is not answering (${(err as NodeJS.ErrnoException).code ?? err.message})` });
    });
    app.write(lines.join('\r\n') + '\r\n\r\n');
    if (head.length) app.write(head);
    splice(client, app);
  }

  private send(exchange: Exchange, headers: http.OutgoingHttpHeaders, hasBody: boolean, mayRetry: boolean): void {
    const { req, res, upstream, served } = exchange;
    const upstreamReq = http.request({ ...requestTarget(upstream), method: req.method, path: req.url, headers, agent: upstream.agent });
    let responded = false;
    upstreamReq.setTimeout(this.options.upstreamTimeoutMs, () => upstreamReq.destroy(new UpstreamTimeoutError()));
    upstreamReq.on('response', (upstreamRes) => {
      responded = true;
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, responseHeaders(upstreamRes, served?.pipeline.responseHeaders));
      upstreamRes.pipe(res);
      // The app died mid-response: nothing honest can be sent but a cut connection.
      upstreamRes.once('error', () => res.destroy());
      upstreamRes.once('aborted', () => res.destroy());
    });
    upstreamReq.on('error', (err) => {
      if (responded || res.headersSent) return void res.destroy();
      if (mayRetry && upstreamReq.reusedSocket && !hasBody && RETRYABLE.has(req.method ?? '') && !(err instanceof UpstreamTimeoutError)) {
        // A pooled connection the app closed while it sat idle: the request never reached it.
        return this.send(exchange, headers, hasBody, false);
      }
      sendProblem(req, res, this.upstreamDown(exchange, err));
    });
    // The client went away: stop the upstream exchange too.
    res.once('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });
    if (!hasBody) return void upstreamReq.end();
    this.streamBody(req, res, upstreamReq);
  }

  /** What a person is told when the app (or the portal) cannot answer, and where to look next. */
  private upstreamDown({ req, origin, served }: Exchange, err: Error): Problem {
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
    return timedOut
      ? { status: 504, title: `${app} is taking too long`, message: `the app ${app} did not answer within ${seconds} s`, advice: 'Try again in a moment. If it keeps happening, open the portal to see the app\'s state and logs.', link }
      : { status: 502, title: `${app} is not running`, message: `the app ${app} is not answering: ${inWords(detail)}`, advice: 'It may be stopped, still starting, or failed. Open the portal to see why and to start it.', link };
  }

  private tooLarge(): Problem {
    const limit = this.options.maxBodyBytes;
    return { status: 413, title: 'Too large to send', message: `the request body is larger than ${limit} bytes`, advice: `This device accepts uploads of up to ${formatBytes(limit)}.` };
  }

  private streamBody(req: http.IncomingMessage, res: http.ServerResponse, upstreamReq: http.ClientRequest): void {
    let received = 0;
    const limit = this.options.maxBodyBytes;
    const countBytes = (chunk: Buffer) => {
      received += chunk.length;
      if (received <= limit) return;
      req.off('data', countBytes);
      req.unpipe(upstreamReq);
      upstreamReq.destroy();
      if (res.headersSent) return void res.destroy();
      res.shouldKeepAlive = false;
      sendProblem(req, res, this.tooLarge());
    };
    req.on('data', countBytes);
    req.pipe(upstreamReq);
  }
}

/** The request headers the app sees: hop-by-hop ones removed, the proxy's forwarding facts added. */
export function upstreamHeaders(req: http.IncomingMessage, { secure, client }: Origin, upgrade: boolean): http.OutgoingHttpHeaders {
  // On the hot path: no Set, no [name, value] pairs, and the Connection header split only when there is one.
  const source = req.headers;
  const listed = source.connection ? connectionTokens(source.connection) : undefined;
  const headers: http.OutgoingHttpHeaders = {};
  for (const name of Object.keys(source)) {
    if (HOP_BY_HOP.has(name) || name === 'forwarded' || name.startsWith('x-forwarded-') || (listed !== undefined && listed.includes(name))) continue;
    headers[name] = source[name];
  }
  // The proxy is the edge: what clients claim about earlier hops is dropped, not passed on.
  const proto = secure ? 'https' : 'http';
  const host = source.host;
  headers['x-forwarded-for'] = client;
  headers['x-forwarded-proto'] = proto;
  if (host) headers['x-forwarded-host'] = host;
  const forwardedFor = client.includes(':') ? `"[${client}]"` : client;
  headers.forwarded = `for=${forwardedFor};proto=${proto}${host ? `;host="${host.replace(QUOTE_OR_BACKSLASH, '')}"` : ''}`;
  if (upgrade) {
    headers.connection = 'Upgrade';
    headers.upgrade = source.upgrade;
  }
  return headers;
}

const QUOTE_OR_BACKSLASH = /["\\]/g;

/** A raw connection to the upstream (WebSocket upgrades, passthrough). */
export function connectUpstream({ target }: Upstream): net.Socket {
  const where = 'port' in target ? { host: '127.0.0.1', port: target.port } : { path: target.socketPath };
  return net.connect({ ...where, allowHalfOpen: true, noDelay: true });
}

function requestTarget({ target }: Upstream): http.RequestOptions {
  return 'port' in target ? { host: '127.0.0.1', port: target.port } : { socketPath: target.socketPath };
}

/** The app's response headers, hop-by-hop ones removed, then the middleware's set over them (Vary merged, so Accept-Encoding stays). */
function responseHeaders(res: http.IncomingMessage, overrides: Record<string, string> | undefined): http.OutgoingHttpHeaders {
  const source = res.headers;
  const listed = source.connection ? connectionTokens(source.connection) : undefined;
  const headers: http.OutgoingHttpHeaders = {};
  for (const name of Object.keys(source)) {
    if (!HOP_BY_HOP.has(name) && (listed === undefined || !listed.includes(name))) headers[name] = source[name];
  }
  if (overrides === undefined) return headers;
  for (const name of Object.keys(overrides)) {
    headers[name] = name === 'vary' ? mergeVary(source.vary, overrides[name]!) : overrides[name];
  }
  // Cache-Control decides now; an app's Expires would only confuse an old cache.
  if (overrides['cache-control'] !== undefined) delete headers.expires;
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
