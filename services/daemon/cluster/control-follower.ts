// A follower's copy of the leader's control state. It long-polls the leader's control store for
// the next rev (LongPoll, the loop the proxy and the tunnel use) and commits the shared sections
// into this node's own store, whose subscribers (remote access, sessions) then follow it exactly
// as they follow local commits on the leader. Not copied: jobs (the leader's own work log) and
// device (this node's own record).
import { Backoff } from '../../common/backoff.js';
import type { Module } from '../../common/lifecycle.js';
import type { Logger } from '../../common/logger.js';
import { LongPoll } from '../../common/long-poll.js';
import type { ControlDocument } from '../control-document.js';
import type { ControlStore, DeepReadonly } from '../store/store.js';

export interface ControlSnapshot {
  rev: number;
  data: DeepReadonly<ControlDocument>;
}

/**
 * The leader's store as a follower reads it: the current snapshot (afterRev undefined), or the
 * next one after afterRev, or the same one again after a while. In-process today (storeFeed);
 * a network feed for real nodes has the same shape.
 */
export type ControlFeed = (afterRev: number | undefined, signal: AbortSignal) => Promise<ControlSnapshot>;

/** Answers from a store in this process, waiting on its commit events. */
export function storeFeed(store: ControlStore<ControlDocument>, waitMs = 25_000): ControlFeed {
  const current = (): ControlSnapshot => ({ rev: store.rev, data: store.data });
  return (afterRev, signal) => {
    if (afterRev !== store.rev) return Promise.resolve(current());
    return new Promise((resolve) => {
      const answer = () => {
        clearTimeout(timer);
        unsubscribe();
        signal.removeEventListener('abort', answer);
        resolve(current());
      };
      const unsubscribe = store.subscribe(answer);
      const timer = setTimeout(answer, waitMs);
      signal.addEventListener('abort', answer);
    });
  };
}

export interface ControlFollowerOptions {
  feed: ControlFeed;
  /** This node's own store. */
  replica: ControlStore<ControlDocument>;
  logger: Logger;
  backoff?: Backoff;
}

export class ControlFollower implements Module {
  readonly name = 'control-follower';
  private readonly poll: LongPoll<ControlSnapshot>;
  private leaderRev: number | undefined;

  constructor(private readonly options: ControlFollowerOptions) {
    this.poll = new LongPoll({
      name: this.name,
      what: "leader's control store",
      fetch: options.feed,
      logger: options.logger,
      onTable: (snapshot) => this.apply(snapshot),
      // LongPoll logs the failures; a follower keeps serving its last copy meanwhile.
      onLinkState: () => {},
      backoff: options.backoff ?? new Backoff({ initialMs: 200, maxMs: 10_000, stableMs: 30_000 }),
    });
  }

  /** The leader's rev that this node's copy was made from; undefined before the first one. */
  get rev(): number | undefined {
    return this.leaderRev;
  }

  start(): Promise<void> {
    return this.poll.start();
  }

  stop(): Promise<void> {
    return this.poll.stop();
  }

  private async apply({ rev, data }: ControlSnapshot): Promise<void> {
    await this.options.replica.commit((draft) => {
      draft.apps = structuredClone(data.apps) as ControlDocument['apps'];
      draft.remote = structuredClone(data.remote) as ControlDocument['remote'];
      draft.auth = structuredClone(data.auth) as ControlDocument['auth'];
    });
    this.leaderRev = rev;
    this.options.logger.debug('control state copied from the leader', { rev });
  }
}
