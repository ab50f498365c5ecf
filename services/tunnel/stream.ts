// One end-user connection multiplexed on the relay session (§2.5, §3 of the protocol note).
// The stream exists from `connect` on, before its local dial completes: data that arrives
// meanwhile is kept and written first, in order. Each direction is credit-gated on its own, so a
// slow local reader or a stingy relay holds back only this stream: when no credit is left the
// local socket is paused (TCP backpressure) instead of queueing without bound.
import type { Duplex } from 'node:stream';
import type { Logger } from '../common/logger.js';
import { ForwardGrants, SendWindow } from './credits.js';
import { CREDIT_WINDOW, MAX_DATA_PAYLOAD, type ControlMessage, type DisconnectReason } from './protocol.js';

/** What a stream needs from its session. */
export interface StreamHost {
  sendControl(message: ControlMessage): void;
  sendData(clientId: string, payload: Buffer): void;
  /** False while the WebSocket's own send buffer is full: keep frames queued until resumeAll. */
  canSendData(): boolean;
  /** The stream is over (it said so, or the relay did); forget its id. */
  streamEnded(clientId: string): void;
  /** A local socket still flushing after the stream ended: the session destroys it if it ends first. */
  lingering(socket: Duplex): void;
  readonly counters: { bytesIn: number; bytesOut: number };
}

export interface StreamOptions {
  clientId: string;
  /** connect.credits: the reverse window; absent or 0 means unlimited. */
  initialCredits: unknown;
  host: StreamHost;
  logger: Logger;
  /** How long queued frames may wait for credits after local EOF before we give up on them. */
  drainTimeoutMs: number;
  /** After the relay's disconnect, how long the local peer has to read what we flushed. */
  closeGraceMs: number;
}

type StreamState = 'dialing' | 'open' | 'closed';

/**
 * Relay → local frames we hold (while dialing, or not yet flushed) before calling it an overrun.
 * Far above the window: frames the relay sends before our first grant lands cost no credit (§3),
 * and a fast uploader can put hundreds in that round trip.
 */
const MAX_PENDING_FRAMES = 16 * CREDIT_WINDOW;
/**
 * Local → relay frames read ahead while out of credit before the local socket is paused: enough
 * to see a short reply's EOF (and start the drain) without credit, small enough to keep memory
 * per stalled stream bounded (8 × 32 KiB).
 */
const READ_AHEAD_FRAMES = 8;

export class Stream {
  readonly clientId: string;
  private state: StreamState = 'dialing';
  private local: Duplex | undefined;
  /** Relay → local frames that came while dialing. */
  private pending: Buffer[] = [];
  /** Relay → local frames handed to the socket and not yet flushed (no grant for them yet). */
  private unflushed = 0;
  /** Local → relay payloads waiting for credit or for WebSocket room. */
  private queue: Buffer[] = [];
  private readonly window: SendWindow;
  private readonly grants = new ForwardGrants();
  private localEnded: DisconnectReason | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  /** What the relay sent before it ended the stream while we were still dialing. */
  private undelivered: Buffer[] | undefined;
  /** Last DATA either way (ms), and when an unanswered ping_client went out. */
  private lastActive = Date.now();
  private pingedAt: number | undefined;

  constructor(private readonly options: StreamOptions) {
    this.clientId = options.clientId;
    this.window = new SendWindow(options.initialCredits);
  }

  /** Takes the dial's outcome; the session calls this once. */
  attach(dial: Promise<Duplex>): void {
    dial.then(
      (socket) => {
        if (this.state !== 'closed') return this.open(socket);
        // The relay ended the stream while we dialed: deliver what it sent, then close.
        if (this.undelivered) return this.flushAndClose(socket, this.undelivered);
        socket.destroy();
      },
      (err: Error) => {
        if (this.state === 'closed') return;
        this.options.logger.warn('local dial failed', { clientId: this.clientId, err });
        // Only disconnect: nothing was read, so no DATA may go out for this id.
        this.finish('dial_failed');
      },
    );
  }

  /** A DATA frame from the relay. */
  fromRelay(payload: Buffer): void {
    if (this.state === 'closed') return;
    this.lastActive = Date.now();
    this.options.host.counters.bytesIn += payload.length;
    if (this.state === 'dialing') {
      this.pending.push(payload);
      if (this.pending.length > MAX_PENDING_FRAMES) this.overrun();
      return;
    }
    this.writeLocal(payload);
  }

  /** resume_stream: the relay has room for more of our DATA. */
  grant(credits: unknown): void {
    if (this.state === 'closed') return;
    this.window.grant(credits);
    this.pump();
  }

  /** The WebSocket drained: try the queue again. */
  resume(): void {
    if (this.state !== 'closed') this.pump();
  }

