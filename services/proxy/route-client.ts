// Keeps the proxy's route table current (services/common/long-poll.ts): the proxy keeps serving
// the last table while the daemon is away.
import { LongPoll, type LongPollOptions } from '../common/long-poll.js';
import type { RouteTable } from '../common/route-table.js';
import type { DaemonClient } from './daemon-client.js';

export interface RouteClientOptions extends Omit<LongPollOptions<RouteTable>, 'name' | 'what' | 'fetch' | 'close'> {
  daemon: DaemonClient;
}

export class RouteClient extends LongPoll<RouteTable> {
  constructor({ daemon, ...options }: RouteClientOptions) {
    super({ ...options, name: 'route-client', what: 'route table', fetch: (rev, signal) => daemon.routes(rev, signal), close: () => daemon.close() });
  }
}
