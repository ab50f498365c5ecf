// HTTP/1.1 forwarding to an app: headers rewritten for the upstream (X-Forwarded-*, Forwarded,
// hop-by-hop removed), bodies streamed both ways with backpressure (pipe), request bodies
// bounded, upstream silence bounded. A WebSocket upgrade is passed on once and then the two
// sockets are spliced: frames flow through untouched.
import http from 'node:http';
import net from 'node:net';
import type { Logger } from '../common/logger.js';
import { sendProblem, writeRawProblem } from './problem-pages.js';
import type { Upstream } from './routing.js';
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
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings']);
/** Only these methods are retried on a keep-alive connection the upstream had just closed. */
const RETRYABLE = new Set(['GET', 'HEAD', 'OPTIONS']);

class UpstreamTimeoutError extends Error {}

export class HttpForwarder {
  constructor(private readonly options: ForwarderOptions) {}

  forward(req: http.IncomingMessage, res: http.ServerResponse, upstream: Upstream, origin: Origin): void {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > this.options.maxBodyBytes) {
      // The body will not be read, so the connection cannot carry another request.
      res.shouldKeepAlive = false;
      return sendProblem(req, res, 413, `the request body is larger than ${this.options.maxBodyBytes} bytes`);
    }
    const headers = upstreamHeaders(req, origin, false);
    const chunked = declared === undefined && req.headers['transfer-encoding'] !== undefined;
    if (chunked) headers['transfer-encoding'] = 'chunked';
    this.send(req, res, upstream, headers, chunked || (declared !== undefined && declared !== '0'), true);
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
      if (!answered) writeRawProblem(client, 502, `the app is not answering (${(err as NodeJS.ErrnoException).code ?? err.message})`);
    });
    app.write(lines.join('\r\n') + '\r\n\r\n');
    if (head.length) app.write(head);
    splice(client, app);
  }

  private send(req: http.IncomingMessage, res: http.ServerResponse, upstream: Upstream, headers: http.OutgoingHttpHeaders, hasBody: boolean, mayRetry: boolean): void {
    const upstreamReq = http.request({ ...requestTarget(upstream), method: req.method, path: req.url, headers, agent: upstream.agent });
    let responded = false;
    upstreamReq.setTimeout(this.options.upstreamTimeoutMs, () => upstreamReq.destroy(new UpstreamTimeoutError()));
    upstreamReq.on('response', (upstreamRes) => {
      responded = true;
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, responseHeaders(upstreamRes));
      upstreamRes.pipe(res);
      // The app died mid-response: nothing honest can be sent but a cut connection.
      upstreamRes.once('error', () => res.destroy());
      upstreamRes.once('aborted', () => res.destroy());
    });
    upstreamReq.on('error', (err) => {
      if (responded || res.headersSent) return void res.destroy();
      if (mayRetry && upstreamReq.reusedSocket && !hasBody && RETRYABLE.has(req.method ?? '') && !(err instanceof UpstreamTimeoutError)) {
        // A pooled connection the app closed while it sat idle: the request never reached it.
        return this.send(req, res, upstream, headers, hasBody, false);
      }
      if (err instanceof UpstreamTimeoutError) return sendProblem(req, res, 504, `the app did not answer within ${this.options.upstreamTimeoutMs / 1000} s`);
      sendProblem(req, res, 502, `the app is not answering (${(err as NodeJS.ErrnoException).code ?? err.message})`);
    });
    // The client went away: stop the upstream exchange too.
    res.once('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });
    if (!hasBody) return void upstreamReq.end();
    this.streamBody(req, res, upstreamReq);
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
      sendProblem(req, res, 413, `the request body is larger than ${limit} bytes`);
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

function responseHeaders(res: http.IncomingMessage): http.OutgoingHttpHeaders {
  const source = res.headers;
  const listed = source.connection ? connectionTokens(source.connection) : undefined;
  const headers: http.OutgoingHttpHeaders = {};
  for (const name of Object.keys(source)) {
    if (!HOP_BY_HOP.has(name) && (listed === undefined || !listed.includes(name))) headers[name] = source[name];
  }
  return headers;
}

/** The header names a Connection header lists (lower-cased, trimmed): hop-by-hop for this one message. */
function connectionTokens(value: string): string[] {
  return value.toLowerCase().split(',').map((token) => token.trim());
}