  /** The relay's disconnect: deliver what came, close the local socket, send nothing more. */
  closedByRelay(): void {
    if (this.state === 'closed') return;
    const socket = this.local;
    const pending = this.pending;
    this.end();
    if (socket) this.flushAndClose(socket, []);
    else this.undelivered = pending;
  }

  /** The session is gone: every id is void, no disconnect goes out (§2.5). */
  abort(): void {
    if (this.state === 'closed') return;
    const socket = this.local;
    this.end();
    socket?.destroy();
  }

  /** The idle scan: ping a quiet stream; close one whose ping went unanswered. */
  checkIdle(now: number, idleMs: number, pongTimeoutMs: number): void {
    if (this.state !== 'open') return;
    if (this.pingedAt !== undefined) {
      if (now - this.pingedAt >= pongTimeoutMs) this.finish('timeout');
    } else if (now - this.lastActive >= idleMs) {
      this.pingedAt = now;
      this.options.host.sendControl({ event: 'ping_client', client_id: this.clientId });
    }
  }

  /** pong_client: the relay still knows this stream. */
  ponged(): void {
    this.pingedAt = undefined;
    this.lastActive = Date.now();
  }

  private flushAndClose(socket: Duplex, payloads: Buffer[]): void {
    this.undelivered = undefined;
    for (const payload of payloads) socket.write(payload);
    socket.end();
    // A local peer that never closes its side must not keep the socket forever.
    const timer = setTimeout(() => socket.destroy(), this.options.closeGraceMs);
    socket.once('close', () => clearTimeout(timer));
    socket.on('error', () => {});
    this.options.host.lingering(socket);
  }

  private open(socket: Duplex): void {
    this.state = 'open';
    this.local = socket;
    socket.on('data', (chunk: Buffer) => this.fromLocal(chunk));
    socket.on('end', () => this.localDone('normal'));
    socket.on('error', (err) => {
      this.options.logger.debug('local socket error', { clientId: this.clientId, err });
      this.localDone('local_error');
    });
    socket.on('close', () => this.localDone('normal'));
    for (const payload of this.pending) this.writeLocal(payload);
    this.pending = [];
  }

  private writeLocal(payload: Buffer): void {
    const socket = this.local!;
    if (socket.destroyed || socket.writableEnded) return;
    this.unflushed++;
    if (this.unflushed > MAX_PENDING_FRAMES) return this.overrun();
    // Grants follow what the local socket actually took, so a stalled reader stops the relay at the window.
    socket.write(payload, (err) => {
      this.unflushed--;
      if (err || this.state === 'closed') return;
      const credits = this.grants.frameWritten();
      if (credits) this.options.host.sendControl({ event: 'resume_stream', client_id: this.clientId, credits });
    });
  }

  private fromLocal(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.lastActive = Date.now();
    for (let offset = 0; offset < chunk.length; offset += MAX_DATA_PAYLOAD) this.queue.push(chunk.subarray(offset, offset + MAX_DATA_PAYLOAD));
    this.pump();
  }

  private localDone(reason: DisconnectReason): void {
    if (this.state === 'closed' || this.localEnded) return;
    this.localEnded = reason;
    if (this.queue.length) this.drainTimer = setTimeout(() => this.giveUpDrain(), this.options.drainTimeoutMs);
    this.pump();
  }

  private pump(): void {
    const { host } = this.options;
    while (this.queue.length && this.window.canSend() && host.canSendData()) {
      const payload = this.queue.shift()!;
      this.window.take();
      host.counters.bytesOut += payload.length;
      host.sendData(this.clientId, payload);
    }
    if (this.localEnded) {
      if (!this.queue.length) this.finish(this.localEnded);
      return;
    }
    // Backpressure: stop reading once the read-ahead is full; the kernel's window then holds the sender back.
    if (this.queue.length >= READ_AHEAD_FRAMES) this.local?.pause();
    else this.local?.resume();
  }

  private giveUpDrain(): void {
    this.options.logger.warn('queued data never got credits; dropping it', { clientId: this.clientId, frames: this.queue.length });
    this.finish(this.localEnded ?? 'timeout');
  }

  /** The relay sent more than the window allows. */
  private overrun(): void {
    this.options.logger.warn('relay overran the stream window', { clientId: this.clientId });
    this.finish('buffer_full');
  }

  /** Our side ends the stream: disconnect is the last message for this id. */
  private finish(reason: DisconnectReason): void {
    if (this.state === 'closed') return;
    const socket = this.local;
    this.end();
    socket?.destroy();
    this.options.host.sendControl({ event: 'disconnect', client_id: this.clientId, reason });
  }

  private end(): void {
    this.state = 'closed';
    this.queue = [];
    this.pending = [];
    clearTimeout(this.drainTimer);
    this.options.host.streamEnded(this.clientId);
  }
}
