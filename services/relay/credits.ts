// The server's per-stream credit rules (§3), shared by TCP streams and UDP flows.
import { CREDIT_WINDOW, clampCredits } from '../tunnel/protocol.js';

/** Forward (relay → backend): unlimited until the backend's first grant, then max(grant, 64) tokens (backend.go:500,841). */
export class ForwardCredits {
  /** Undefined until the first grant. */
  private tokens: number | undefined;
  private capacity = 0;

  constructor(private readonly enforced: boolean) {}

  /** resume_stream's credits; 0 or absent (a legacy resume) grants nothing. */
  grant(credits: unknown): void {
    const grant = clampCredits(credits);
    if (grant === 0) return;
    if (this.tokens === undefined) {
      this.capacity = Math.max(grant, CREDIT_WINDOW);
      this.tokens = grant;
    } else {
      this.tokens = Math.min(this.capacity, this.tokens + grant);
    }
  }

  get available(): boolean {
    return !this.enforced || this.tokens === undefined || this.tokens > 0;
  }

  take(): void {
    if (this.tokens !== undefined) this.tokens--;
  }
}

/** Reverse (backend → user): after every `batch` frames delivered to the user, grant that many back; 0 = never. */
export class Replenisher {
  private delivered = 0;

  constructor(
    private readonly batch: number,
    private readonly grant: (credits: number) => void,
  ) {}

  deliveredOne(): void {
    if (this.batch <= 0 || ++this.delivered < this.batch) return;
    this.grant(this.delivered);
    this.delivered = 0;
  }
}
