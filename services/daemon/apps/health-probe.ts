// The apps' HTTP healthchecks, polled by the daemon over each app's host-bind port (the engine's
// own healthcheck would need a probe binary inside every image). An app is degraded once its
// check has failed `retries` times in a row, and healthy again at the first success.
export type AppHealth = 'ok' | 'degraded' | 'unknown';

export interface HealthTarget {
  app: string;
  url: string;
  timeoutMs: number;
  retries: number;
}

export interface HealthVerdict {
  health: AppHealth;
  reason?: string;
}

export class HealthProbe {
  private readonly failures = new Map<string, { count: number; last: string }>();
  private readonly verdicts = new Map<string, HealthVerdict>();

  /** Probes every target once; calls onChange for each app whose verdict changed. */
  async round(targets: readonly HealthTarget[], onChange: (app: string, verdict: HealthVerdict) => void): Promise<void> {
    const probed = new Set(targets.map((target) => target.app));
    for (const app of [...this.verdicts.keys()]) {
      // Stopped or uninstalled: no verdict rather than a stale one.
      if (!probed.has(app)) this.forget(app);
    }
    await Promise.all(
      targets.map(async (target) => {
        const problem = await probe(target);
        const failed = problem ? { count: (this.failures.get(target.app)?.count ?? 0) + 1, last: problem } : undefined;
        if (failed) this.failures.set(target.app, failed);
        else this.failures.delete(target.app);
        const verdict: HealthVerdict = !failed
          ? { health: 'ok' }
          : failed.count >= target.retries
            ? { health: 'degraded', reason: `healthcheck ${target.url} failing: ${failed.last}` }
            : (this.verdicts.get(target.app) ?? { health: 'unknown' });
        const previous = this.verdicts.get(target.app);
        this.verdicts.set(target.app, verdict);
        if (previous?.health !== verdict.health || previous.reason !== verdict.reason) onChange(target.app, verdict);
      }),
    );
  }

  verdict(app: string): HealthVerdict {
    return this.verdicts.get(app) ?? { health: 'unknown' };
  }

  forget(app: string): void {
    this.failures.delete(app);
    this.verdicts.delete(app);
  }
}

function probe(target: HealthTarget): Promise<string | undefined> {
  return probeOnce(target.url, target.timeoutMs);
}

/** Undefined when the app answered 2xx or 3xx in time, else what went wrong. */
export async function probeOnce(url: string, timeoutMs: number): Promise<string | undefined> {
  try {
    const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.status < 400 ? undefined : `answered ${res.status}`;
  } catch (err) {
    return (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message;
  }
}
