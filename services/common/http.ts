// Small HTTP helpers: a router, JSON bodies with a size limit, and the one place where errors
// become responses. A handler throws a PiccoloError for a 4xx; anything else is a logged 500.
import http from 'node:http';
import { chmod, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Readable, type Duplex } from 'node:stream';
import { DiskFullError, isNoSpaceError, MethodNotAllowedError, NotFoundError, PayloadTooLargeError, PiccoloError, UnsupportedMediaTypeError, BadRequestError, TooManyRequestsError } from './errors.js';
import type { Logger } from './logger.js';
import type { Module } from './lifecycle.js';

export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  /** A string or Buffer is sent as is, a Readable streamed; anything else as JSON. */
  body?: unknown;
}

export type Handler = (req: http.IncomingMessage, params: Record<string, string>) => Promise<Reply> | Reply;

/** `route` names the matched route as list() does: "POST /api/v1/apps/:name/start". */
export type RouteCheck = (req: http.IncomingMessage, route: string) => void | Promise<void>;

interface Route {
  method: string;
  segments: string[];
  handler: Handler;
}

export class Router {
  private readonly routes: Route[] = [];
  private readonly checks: RouteCheck[] = [];
  private otherwise: ((req: http.IncomingMessage, pathname: string) => Reply | undefined) | undefined;

  constructor(private readonly logger: Logger) {}

  /** Runs `check` before the handler of every matched route; a check refuses a request by throwing. */
  before(check: RouteCheck): this {
    this.checks.push(check);
    return this;
  }

  on(method: string, pattern: string, handler: Handler): this {
    this.routes.push({ method, segments: pattern.split('/'), handler });
    return this;
  }

  /** Answers a GET that no route matched (a client-routed page), or declines with undefined: 404. */
  fallback(handler: (req: http.IncomingMessage, pathname: string) => Reply | undefined): this {
    this.otherwise = handler;
    return this;
  }

  /** Every route as "METHOD /pattern", e.g. "GET /api/v1/apps/:name". */
  list(): string[] {
    return this.routes.map((route) => `${route.method} ${route.segments.join('/')}`);
  }

  /** The request listener for http.createServer. */
  readonly listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    this.dispatch(req)
      .then((reply) => send(res, reply, req.method === 'HEAD'))
      .catch((err) => send(res, errorReply(err, this.logger, req), false));
  };

  private async dispatch(req: http.IncomingMessage): Promise<Reply> {
    const pathname = new URL(req.url ?? '/', 'http://piccolo.invalid').pathname;
    const segments = pathname.split('/');
    const allowed: string[] = [];
    for (const route of this.routes) {
      const params = matchSegments(route.segments, segments);
      if (!params) continue;
      const method = req.method === 'HEAD' ? 'GET' : req.method;
      if (route.method === method) {
        for (const check of this.checks) await check(req, `${route.method} ${route.segments.join('/')}`);
        return route.handler(req, params);
      }
      allowed.push(route.method);
    }
    if (allowed.length) throw new MethodNotAllowedError(allowed);
    const fallback = req.method === 'GET' || req.method === 'HEAD' ? this.otherwise?.(req, pathname) : undefined;
    if (fallback) return fallback;
    throw new NotFoundError(`no route for ${pathname}`);
  }
}

/**
 * The route's parameters when `actual` matches `pattern`, else undefined. A parameter that is not
 * valid percent-encoding (`%ff%fe`, a lone `%`) is the client's mistake: a 400 naming it.
 */
export function matchSegments(pattern: string[], actual: string[]): Record<string, string> | undefined {
  if (pattern.length !== actual.length) return undefined;
  for (let i = 0; i < pattern.length; i++) {
    if (!pattern[i]!.startsWith(':') && pattern[i] !== actual[i]) return undefined;
  }
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i]!.startsWith(':')) params[pattern[i]!.slice(1)] = decodeSegment(pattern[i]!.slice(1), actual[i]!);
  }
  return params;
}

function decodeSegment(param: string, raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new BadRequestError(`${param}: the path segment "${raw.slice(0, 100)}" is not valid percent-encoding`);
  }
}

export function errorReply(err: unknown, logger: Logger, req?: http.IncomingMessage): Reply {
  // Any write refused for space, whoever made it, is the one typed answer (507 disk_full).
  if (!(err instanceof PiccoloError) && isNoSpaceError(err)) {
    logger.error('request failed: the state disk is full', { err, method: req?.method, url: req?.url });
    err = new DiskFullError(undefined);
  }
  if (err instanceof PiccoloError) {
    const headers: Record<string, string> = {};
    if (err instanceof MethodNotAllowedError) headers.allow = err.allowed.join(', ');
    if (err instanceof TooManyRequestsError) headers['retry-after'] = String(err.retryAfterSeconds);
    return { status: err.status, headers, body: { error: { code: err.code, message: err.message, details: err.details } } };
  }
  logger.error('request failed', { err, method: req?.method, url: req?.url });
  return { status: 500, body: { error: { code: 'internal', message: 'internal error' } } };
}

