// Flow-control bookkeeping for one stream (§3 of the protocol note): credits count DATA frames,
// never bytes, separately in each direction.
import { CREDIT_BATCH, MAX_CREDITS, clampCredits } from './protocol.js';

/** Reverse direction (to the relay): how many DATA frames we may still send. */
export class SendWindow {
  /** connect carried no credits (or 0): the server is old and does not count. */
  readonly unlimited: boolean;
  private available: number;

  constructor(initialCredits: unknown) {
    this.available = clampCredits(initialCredits);
    this.unlimited = this.available === 0;
  }

  get credits(): number {
    return this.unlimited ? Infinity : this.available;
  }

  canSend(): boolean {
    return this.unlimited || this.available > 0;
  }

  /** One DATA frame sent. */
  take(): void {
    if (!this.unlimited) this.available--;
  }

  /** resume_stream{credits}: more frames allowed, never above the reference's cap. */
  grant(credits: unknown): void {
    this.available = Math.min(MAX_CREDITS, this.available + clampCredits(credits));
  }
}

/** Forward direction (from the relay): frames written to the local socket, granted back in batches. */
export class ForwardGrants {
  private written = 0;

  /** One frame reached the local socket; returns the credits to grant now (a batch), or 0. */
  frameWritten(): number {
    this.written++;
    if (this.written < CREDIT_BATCH) return 0;
    this.written = 0;
    return CREDIT_BATCH;
  }
}
