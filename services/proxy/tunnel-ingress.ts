// Where the tunnel hands over the streams that came through the relay: two unix sockets that only
// the tunnel's group may connect to, each connection starting with a PROXY v2 header that names
// the end user. TLS streams go to the front door (routed by name, as on the portal port). Plain
// HTTP streams (the relay's port 80) only ever get ACME challenge answers and a redirect to
// https: the portal and the apps are never served in plaintext over the internet.
import { chown, chmod, mkdir, readFile, rm, stat } from 'node:fs/promises';
import type http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { Module } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import { ACME_PREFIX, answerAcmeChallenge } from './acme-challenge.js';
import type { ClientAddresses } from './client-address.js';
import type { DaemonClient } from './daemon-client.js';
import { clientHttpServer, type ClientLimits } from './front-door.js';
import { hostName } from './middleware.js';
import { sendProblem } from './problem-pages.js';
import { readProxyHeader } from './proxy-header.js';
import type { Routing } from './routing.js';

export interface TunnelIngressOptions {
  tlsSocket: string;
  httpSocket: string;
  /** The group that may connect (the tunnel's); when it does not exist (development), the sockets keep the proxy's group. */
  group: string;
  onTlsConnection: (socket: net.Socket) => void;
  routing: () => Routing;
  daemon: Pick<DaemonClient, 'acmeChallenge'>;
  clients: ClientAddresses;
  limits: ClientLimits;
  logger: Logger;
}

export class TunnelIngress implements Module {
  readonly name = 'tunnel-ingress';
  private readonly plain: http.Server;
  private readonly listeners: UnixListener[];

  constructor(private readonly options: TunnelIngressOptions) {
    this.plain = clientHttpServer(options.limits);
    this.plain.on('request', (req, res) => this.onPlainRequest(req, res));
    this.listeners = [
      new UnixListener('tunnel-tls', options.tlsSocket, options.group, options.onTlsConnection, options.logger),
      new UnixListener('tunnel-http', options.httpSocket, options.group, (socket) => void this.onPlainConnection(socket), options.logger),
    ];
  }

  async start(): Promise<void> {
    this.plain.emit('listening');
    for (const listener of this.listeners) await listener.start();
  }

  async stop(): Promise<void> {
    for (const listener of this.listeners) await listener.stop();
    this.plain.closeAllConnections();
    this.plain.close();
  }

  private async onPlainConnection(socket: net.Socket): Promise<void> {
    socket.on('error', ignore);
    const client = await readProxyHeader(socket, this.options.limits.headersTimeoutMs);
    if (client === undefined) return void socket.destroy();
    this.options.clients.set(socket, client);
    socket.resume();
    this.plain.emit('connection', socket);
  }

  private onPlainRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.url?.startsWith(ACME_PREFIX)) {
      return void answerAcmeChallenge(req, res, this.options).catch((err) => {
        this.options.logger.error('ACME challenge answer failed', { err });
        res.destroy();
      });
    }
    // Only names this device answers to: a redirect must not send anyone elsewhere.
    const host = hostName(req.headers.host ?? '');
    if (!host || this.options.routing().forHost(host).kind === 'unknown') return sendProblem(req, res, { status: 404, message: `no route for ${host || 'a request without a host name'}` });
    const location = `https://${host}${req.url?.startsWith('/') ? req.url : '/'}`;
    res.writeHead(308, { location, 'content-length': 0, 'cache-control': 'no-store' });
    res.end();
  }
}

/** A unix socket listener, mode 0660, in the group that may connect. */
class UnixListener {
  private readonly server: net.Server;

  constructor(
    private readonly name: string,
    private readonly socketPath: string,
    private readonly group: string,
    onConnection: (socket: net.Socket) => void,
    private readonly logger: Logger,
  ) {
    this.server = net.createServer({ allowHalfOpen: true }, onConnection);
  }

  async start(): Promise<void> {
    const dir = path.dirname(this.socketPath);
    await mkdir(dir, { recursive: true, mode: 0o750 });
    // A socket file left by a killed predecessor would make bind fail with EADDRINUSE.
    await rm(this.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ path: this.socketPath, backlog: 4096 }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    await chmod(this.socketPath, 0o660);
    const gid = await groupId(this.group);
    if (gid === undefined) {
      this.logger.warn('group not found; the tunnel socket keeps the proxy group', { listener: this.name, group: this.group });
    } else {
      await chown(this.socketPath, -1, gid);
      // The tunnel must also pass through the folder: the proxy's runtime directory (0750) when the proxy owns it.
      if ((await stat(dir)).uid === process.getuid?.()) await chown(dir, -1, gid);
    }
    this.logger.info('listening', { listener: this.name, address: this.socketPath });
  }

  async stop(): Promise<void> {
    if (!this.server.listening) return;
    // Stops accepting; streams already handed over carry on until they end.
    this.server.close();
    this.logger.info('stopped listening', { listener: this.name });
  }
}

/** The numeric id of a group, from /etc/group (Node has no getgrnam). */
async function groupId(name: string): Promise<number | undefined> {
  const groups = await readFile('/etc/group', 'utf8').catch(() => '');
  const entry = groups.split('\n').find((line) => line.split(':')[0] === name);
  return entry ? Number(entry.split(':')[2]) : undefined;
}

function ignore(): void {}
