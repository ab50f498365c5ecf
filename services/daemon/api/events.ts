// The events stream (/api/v1/events): vault state, app state, job progress and health changes,
// pushed to signed-in portals over a WebSocket (the ws library does the framing).
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../../common/logger.js';
import type { SessionStore } from '../auth/sessions.js';
import { sessionIdOf } from './routes.js';

export interface DeviceEvent {
  type: string;
  at: string;
  data: unknown;
}

type Listener = (event: DeviceEvent) => void;

export class EventHub {
  private readonly listeners = new Set<Listener>();

  constructor(private readonly now: () => number) {}

  publish(type: string, data: unknown): void {
    const event = { type, at: new Date(this.now()).toISOString(), data };
    for (const listener of this.listeners) listener(event);
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export interface EventStreamOptions {
  hub: EventHub;
  sessions: SessionStore;
  logger: Logger;
  /** A client that has not answered a ping by the next one is gone. */
  pingIntervalMs?: number;
  /** A client this far behind is dropped rather than buffered without end. */
  maxBufferedBytes?: number;
}

export const EVENTS_PATH = '/api/v1/events';

export class EventStream {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  private readonly alive = new WeakSet<WebSocket>();
  private pinger: NodeJS.Timeout | undefined;

  constructor(private readonly options: EventStreamOptions) {}

  /** For the HTTP server's 'upgrade' event. */
  readonly handleUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    const refuse = (status: number, reason: string) => {
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    };
    if (new URL(req.url ?? '/', 'http://x').pathname !== EVENTS_PATH) return refuse(404, 'Not Found');
    if (!this.options.sessions.get(sessionIdOf(req))) return refuse(401, 'Unauthorized');
    // Cookies ride along with cross-site WebSocket requests: only our own pages may connect.
    const origin = req.headers.origin;
    if (origin && new URL(origin).host !== req.headers.host) return refuse(403, 'Forbidden');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.attach(ws));
  };

  start(): void {
    this.pinger = setInterval(() => {
      for (const ws of this.wss.clients) {
        if (!this.alive.has(ws)) {
          ws.terminate();
          continue;
        }
        this.alive.delete(ws);
        ws.ping();
      }
    }, this.options.pingIntervalMs ?? 30_000);
  }

  stop(): void {
    clearInterval(this.pinger);
    for (const ws of this.wss.clients) ws.close(1001, 'daemon stopping');
  }

  private attach(ws: WebSocket): void {
    const limit = this.options.maxBufferedBytes ?? 1 << 20;
    this.alive.add(ws);
    ws.on('pong', () => this.alive.add(ws));
    const unsubscribe = this.options.hub.subscribe((event) => {
      if (ws.bufferedAmount > limit) return ws.terminate();
      ws.send(JSON.stringify(event));
    });
    ws.on('close', unsubscribe);
    ws.on('error', (err) => this.options.logger.debug('events client error', { err }));
  }
}
