// Retry delays for a link that keeps failing: exponential with jitter (so restarted peers do not
// retry in step), capped, and forgotten only once the link has stayed up for a while — a link
// that flaps every second must not retry at the first, shortest delay forever.
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** A link up at least this long counts as stable: the next failure starts from initialMs again. */
  stableMs: number;
  /**
   * full: anywhere in [0, ceiling] (spreads a crowd of clients best; a relay restart must not get
   * them all back at once). equal: [ceiling/2, ceiling], so a retry never comes at once.
   */
  jitter?: 'full' | 'equal';
  now?: () => number;
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private upSince: number | undefined;

  constructor(private readonly options: BackoffOptions) {}

  /** The link works (a call succeeded, a session opened). */
  succeeded(): void {
    this.upSince ??= this.now();
  }

  /** The link failed: how long to wait before the next try. */
  failed(): number {
    if (this.upSince !== undefined && this.now() - this.upSince >= this.options.stableMs) this.attempt = 0;
    this.upSince = undefined;
    const ceiling = Math.min(this.options.maxMs, this.options.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    const random = (this.options.random ?? Math.random)();
    return Math.round(this.options.jitter === 'full' ? random * ceiling : ceiling / 2 + (random * ceiling) / 2);
  }

  /** Starts over from initialMs (the link's configuration changed: old failures say nothing about it). */
  reset(): void {
    this.attempt = 0;
    this.upSince = undefined;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}
