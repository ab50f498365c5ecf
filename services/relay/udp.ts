// UDP relay ports (§2.7): a flow is one user address on one port; its first datagram announces it
// (connect, transport udp, hostname udp:N), each datagram is one DATA frame, each backend frame one
// datagram. Flows expire when the user has sent nothing for their idle timeout.
//
// One difference from Nexus, on purpose: a flow out of forward credits drops the user's datagrams
// (logged) instead of stalling the whole port's read loop for up to the idle timeout.
import type dgram from 'node:dgram';
import { ForwardCredits, Replenisher } from './credits.js';
import type { RelayStream, StreamLink } from './user-stream.js';

/** udpMaxDatagramBytes's default: larger datagrams are dropped, larger backend frames end the flow. */
export const UDP_MAX_DATAGRAM_BYTES = 2048;

export interface FlowLimits {
  enforceCredits: boolean;
  replenishBatch: number;
  idleMs: number;
  maxDatagramBytes: number;
}

export class UdpFlow implements RelayStream {
  private readonly forward: ForwardCredits;
  private readonly replenisher: Replenisher;
  private lastHeard = Date.now();
  private paused = false;
  ended = false;

  constructor(
    readonly id: string,
    private readonly socket: dgram.Socket,
    private readonly peer: { address: string; port: number },
    private readonly link: StreamLink,
    private readonly limits: FlowLimits,
  ) {
    this.forward = new ForwardCredits(limits.enforceCredits);
    this.replenisher = new Replenisher(limits.replenishBatch, (credits) => link.sendCredits(id, credits));
  }

  /** A datagram from the user; false when it was dropped. */
  fromUser(datagram: Buffer): boolean {
    this.lastHeard = Date.now();
    if (this.ended || this.paused || !this.forward.available || datagram.length > this.limits.maxDatagramBytes) return false;
    this.forward.take();
    this.link.sendData(this.id, datagram);
    return true;
  }

  /** Ends the flow with disconnect if the user has sent nothing for its idle timeout (backend datagrams do not count). */
  sweep(now: number): void {
    if (!this.ended && now - this.lastHeard > this.limits.idleMs) this.link.disconnect(this.id, 'udp flow idle');
  }

  toUser(payload: Buffer): void {
    if (this.ended) return;
    if (payload.length > this.limits.maxDatagramBytes) return this.link.disconnect(this.id, 'backend datagram over the size limit');
    this.socket.send(payload, this.peer.port, this.peer.address, (err) => err || this.ended || this.replenisher.deliveredOne());
  }

  resume(credits: unknown): void {
    this.forward.grant(credits);
    this.paused = false;
  }

  pause(): void {
    this.paused = true;
  }

  /** Datagrams are never queued: nothing waits for the WebSocket. */
  pump(): void {}

  closeGracefully(): void {
    this.ended = true;
  }

  destroy(): void {
    this.ended = true;
  }
}
