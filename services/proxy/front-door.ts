// Every accepted connection comes through here and goes one of four ways, decided by its port's
// route: raw TCP or TLS passthrough are spliced to the app; HTTP is parsed by one shared HTTP
// server, either plain or after TLS termination (the first byte tells them apart, so one port
// serves both). The portal listeners route by name instead: SNI picks a passthrough app, the
// Host header picks an app or the portal, and an unknown host gets a 404 page. The tunnel's TLS
// ingress routes by name too, but speaks only TLS, and its client is the one its PROXY header names.
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { Module } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import { USER_HEADER } from '../common/route-table.js';
import { ACME_PREFIX, answerAcmeChallenge } from './acme-challenge.js';
import type { CertStore } from './cert-store.js';
import { TLS_SETTINGS } from './cert-store.js';
import { MAX_CLIENT_HELLO, looksLikeTls, parseClientHello } from './client-hello.js';
import type { ClientAddresses } from './client-address.js';
import type { DaemonClient } from './daemon-client.js';
import { connectUpstream, type HttpForwarder, type Origin } from './http-forwarder.js';
import { hostName } from './middleware.js';
import type { PortalAddress } from './portal-address.js';
import { sendProblem, writeRawProblem, type Problem } from './problem-pages.js';
import { isPassthrough, type Routing, type ServedRoute, type Upstream } from './routing.js';
import { readProxyHeader } from './proxy-header.js';
import { peek, splice } from './sockets.js';

export interface ClientLimits {
  /** Time to send the request line and headers (slowloris), and to start a TLS handshake. */
  headersTimeoutMs: number;
  /** Time to send a whole request, body included. */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open. */
  keepAliveTimeoutMs: number;
  maxHeaderBytes: number;
}

/**
 * An HTTP server for connections handed to it (it never listens itself) with the client limits.
 * Node only starts its header and request timeout checks on 'listening': the owner emits that
 * on start, or slowloris wins.
 */
export function clientHttpServer(limits: ClientLimits): http.Server {
  return http.createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node checks the two timeouts above on this interval; its default (30 s) lets slow clients linger.
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    noDelay: true,
    // llhttp's strict mode is what refuses smuggling framings (CL+TE, obs-fold, bare LF, NUL):
    // pinned here so a --insecure-http-parser in NODE_OPTIONS cannot turn it off.
    insecureHTTPParser: false,
  });
}

export interface FrontDoorOptions {
  routing: () => Routing;
  /** Ports of the portal listeners, which route by name; filled in as they bind. */
  portalPorts: ReadonlySet<number>;
  certs: CertStore;
  forwarder: HttpForwarder;
  daemon: Pick<DaemonClient, 'acmeChallenge'>;
  clients: ClientAddresses;
  limits: ClientLimits;
  /** For the problem pages' link to the portal. */
  portal: PortalAddress;
  logger: Logger;
}

type Destination = { served: ServedRoute } | { portal: Upstream } | { problem: Problem };

export class FrontDoor implements Module {
  readonly name = 'front-door';
  private readonly http: http.Server;
  /** Made on start: it needs the device certificate, which the cert store loads on its start. */
  private tls!: tls.Server;

  constructor(private readonly options: FrontDoorOptions) {
    this.http = clientHttpServer(options.limits);
    this.http.on('request', (req, res) => this.onRequest(req, res));
    this.http.on('upgrade', (req, socket, head) => void this.onUpgrade(req, socket as net.Socket, head));
  }

  async start(): Promise<void> {
    this.http.emit('listening');
    this.tls = tls.createServer({
      ...this.options.certs.devicePair,
      ...TLS_SETTINGS,
      handshakeTimeout: this.options.limits.headersTimeoutMs,
      SNICallback: (serverName, done) => done(null, this.options.certs.contextFor(serverName)),
    });
    this.options.certs.onDeviceCertificate((pair) => this.tls.setSecureContext({ ...pair, ...TLS_SETTINGS }));
    this.tls.on('secureConnection', (socket) => {
      this.options.clients.carryOver(socket);
      this.http.emit('connection', socket);
    });
    this.tls.on('tlsClientError', (err) => this.options.logger.debug('TLS handshake failed', { err }));
  }

  async stop(): Promise<void> {
    this.http.closeIdleConnections();
    this.http.close();
    await new Promise((resolve) => setTimeout(resolve, 200).unref());
    this.http.closeAllConnections();
  }

  /** The entry point for every connection accepted on every port. */
  readonly onConnection = (socket: net.Socket): void => {
    // Errors before a handler takes the socket (a reset during the first read) must not crash the process.
    socket.on('error', ignore);
    const port = socket.localPort!;
    if (this.options.portalPorts.has(port)) return void this.portalConnection(socket);
    const served = this.options.routing().forPort(port);
    if (!served || !served.pipeline.admitConnection(socket, this.options.clients.of(socket))) return void socket.destroy();
    if (isPassthrough(served.route)) return splice(socket, connectUpstream(served.upstream));
    void this.httpConnection(socket);
  };

  /** A connection on the tunnel's TLS ingress: the PROXY header first, then TLS routed by name. */
  readonly onTunnelTlsConnection = async (socket: net.Socket): Promise<void> => {
    socket.on('error', ignore);
    const client = await readProxyHeader(socket, this.options.limits.headersTimeoutMs);
    if (client === undefined) return void socket.destroy();
    this.options.clients.set(socket, client);
    await this.tlsByName(socket);
  };

  private async httpConnection(socket: net.Socket): Promise<void> {
    const first = await peek(socket, (data) => data.length > 0, { maxBytes: 1, timeoutMs: this.options.limits.headersTimeoutMs });
    if (!first) return void socket.destroy();
    if (looksLikeTls(first)) return void this.tls.emit('connection', socket);
    socket.resume();
    this.http.emit('connection', socket);
  }

