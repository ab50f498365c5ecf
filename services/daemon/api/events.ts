// The events stream (/api/v1/events): vault state, app state, job progress and health changes,
// pushed to signed-in portals over a WebSocket (the ws library does the framing).
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../../common/logger.js';
import type { SessionStore } from '../auth/sessions.js';
import { gateUpgrade, refuseUpgrade } from './upgrades.js';

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
  /** Each client's session: its sockets close when it ends (logout, lock, expiry). */
  private readonly sessionOf = new Map<WebSocket, string>();
  private pinger: NodeJS.Timeout | undefined;
  private stopFollowingSessions: (() => void) | undefined;

  constructor(private readonly options: EventStreamOptions) {}

  /** For the upgrade router (api/upgrades.ts), on EVENTS_PATH. Read-only: no CSRF token needed. */
  readonly handleUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    const gate = gateUpgrade(req, this.options.sessions, { csrf: false });
    if ('status' in gate) return refuseUpgrade(socket, gate.status, gate.reason);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.attach(ws, gate.session.id));
  };

  start(): void {
    this.stopFollowingSessions = this.options.sessions.onEnd((session) => {
      for (const [ws, id] of this.sessionOf) if (id === session.id) ws.close(4401, 'signed out');
    });
    this.pinger = setInterval(() => {
      for (const ws of this.wss.clients) {
        // An expired session is only noticed when asked about: ask, without counting as activity.
        if (!this.options.sessions.peek(this.sessionOf.get(ws))) {
          ws.close(4401, 'signed out');
          continue;
        }
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
    this.stopFollowingSessions?.();
    for (const ws of this.wss.clients) ws.close(1001, 'daemon stopping');
  }

  private attach(ws: WebSocket, sessionId: string): void {
    const limit = this.options.maxBufferedBytes ?? 1 << 20;
    this.alive.add(ws);
    this.sessionOf.set(ws, sessionId);
    ws.on('pong', () => this.alive.add(ws));
    const unsubscribe = this.options.hub.subscribe((event) => {
      if (ws.bufferedAmount > limit) return ws.terminate();
      ws.send(JSON.stringify(event));
    });
    ws.on('close', () => {
      unsubscribe();
      this.sessionOf.delete(ws);
    });
    ws.on('error', (err) => this.options.logger.debug('events client error', { err }));
  }
}
