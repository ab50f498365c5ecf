// One end-user connection multiplexed onto a backend session, with the server's credit rules (§3):
// reverse (backend → user) frames queue at most clientQueueLimit deep and are replenished every
// replenishBatch frames written; forward (user → backend) frames are unlimited until the backend's
// first grant, then take one token each, and a user starved of tokens for the idle timeout is dropped.
import type net from 'node:net';
import { MAX_DATA_PAYLOAD } from '../tunnel/protocol.js';
import { ForwardCredits, Replenisher } from './credits.js';

/** How long a user may still read after the backend ended its side (internal/netutil/graceful.go). */
export const HALF_CLOSE_GRACE_MS = 2000;

export interface StreamLimits {
  enforceCredits: boolean;
  clientQueueLimit: number;
  /** 0: never replenish. */
  replenishBatch: number;
  /** Idle user (nothing read or written), and also the starved-forwarding limit; 0 disables idling. */
  idleTimeoutMs: number;
}

/** What a stream needs from its session. */
export interface StreamLink {
  sendData(clientId: string, payload: Buffer): void;
  sendCredits(clientId: string, credits: number): void;
  /** The WebSocket has too much unsent: wait for pump() to be called again once it drains. */
  congested(): boolean;
  /** The relay ends the stream: send `disconnect` and forget it. */
  disconnect(clientId: string, why: string): void;
}

/** Forwarding with no grant, when the server's idle timeout is 0 (backend.go). */
const STARVED_DEFAULT_MS = 30_000;

/** What a session holds per client id: a TCP stream (UserStream) or a UDP flow. */
export interface RelayStream {
  /** DATA from the backend. */
  toUser(payload: Buffer): void;
  /** resume_stream from the backend: a grant when it carries credits, and always a resume. */
  resume(credits: unknown): void;
  /** Legacy pause_stream. */
  pause(): void;
  /** Forward again what waited (the WebSocket drained). */
  pump(): void;
  /** The backend ended it (disconnect) or went away. */
  closeGracefully(): void;
  /** The relay ends it at once. */
  destroy(): void;
}

export class UserStream implements RelayStream {
  private readonly forward: ForwardCredits;
  private readonly replenisher: Replenisher;
  private readonly pendingForward: Buffer[] = [];
  private pausedByBackend = false;
  private starvedTimer: NodeJS.Timeout | undefined;
  /** Frames handed to the user socket and not yet flushed. */
  private queuedToUser = 0;
  private ended = false;

  constructor(
    readonly id: string,
    private readonly socket: net.Socket,
    private readonly link: StreamLink,
    private readonly limits: StreamLimits,
  ) {
    this.forward = new ForwardCredits(limits.enforceCredits);
    this.replenisher = new Replenisher(limits.replenishBatch, (credits) => link.sendCredits(id, credits));
  }

  /** Starts relaying after the connect message and the prelude went out. */
  start(): void {
    this.socket.on('data', (chunk: Buffer) => this.fromUser(chunk));
    this.socket.on('end', () => this.link.disconnect(this.id, 'user sent FIN'));
    this.socket.on('close', () => this.link.disconnect(this.id, 'user connection closed'));
    if (this.limits.idleTimeoutMs > 0) {
      this.socket.setTimeout(this.limits.idleTimeoutMs, () => this.link.disconnect(this.id, 'user idle'));
    }
    // A FIN that came with the sniffed bytes: there is nothing more to read.
    if (this.socket.readableEnded) this.link.disconnect(this.id, 'user sent FIN');
    else this.socket.resume();
  }

  toUser(payload: Buffer): void {
    if (this.ended) return;
    this.queuedToUser++;
    this.socket.write(payload, (err) => this.written(err));
    if (this.limits.enforceCredits && this.queuedToUser > this.limits.clientQueueLimit) {
      this.link.disconnect(this.id, `backend overran the ${this.limits.clientQueueLimit}-frame client queue`);
    }
  }

  resume(credits: unknown): void {
    this.forward.grant(credits);
    this.pausedByBackend = false;
    this.pump();
  }

  /** Stops reading the user until any resume_stream. */
  pause(): void {
    this.pausedByBackend = true;
    this.socket.pause();
  }

  /** The backend sent `disconnect`: flush, half-close the user, close fully after the grace. */
  closeGracefully(): void {
    if (this.end() || this.socket.destroyed) return;
    this.socket.end();
    // The user may still read what was flushed; what it sends now is discarded.
    this.socket.resume();
    const timer = setTimeout(() => this.socket.destroy(), HALF_CLOSE_GRACE_MS);
    this.socket.once('close', () => clearTimeout(timer));
  }

  /** The relay ends the stream at once (overflow, idle, user gone, relay stopping). */
  destroy(): void {
    this.end();
    this.socket.destroy();
  }

  /** Marks the stream ended; true if it already was. */
  private end(): boolean {
    if (this.ended) return true;
    this.ended = true;
    clearTimeout(this.starvedTimer);
    this.pendingForward.length = 0;
    this.socket.setTimeout(0);
    return false;
  }

  private fromUser(chunk: Buffer): void {
    if (this.ended) return;
    for (let offset = 0; offset < chunk.length; offset += MAX_DATA_PAYLOAD) this.pendingForward.push(chunk.subarray(offset, offset + MAX_DATA_PAYLOAD));
    this.pump();
  }

  /** Forwards what the user sent as far as credits, pauses and the WebSocket allow. */
  pump(): void {
    if (this.ended) return;
    while (this.pendingForward.length && !this.pausedByBackend && this.forward.available && !this.link.congested()) {
      this.link.sendData(this.id, this.pendingForward.shift()!);
      this.forward.take();
    }
    clearTimeout(this.starvedTimer);
    this.starvedTimer = undefined;
    if (!this.pendingForward.length && !this.pausedByBackend) {
      this.socket.resume();
      return;
    }
    this.socket.pause();
    // Only a stream starved of credits runs the clock; a paused one or a full WebSocket does not.
    if (!this.pausedByBackend && !this.forward.available) {
      this.starvedTimer = setTimeout(() => this.link.disconnect(this.id, 'no forward credits within the idle timeout'), this.limits.idleTimeoutMs || STARVED_DEFAULT_MS);
    }
  }

  private written(err: Error | null | undefined): void {
    this.queuedToUser--;
    if (!err && !this.ended) this.replenisher.deliveredOne();
  }
}