  private async portalConnection(socket: net.Socket): Promise<void> {
    const first = await peek(socket, (data) => data.length > 0, { maxBytes: 1, timeoutMs: this.options.limits.headersTimeoutMs });
    if (!first) return void socket.destroy();
    if (!looksLikeTls(first)) {
      socket.resume();
      return void this.http.emit('connection', socket);
    }
    await this.tlsByName(socket);
  }

  /** SNI naming a passthrough route splices to the app; any other ClientHello is terminated here; anything else is dropped. */
  private async tlsByName(socket: net.Socket): Promise<void> {
    const hello = await peek(socket, (data) => parseClientHello(data).kind !== 'incomplete', { maxBytes: MAX_CLIENT_HELLO + 5, timeoutMs: this.options.limits.headersTimeoutMs });
    const parsed = hello ? parseClientHello(hello) : undefined;
    if (parsed?.kind !== 'hello') return void socket.destroy();
    const passthrough = this.options.routing().forServerName(parsed.serverName);
    if (!passthrough) return void this.tls.emit('connection', socket);
    if (!passthrough.pipeline.admitConnection(socket, this.options.clients.of(socket))) return void socket.destroy();
    socket.resume();
    splice(socket, connectUpstream(passthrough.upstream));
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    // Only a client pretending to be a signed-in user sends this; deleting a property that is not
    // there would still slow down every later access to the headers object.
    if (req.headers[USER_HEADER] !== undefined) delete req.headers[USER_HEADER];
    try {
      if (req.url?.startsWith(ACME_PREFIX)) return void answerAcmeChallenge(req, res, this.options).catch((err) => this.requestFailed(req, res, err));
      const origin = this.originOf(req.socket);
      const destination = this.destination(req, origin, res);
      // The common case (no request middleware) stays synchronous: no promise, no extra tick.
      if (destination instanceof Promise) destination.then((found) => this.answer(req, res, found, origin)).catch((err) => this.requestFailed(req, res, err));
      else this.answer(req, res, destination, origin);
    } catch (err) {
      this.requestFailed(req, res, err);
    }
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse, destination: Destination, origin: Origin): void {
    if ('problem' in destination) return sendProblem(req, res, destination.problem);
    if ('served' in destination) return this.options.forwarder.forward(req, res, destination.served.upstream, origin, destination.served);
    this.options.forwarder.forward(req, res, destination.portal, origin);
  }

  private requestFailed(req: http.IncomingMessage, res: http.ServerResponse, err: unknown): void {
    this.options.logger.error('request failed', { err, method: req.method, url: req.url });
    if (!res.headersSent) sendProblem(req, res, PROXY_FAILED);
    else res.destroy();
  }

  private async onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): Promise<void> {
    if (req.headers[USER_HEADER] !== undefined) delete req.headers[USER_HEADER];
    try {
      const origin = this.originOf(socket);
      const destination = await this.destination(req, origin);
      if ('problem' in destination) return writeRawProblem(socket, destination.problem);
      const upstream = 'served' in destination ? destination.served.upstream : destination.portal;
      this.options.forwarder.upgrade(req, socket, head, upstream, origin);
    } catch (err) {
      this.options.logger.error('upgrade failed', { err, url: req.url });
      writeRawProblem(socket, PROXY_FAILED);
    }
  }

  /** Where a request goes, after the route's middleware had its say (a promise only if it has middleware to ask). */
  private destination(req: http.IncomingMessage, origin: Origin, res?: http.ServerResponse): Destination | Promise<Destination> {
    const routing = this.options.routing();
    const port = req.socket.localPort;
    let served: ServedRoute | undefined;
    // No port: the tunnel's TLS ingress (a unix socket), which routes by name as the portal port does.
    if (port === undefined || this.options.portalPorts.has(port)) {
      // Before the daemon's first table the proxy knows neither the portal nor the apps: "starting", not "no app here".
      if (routing.rev === undefined) return { problem: STARTING };
      const host = hostName(req.headers.host ?? '');
      const match = routing.forHost(host);
      if (match.kind === 'portal') return { portal: match.upstream };
      if (match.kind === 'unknown') return { problem: this.noRoute(req, origin, `no route for ${host || 'a request without a host name'}: no app on this device answers at that name`) };
      served = match.served;
    } else {
      served = routing.forPort(port);
      if (!served) return { problem: this.noRoute(req, origin, 'no route: this port has no app any more') };
    }
    if (!served.pipeline.checksRequests) return { served };
    const admitted = served;
    return served.pipeline.checkRequest({ req, ...origin }, res).then((rejection) => (rejection ? { problem: rejection } : { served: admitted }));
  }

  private noRoute(req: http.IncomingMessage, { secure }: Origin, message: string): Problem {
    const portal = this.options.portal.origin(req, secure);
    return {
      status: 404,
      title: 'No app here',
      message,
      advice: 'The app may have been uninstalled, or the address has a typo. The portal lists the apps on this device and their addresses.',
      link: portal ? { href: `${portal}/apps`, text: 'See the apps in the portal' } : undefined,
    };
  }

  private originOf(socket: net.Socket): Origin {
    return { secure: (socket as tls.TLSSocket).encrypted === true, client: this.options.clients.of(socket) };
  }
}

const STARTING: Problem = { status: 503, headers: { 'retry-after': '2' }, title: 'Starting', message: 'the device is starting: its portal is not up yet', advice: 'This page will work in a few seconds. Reload it.' };
const PROXY_FAILED: Problem = { status: 500, title: 'Something went wrong', message: 'the proxy failed on this request', advice: 'Try again. If it keeps happening, restart the device.' };

function ignore(): void {}
