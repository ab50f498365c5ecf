// The engine's state as the app runtime last read it, kept fresh: Podman's event stream says when
// something of ours changed (a container stopped or removed behind the daemon's back, too) and the
// state is read back by labels at once; a periodic resync, and one after each reconnect of the
// stream, repairs whatever an event missed. Reads (the API, the dashboard, supervision) are
// answered from here instead of listing and inspecting every container on each request.
import { Backoff } from '../../common/backoff.js';
import type { Logger } from '../../common/logger.js';
import type { Engine, EngineEvent, EngineState } from './engine.js';

export interface LiveStateOptions {
  engine: Pick<Engine, 'state' | 'events'>;
  logger: Logger;
  now?: () => number;
  /** How often the state is read back anyway (default 30 s). */
  resyncMs?: number;
  /** Events within this time become one read (a start is create, init and start in a millisecond). */
  settleMs?: number;
  /** The event stream's reconnect delays. */
  reconnect?: { initialMs: number; maxMs: number };
}

/** Events that change nothing state() reports: execs (healthchecks, the terminal), attaches. */
const QUIET_ACTIONS = /^(exec|attach|detach|resize|top|mount|unmount|sync|copy|archive-path|extract-to-dir|export|commit)/;

export class LiveEngineState {
  private state: EngineState | undefined;
  /** Why the last read failed; cleared by the next good one. Reads fail with it meanwhile. */
  private failure: Error | undefined;
  private readAt = 0;
  private fingerprint = '';
  private inFlight: Promise<unknown> | undefined;
  private queued: Promise<EngineState> | undefined;
  private readonly listeners = new Set<() => void>();
  private abort: AbortController | undefined;
  private following: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  private counts = { reads: 0, events: 0, connections: 0 };

  constructor(private readonly options: LiveStateOptions) {}

  /** Reads the state once, then follows the events and resyncs until stop(). */
  async start(): Promise<void> {
    if (this.abort) return;
    const abort = (this.abort = new AbortController());
    await this.refresh().catch((err) => this.options.logger.warn('cannot read the engine state; retrying', { err }));
    this.following = this.follow(abort.signal);
    this.resyncTimer = setInterval(() => void this.refresh().catch(() => {}), this.options.resyncMs ?? 30_000);
  }

  async stop(): Promise<void> {
    this.abort?.abort();
    this.abort = undefined;
    clearInterval(this.resyncTimer);
    clearTimeout(this.settleTimer);
    this.settleTimer = undefined;
    await this.following;
    await this.inFlight;
  }

  /** The last read; throws what the engine said when the last read failed (or none was made yet). */
  current(): EngineState {
    if (this.failure || !this.state) throw this.failure ?? new Error('the engine state has not been read yet');
    return this.state;
  }

  /**
   * A read that starts after this call: after the runtime changed something itself, its next
   * answers must show it. Calls while a read is queued share that read.
   */
  refresh(): Promise<EngineState> {
    this.queued ??= (this.inFlight ?? Promise.resolve()).then(() => {
      this.queued = undefined;
      const read = this.read();
      this.inFlight = read.catch(() => {});
      return read;
    });
    return this.queued;
  }

  /** Called after each read that found something changed. Returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** For the logs and the bench: how much the engine was asked. */
  get stats(): { reads: number; events: number; connections: number; ageMs: number } {
    return { ...this.counts, ageMs: this.now() - this.readAt };
  }

  private async read(): Promise<EngineState> {
    this.counts.reads++;
    try {
      const state = await this.options.engine.state();
      this.state = state;
      this.failure = undefined;
      this.readAt = this.now();
      const fingerprint = JSON.stringify(state);
      if (fingerprint !== this.fingerprint) {
        this.fingerprint = fingerprint;
        this.changed();
      }
      return state;
    } catch (err) {
      const first = !this.failure;
      this.failure = err as Error;
      if (first) this.changed();
      throw err;
    }
  }

  private changed(): void {
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch (err) {
        this.options.logger.error('engine state listener failed', { err });
      }
    }
  }

  /** The event stream, reconnected with a growing, jittered delay; each (re)connect resyncs at once. */
  private async follow(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff({ initialMs: this.options.reconnect?.initialMs ?? 500, maxMs: this.options.reconnect?.maxMs ?? 30_000, stableMs: 60_000, jitter: 'equal', now: this.options.now });
    while (!signal.aborted) {
      try {
        const events = await this.options.engine.events(signal);
        backoff.succeeded();
        // What changed while the stream was down (or before it was accepted) is read back now.
        this.counts.connections++;
        void this.refresh().catch(() => {});
        for await (const event of events) this.onEvent(event);
        if (!signal.aborted) this.options.logger.warn('the engine closed its event stream; reconnecting');
      } catch (err) {
        if (!signal.aborted) this.options.logger.warn('the engine event stream failed; reconnecting', { err });
      }
      if (signal.aborted) break;
      await sleep(backoff.failed(), signal);
    }
  }

  private onEvent(event: EngineEvent): void {
    if (QUIET_ACTIONS.test(event.action)) return;
    this.counts.events++;
    if (this.settleTimer) return;
    this.settleTimer = setTimeout(() => {
      this.settleTimer = undefined;
      void this.refresh().catch(() => {});
    }, this.options.settleMs ?? 50);
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
