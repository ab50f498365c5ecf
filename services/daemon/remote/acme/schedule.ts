// When to renew a certificate and how long to wait after a failed attempt. Pure functions of
// their inputs, so the schedule is tested with an injected clock and random source.

/** Renew at 2/3 of the lifetime: a 90-day certificate renews with 30 days left. */
export function renewalTime(notBefore: number, notAfter: number): number {
  return notBefore + Math.floor(((notAfter - notBefore) * 2) / 3);
}

export interface BackoffPolicy {
  /** The first retry waits between minMs/2 and minMs. */
  minMs: number;
  /** No wait is longer than this, except one the ACME server asked for. */
  maxMs: number;
}

/** One minute, doubling, at most three hours: well below Let's Encrypt's failed-validation limit. */
export const DEFAULT_BACKOFF: BackoffPolicy = { minMs: 60_000, maxMs: 3 * 3600_000 };

/**
 * The wait before retry number `failures` (1 after the first failure): exponential, capped, with
 * jitter in its upper half (so that it never drops near zero), and never shorter than a rate
 * limit's Retry-After.
 */
export function retryDelay(failures: number, policy: BackoffPolicy, random: () => number, retryAfterMs = 0): number {
  const ceiling = Math.min(policy.maxMs, policy.minMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
  const jittered = Math.round(ceiling / 2 + (ceiling / 2) * random());
  return Math.max(jittered, retryAfterMs);
}
