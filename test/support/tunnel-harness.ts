// Test helpers for the tunnel client: a self-signed relay certificate, the real TypeScript relay
// (services/relay) with the client in-process, local target servers, and a scripted relay that
// plays a misbehaving server frame by frame (DATA for unknown ids, withheld credits, silence),
// which the real relay cannot be made to do.
import { createHook } from 'node:async_hooks';
import { once } from 'node:events';
import https from 'node:https';
import net from 'node:net';
import { jwtVerify } from 'jose';
import { WebSocketServer, type WebSocket } from 'ws';
import { createLogger, type Logger } from '../../services/common/logger.js';
import { decodeFrame, encodeControl, encodeData, type ControlMessage, type Frame } from '../../services/tunnel/protocol.js';

export const quietLogger: Logger = createLogger({ service: 'test', write: () => {}, level: 'error' });

/** A logger whose lines tests can search. */
export function recordingLogger(service: string): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createLogger({ service, level: 'debug', write: (line) => void lines.push(line) }), lines };
}

export { selfSignedCert } from './certs.js';

/** Polls until probe returns something truthy, and returns it. */
export async function waitUntil<T>(probe: () => T | undefined | false | 0 | '', timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Sockets, servers and timers created from now on; alive() lists those not yet closed or
 * cleared, with where each was made, so a leak names its source.
 */
export function trackResources(): { alive(): string[]; stop(): void } {
  const live = new Map<number, string>();
  const hook = createHook({
    init(id, type) {
      if (type === 'Timeout' || type === 'TCPWRAP' || type === 'TCPSERVERWRAP') {
        const limit = Error.stackTraceLimit;
        Error.stackTraceLimit = 40;
        const stack = new Error().stack ?? '';
        Error.stackTraceLimit = limit;
        const origin = stack.split('\n').find((line) => line.includes('/services/') || (line.includes('/test/') && !line.includes('tunnel-harness.ts') && !line.includes('node_modules')));
        live.set(id, `${type} ${origin?.trim() ?? '(node internals)'}`);
      }
    },
    destroy(id) {
      live.delete(id);
    },
  }).enable();
  return { alive: () => [...live.values()], stop: () => void hook.disable() };
}

export function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

/** Connects to a local TCP port, resolving once connected (the shape of the tunnel's Dialer). */
export function dialPort(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Reads a socket to its end. */
export async function readAll(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await once(socket, 'close');
  return Buffer.concat(chunks);
}

// ---- the scripted relay ----

/** One backend connection on the scripted relay, after a valid handshake. */
export class ScriptedBackend {
  readonly frames: Frame[] = [];
  readonly texts: string[] = [];
  readonly closed: Promise<void>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => (isBinary ? this.frames.push(decodeFrame(data)) : this.texts.push(data.toString('utf8'))));
    this.closed = once(ws, 'close').then(() => {});
  }

  control(message: ControlMessage): void {
    this.ws.send(encodeControl(message));
  }

  data(clientId: string, payload: Buffer): void {
    this.ws.send(encodeData(clientId, payload));
  }

  /** Control messages the backend sent for one id (or all). */
  controls(clientId?: string): ControlMessage[] {
    return this.frames.flatMap((frame) => (frame.kind === 'control' && (!clientId || frame.message.client_id === clientId) ? [frame.message] : []));
  }

  dataFrames(clientId: string): Buffer[] {
    return this.frames.flatMap((frame) => (frame.kind === 'data' && frame.clientId === clientId ? [frame.payload] : []));
  }
}

export interface ScriptedRelayOptions {
  tls: { key: string; cert: string };
  secret: string;
  /** False: never answer the backend's pings (a relay that went silent). */
  autoPong?: boolean;
  /** Offer these ALPN protocols (to see that the client picks none). */
  alpn?: string[];
  /** Answer every upgrade with this HTTP status instead (a relay that refuses the device). */
  refuseUpgrade?: number;
}

/** A hub that checks both tokens with jose, then leaves the session to the test. */
export class ScriptedRelay {
  port = 0;
  readonly upgrades: { protocolHeader: string | undefined; alpn: string | false | null; extensions: string | undefined }[] = [];
  /** Upgrades refused with refuseUpgrade. */
  refused = 0;
  private readonly server: https.Server;
  private readonly wss: WebSocketServer;
  private readonly waiting: ((backend: ScriptedBackend) => void)[] = [];
  private readonly ready: ScriptedBackend[] = [];
  private readonly sockets = new Set<WebSocket>();

  constructor(private readonly options: ScriptedRelayOptions) {
    this.server = https.createServer({ ...options.tls, ALPNProtocols: options.alpn });
    const refuse = options.refuseUpgrade;
    this.wss = new WebSocketServer({
      server: this.server,
      path: '/connect',
      autoPong: options.autoPong ?? true,
      perMessageDeflate: false,
      handleProtocols: () => false,
      verifyClient: refuse === undefined ? undefined : (_info, done) => (this.refused++, done(false, refuse)),
    });
    this.wss.on('connection', (ws, req) => {
      this.sockets.add(ws);
      ws.on('close', () => this.sockets.delete(ws));
      const tlsSocket = req.socket as import('node:tls').TLSSocket;
      this.upgrades.push({ protocolHeader: req.headers['sec-websocket-protocol'], alpn: tlsSocket.alpnProtocol, extensions: req.headers['sec-websocket-extensions'] });
      void this.handshake(ws);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  get url(): string {
    return `wss://127.0.0.1:${this.port}/connect`;
  }

  /** The next backend that completes the handshake. */
  nextBackend(timeoutMs = 10_000): Promise<ScriptedBackend> {
    const ready = this.ready.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no backend completed the handshake')), timeoutMs);
      this.waiting.push((backend) => {
        clearTimeout(timer);
        resolve(backend);
      });
    });
  }

  async stop(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async handshake(ws: WebSocket): Promise<void> {
    const key = new TextEncoder().encode(this.options.secret);
    const verify = (token: string) => jwtVerify(token, key, { issuer: 'authorizer', audience: 'nexus' });
    const next = () => new Promise<Buffer>((resolve) => ws.once('message', (data: Buffer) => resolve(data)));
    try {
      await verify((await next()).toString('utf8'));
      const nonce = 'scripted-nonce-0123456789abcdefghijklmnopqrstu'.slice(0, 43);
      ws.send(JSON.stringify({ type: 'handshake_challenge', nonce }));
      const stage1 = await verify((await next()).toString('utf8'));
      if (stage1.payload.session_nonce !== nonce) throw new Error('nonce mismatch');
    } catch (err) {
      ws.close(1008, (err as Error).message.slice(0, 100));
      return;
    }
    const backend = new ScriptedBackend(ws);
    const waiter = this.waiting.shift();
    if (waiter) waiter(backend);
    else this.ready.push(backend);
  }
}