function send(res: http.ServerResponse, reply: Reply, headOnly: boolean): void {
  if (reply.body instanceof Readable) return sendStream(res, reply, reply.body, headOnly);
  const status = reply.status ?? 200;
  if (status === 304 || status === 204) {
    // No body, hence no Content-Length: on a 304 it would claim the cached entity is empty.
    res.writeHead(status, { 'cache-control': 'no-store', ...reply.headers });
    res.end();
    return;
  }
  const isRaw = typeof reply.body === 'string' || Buffer.isBuffer(reply.body);
  const payload = reply.body === undefined ? '' : isRaw ? (reply.body as string | Buffer) : JSON.stringify(reply.body);
  const headers: Record<string, string | number> = {
    'content-type': isRaw ? 'text/plain; charset=utf-8' : 'application/json',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...reply.headers,
    'content-length': Buffer.byteLength(payload),
  };
  res.writeHead(status, headers);
  res.end(headOnly ? undefined : payload);
}

/** A streamed body (logs): piped with backpressure, ended when the client goes away. */
function sendStream(res: http.ServerResponse, reply: Reply, body: Readable, headOnly: boolean): void {
  res.writeHead(reply.status ?? 200, { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...reply.headers });
  // A followed log may stay silent for long: the head goes out now, not with the first line.
  res.flushHeaders();
  if (headOnly) {
    body.destroy();
    res.end();
    return;
  }
  res.on('close', () => body.destroy());
  body.on('error', () => res.destroy());
  body.pipe(res);
}

/** Reads a JSON request body, refusing anything larger than limitBytes or not JSON. */
export async function readJson(req: http.IncomingMessage, limitBytes = 64 * 1024): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
  if (type !== 'application/json') throw new UnsupportedMediaTypeError('application/json');
  if (Number(req.headers['content-length'] ?? 0) > limitBytes) throw new PayloadTooLargeError(limitBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) throw new PayloadTooLargeError(limitBytes);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new BadRequestError(`body is not valid JSON: ${(err as Error).message}`);
  }
}

/** Binds a server and resolves once it listens; a bind error (port taken) rejects. */
export function listen(server: http.Server, target: { host: string; port: number } | { path: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if ('path' in target) server.listen(target.path, done);
    else server.listen(target.port, target.host, done);
  });
}

export function boundPort(server: http.Server): number {
  return (server.address() as AddressInfo).port;
}

/**
 * Stops accepting, lets requests in flight finish for graceMs, then drops what is left, upgraded
 * sockets (WebSockets) too: the server knows them no more, but close() waits for them, so a client
 * that holds one open (or reconnected while its module stopped) would keep the service from exiting.
 */
export async function closeServer(server: http.Server, graceMs = 5000, upgraded: ReadonlySet<Duplex> = new Set()): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const timer = setTimeout(() => {
    server.closeAllConnections();
    for (const socket of upgraded) socket.destroy();
  }, graceMs);
  await closed;
  clearTimeout(timer);
}

export interface HttpServerOptions {
  name: string;
  /** host:port, or a unix socket path. */
  address: { host: string; port: number } | { path: string; mode: number };
  listener: http.RequestListener;
  logger: Logger;
  /** Bounds how long a client may take to send its request. */
  requestTimeoutMs?: number;
  /** Handles protocol upgrades (WebSocket); without it they are refused. */
  onUpgrade?: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** How long stop() lets open requests and sockets finish before dropping them (5 s). */
  stopGraceMs?: number;
}

/** An HTTP listener as a service module: bound on start, drained on stop. */
export class HttpServerModule implements Module {
  readonly name: string;
  readonly server: http.Server;

  /** Sockets handed to onUpgrade and still open: stop() drops them after its grace. */
  private readonly upgraded = new Set<Duplex>();

  constructor(private readonly options: HttpServerOptions) {
    this.name = options.name;
    this.server = http.createServer({ requestTimeout: options.requestTimeoutMs ?? 30_000 }, options.listener);
    this.server.headersTimeout = Math.min(this.server.requestTimeout, 20_000);
    const { onUpgrade } = options;
    if (onUpgrade) {
      this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
        this.upgraded.add(socket);
        socket.once('close', () => this.upgraded.delete(socket));
        onUpgrade(req, socket, head);
      });
    }
  }

  async start(): Promise<void> {
    const { address } = this.options;
    if ('path' in address) {
      // A socket file left by a killed predecessor would make bind fail with EADDRINUSE.
      await mkdir(path.dirname(address.path), { recursive: true, mode: 0o750 });
      await rm(address.path, { force: true });
      await listen(this.server, address);
      await chmod(address.path, address.mode);
    } else {
      await listen(this.server, address);
    }
    this.options.logger.info('listening', { listener: this.name, address: this.describe() });
  }

  stop(): Promise<void> {
    return closeServer(this.server, this.options.stopGraceMs, this.upgraded);
  }

  get port(): number {
    return boundPort(this.server);
  }

  describe(): string {
    const address = this.options.address;
    return 'path' in address ? address.path : `${address.host}:${this.port}`;
  }
}
