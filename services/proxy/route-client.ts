// Keeps the proxy's route table current: long-polls the daemon for the next rev and hands each
// new table to onTable. The daemon may restart at any time; the proxy then keeps serving the last
// table and retries with backoff. stop() cancels the poll in flight and any wait.
import type { Module } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import type { RouteTable } from '../common/route-table.js';
import { Backoff } from './backoff.js';
import type { DaemonClient } from './daemon-client.js';

export interface RouteClientOptions {
  daemon: DaemonClient;
  logger: Logger;
  onTable: (table: RouteTable) => Promise<void>;
  /** Called when the link to the daemon goes down for longer than a daemon restart takes, and when it is back. */
  onLinkState: (state: { up: true } | { up: false; reason: string }) => void;
  backoff?: Backoff;
  /** How long failures may last before onLinkState hears of them. */
  graceMs?: number;
}

export class RouteClient implements Module {
  readonly name = 'route-client';
  private readonly abort = new AbortController();
  private readonly backoff: Backoff;
  private rev: number | undefined;
  private loop: Promise<void> | undefined;
  private failingSince: number | undefined;
  private reportedDown = false;

  constructor(private readonly options: RouteClientOptions) {
    this.backoff = options.backoff ?? new Backoff({ initialMs: 100, maxMs: 10_000, stableMs: 30_000 });
  }

  /** Tries once so that a reachable daemon's table is served before READY, then polls in the background. */
  async start(): Promise<void> {
    await this.poll();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    this.options.daemon.close();
  }

  private async run(): Promise<void> {
    while (!this.abort.signal.aborted) {
      const ok = await this.poll();
      if (!ok && !this.abort.signal.aborted) await sleep(this.backoff.failed(), this.abort.signal);
    }
  }

  private async poll(): Promise<boolean> {
    try {
      const table = await this.options.daemon.routes(this.rev, this.abort.signal);
      this.linkUp();
      if (table.rev !== this.rev) {
        await this.options.onTable(table);
        this.rev = table.rev;
      }
      return true;
    } catch (err) {
      if (this.abort.signal.aborted) return false;
      this.linkDown(err as Error);
      return false;
    }
  }

  private linkUp(): void {
    this.backoff.succeeded();
    if (this.failingSince !== undefined) this.options.logger.info('route table link restored');
    this.failingSince = undefined;
    if (this.reportedDown) this.options.onLinkState({ up: true });
    this.reportedDown = false;
  }

  private linkDown(err: Error): void {
    const now = Date.now();
    if (this.failingSince === undefined) {
      this.failingSince = now;
      this.options.logger.warn('cannot fetch the route table; serving the last one', { err, rev: this.rev });
    }
    if (!this.reportedDown && now - this.failingSince >= (this.options.graceMs ?? 15_000)) {
      this.reportedDown = true;
      this.options.onLinkState({ up: false, reason: `no route table from the daemon: ${err.message}` });
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}
