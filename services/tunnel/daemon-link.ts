// The tunnel's side of the daemon's internal socket: the remote table (long-polled) and the
// tunnel's status (pushed on every change, and as a heartbeat while connected, so the portal's
// byte and stream counts stay fresh).
import type { Logger } from '../common/logger.js';
import type { Module } from '../common/lifecycle.js';
import { REMOTE_PATHS, type RemoteRoute, type RemoteTable, type TunnelStatus } from '../common/remote-contract.js';
import { DaemonUnreachableError, UnixHttpClient } from '../common/unix-http.js';

export class DaemonLink {
  private readonly http: UnixHttpClient;

  constructor(socketPath: string) {
    this.http = new UnixHttpClient(socketPath);
  }

  /** The current table, or (with afterRev) the next one, waiting up to the daemon's long-poll time. */
  async remote(afterRev: number | undefined, signal: AbortSignal): Promise<RemoteTable> {
    return parseRemoteTable(await this.http.longPoll(REMOTE_PATHS.remote, afterRev, signal, 'remote table'));
  }

  async postStatus(status: TunnelStatus): Promise<void> {
    const answer = await this.http.call(REMOTE_PATHS.tunnelStatus, { method: 'POST', body: status, timeoutMs: 3000 });
    if (answer.status >= 300) throw new DaemonUnreachableError(`tunnel status: daemon answered ${answer.status}`);
  }

  close(): void {
    this.http.close();
  }
}

/** Checks the shape the tunnel relies on; a malformed table is a daemon bug, reported as such. */
export function parseRemoteTable(doc: unknown): RemoteTable {
  const table = doc as RemoteTable;
  const problem = (what: string) => new DaemonUnreachableError(`remote table from the daemon is malformed: ${what}`);
  if (typeof table !== 'object' || table === null) throw problem('not an object');
  if (!Number.isInteger(table.rev)) throw problem('rev');
  if (typeof table.enabled !== 'boolean') throw problem('enabled');
  if (!Array.isArray(table.routes)) throw problem('routes');
  if (table.enabled && (typeof table.relayUrl !== 'string' || typeof table.deviceSecret !== 'string')) throw problem('relayUrl and deviceSecret are required when enabled');
  const routes = table.routes.filter((route: RemoteRoute) => typeof route?.hostname === 'string' && (route.mode === 'local' || route.mode === 'tunnel'));
  if (routes.length !== table.routes.length) throw problem('routes need a hostname and a mode');
  return table;
}

export interface StatusPusherOptions {
  link: Pick<DaemonLink, 'postStatus'>;
  status: () => TunnelStatus;
  logger: Logger;
  intervalMs?: number;
}

/** Sends the status to the daemon on change, and every interval while connected. */
export class StatusPusher implements Module {
  readonly name = 'status-pusher';
  private timer: NodeJS.Timeout | undefined;
  private reachable = true;
  private sending: Promise<void> = Promise.resolve();

  constructor(private readonly options: StatusPusherOptions) {}

  async start(): Promise<void> {
    this.timer = setInterval(() => {
      if (this.options.status().state === 'connected') this.push();
    }, this.options.intervalMs ?? 5000);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.push();
    await this.sending;
  }

  /** Sends the current status after any send in flight, so the daemon sees changes in order. */
  push(): void {
    this.sending = this.sending.then(() => this.send());
  }

  private async send(): Promise<void> {
    try {
      await this.options.link.postStatus(this.options.status());
      if (!this.reachable) this.options.logger.info('daemon takes tunnel status again');
      this.reachable = true;
    } catch (err) {
      // The daemon may start later or restart; the heartbeat or the next change retries. Log once.
      if (this.reachable) this.options.logger.warn('cannot send tunnel status to the daemon', { err });
      this.reachable = false;
    }
  }
}
