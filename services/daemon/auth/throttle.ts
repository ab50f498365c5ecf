// Slows down guessing: after a few free failures, each further failure doubles the wait before the
// next attempt, per client address and, with a higher allowance, across all clients at once
// (a distributed guesser gets slowed too). Pure apart from the injected clock.
import { TooManyRequestsError } from '../../common/errors.js';

export interface ThrottleOptions {
  now: () => number;
  /** Failures a client may make before it has to wait. */
  freeFailures?: number;
  /** Failures all clients together may make before everyone has to wait. */
  globalFreeFailures?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** A quiet period after which failures are forgotten. */
  forgetAfterMs?: number;
}

interface Record {
  failures: number;
  blockedUntil: number;
  lastFailure: number;
}

const GLOBAL = '*';

export class AttemptThrottle {
  private readonly records = new Map<string, Record>();
  private readonly opts: Required<ThrottleOptions>;

  constructor(options: ThrottleOptions) {
    this.opts = { freeFailures: 3, globalFreeFailures: 30, baseDelayMs: 1000, maxDelayMs: 15 * 60_000, forgetAfterMs: 60 * 60_000, ...options };
  }

  /** Throws a 429 with Retry-After when this client (or everyone) must still wait. */
  check(client: string): void {
    const now = this.opts.now();
    const waitMs = Math.max(this.remaining(client, now), this.remaining(GLOBAL, now));
    if (waitMs > 0) throw new TooManyRequestsError(Math.ceil(waitMs / 1000));
  }

  failure(client: string): void {
    const now = this.opts.now();
    this.bump(client, this.opts.freeFailures, now);
    this.bump(GLOBAL, this.opts.globalFreeFailures, now);
  }

  success(client: string): void {
    this.records.delete(client);
  }

  private remaining(key: string, now: number): number {
    const record = this.current(key, now);
    return record ? record.blockedUntil - now : 0;
  }

  private current(key: string, now: number): Record | undefined {
    const record = this.records.get(key);
    if (record && now - record.lastFailure > this.opts.forgetAfterMs) {
      this.records.delete(key);
      return undefined;
    }
    return record;
  }

  private bump(key: string, free: number, now: number): void {
    const record = this.current(key, now) ?? { failures: 0, blockedUntil: 0, lastFailure: now };
    record.failures++;
    record.lastFailure = now;
    const over = record.failures - free;
    if (over > 0) record.blockedUntil = now + Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** (over - 1));
    this.records.set(key, record);
  }
}
