// An hour of CPU and memory per running app, for the app page's charts: every intervalMs the
// stats of each running app go into its own ring (capacity samples, oldest dropped). Memory
// only: a daemon restart starts the charts over, which is fine for a one-hour view. An app's
// history goes when the app does (its removal event, and any app no longer listed).
import type { Module } from '../../common/lifecycle.js';
import type { Logger } from '../../common/logger.js';
import type { DeviceEvent } from '../api/events.js';
import type { ContainerStats } from '../apps/engine.js';
import type { AppView } from '../apps/manager.js';
import { RingBuffer } from './ring-buffer.js';
import type { StatsHistoryView, StatsSample } from './types.js';

export const STATS_HISTORY = { intervalMs: 30_000, capacity: 120 };

export interface StatsSource {
  list(): Promise<Pick<AppView, 'name' | 'state'>[]>;
  stats(name: string): Promise<ContainerStats>;
}

export interface StatsHistoryOptions {
  /** The running app manager; throws while apps are unavailable (locked, starting): that beat is skipped. */
  apps: () => StatsSource;
  /** The events hub: an app-removed event drops the app's history at once. */
  events: { subscribe(listener: (event: DeviceEvent) => void): () => void };
  logger: Logger;
  intervalMs?: number;
  capacity?: number;
  now?: () => number;
}

export class StatsHistory implements Module {
  readonly name = 'stats-history';
  readonly intervalMs: number;
  private readonly histories = new Map<string, RingBuffer<StatsSample>>();
  /** Apps removed during the current round: a stats answer still in flight for one must not bring its history back. */
  private readonly removedThisRound = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;

  constructor(private readonly options: StatsHistoryOptions) {
    this.intervalMs = options.intervalMs ?? STATS_HISTORY.intervalMs;
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.unsubscribe = this.options.events.subscribe((event) => {
      const data = event.data as { type?: string; app?: string } | null;
      if (data?.type === 'app-removed' && typeof data.app === 'string') this.forget(data.app);
    });
    this.timer = setInterval(() => {
      if (!this.inFlight) this.inFlight = this.tick().finally(() => (this.inFlight = undefined));
    }, this.intervalMs);
  }

  /** Cancels the timer; a round in progress stops before its next app. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.unsubscribe?.();
    await this.inFlight;
  }

  /** The samples of one app; the caller checks that the app exists (404 otherwise). */
  history(app: string): StatsHistoryView {
    return { intervalSeconds: this.intervalMs / 1000, samples: this.histories.get(app)?.toArray() ?? [] };
  }

  forget(app: string): void {
    this.histories.delete(app);
    this.removedThisRound.add(app);
  }

  /** One round over the running apps; public so tests need not wait for the timer. */
  async tick(): Promise<void> {
    this.removedThisRound.clear();
    let source: StatsSource;
    let apps: Pick<AppView, 'name' | 'state'>[];
    try {
      source = this.options.apps();
      apps = await source.list();
    } catch {
      return; // apps unavailable right now (locked, starting): nothing runs, nothing to record
    }
    const installed = new Set(apps.map((app) => app.name));
    for (const name of this.histories.keys()) if (!installed.has(name)) this.histories.delete(name);
    for (const app of apps) {
      if (this.stopped) return;
      if (app.state !== 'running') continue;
      try {
        this.record(app.name, await source.stats(app.name));
      } catch (err) {
        // Stopped between the list and the stats call, say: a gap in the chart, not an error.
        this.options.logger.debug('app stats sample skipped', { app: app.name, err });
      }
    }
  }

  private record(app: string, stats: ContainerStats): void {
    if (this.stopped || this.removedThisRound.has(app)) return;
    let ring = this.histories.get(app);
    if (!ring) this.histories.set(app, (ring = new RingBuffer(this.options.capacity ?? STATS_HISTORY.capacity)));
    const sample: StatsSample = { at: new Date((this.options.now ?? Date.now)()).toISOString(), cpuPercent: Math.round(stats.cpuPercent * 10) / 10, memoryBytes: stats.memoryBytes };
    if (stats.memoryLimitBytes !== undefined) sample.memoryLimitBytes = stats.memoryLimitBytes;
    ring.push(sample);
  }
}
