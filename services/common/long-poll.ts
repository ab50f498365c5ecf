// Keeps a table from the daemon current: long-polls for the next rev and hands each new table to
// onTable. The daemon may restart at any time; the caller then keeps the last table and this
// retries with backoff. stop() cancels the poll in flight and any wait. The proxy's route table
// and the tunnel's remote table both come this way.
import { Backoff } from './backoff.js';
import type { Module } from './lifecycle.js';
import type { Logger } from './logger.js';

/** Whether the daemon answers; down only after graceMs of failures. */
export type LinkState = { up: true } | { up: false; reason: string };

export interface LongPollOptions<T extends { rev: number }> {
  name: string;
  /** What is fetched, for logs and link-state reasons ("route table"). */
  what: string;
  /** The current table (afterRev undefined) or the next one after afterRev. */
  fetch: (afterRev: number | undefined, signal: AbortSignal) => Promise<T>;
  logger: Logger;
  onTable: (table: T) => Promise<void>;
  /** Called when the link to the daemon goes down for longer than a daemon restart takes, and when it is back. */
  onLinkState: (state: LinkState) => void;
  /** Runs after the loop ended in stop(): release connections. */
  close?: () => void;
  backoff?: Backoff;
  /** How long failures may last before onLinkState hears of them. */
  graceMs?: number;
}

export class LongPoll<T extends { rev: number }> implements Module {
  readonly name: string;
  private readonly abort = new AbortController();
  private readonly backoff: Backoff;
  private rev: number | undefined;
  private loop: Promise<void> | undefined;
  private failingSince: number | undefined;
  private reportedDown = false;

  constructor(private readonly options: LongPollOptions<T>) {
    this.name = options.name;
    this.backoff = options.backoff ?? new Backoff({ initialMs: 100, maxMs: 10_000, stableMs: 30_000 });
  }

  /** Tries once so that a reachable daemon's table is applied before READY, then polls in the background. */
  async start(): Promise<void> {
    await this.poll();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    this.options.close?.();
  }

  private async run(): Promise<void> {
    while (!this.abort.signal.aborted) {
      const ok = await this.poll();
      if (!ok && !this.abort.signal.aborted) await sleep(this.backoff.failed(), this.abort.signal);
    }
  }

  private async poll(): Promise<boolean> {
    try {
      const table = await this.options.fetch(this.rev, this.abort.signal);
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
    if (this.failingSince !== undefined) this.options.logger.info(`${this.options.what} link restored`);
    this.failingSince = undefined;
    if (this.reportedDown) this.options.onLinkState({ up: true });
    this.reportedDown = false;
  }

  private linkDown(err: Error): void {
    const now = Date.now();
    if (this.failingSince === undefined) {
      this.failingSince = now;
      this.options.logger.warn(`cannot fetch the ${this.options.what}; keeping the last one`, { err, rev: this.rev });
    }
    if (!this.reportedDown && now - this.failingSince >= (this.options.graceMs ?? 15_000)) {
      this.reportedDown = true;
      this.options.onLinkState({ up: false, reason: `no ${this.options.what} from the daemon: ${err.message}` });
    }
  }
}

/** Waits ms, or less when signal aborts; never rejects. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
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
