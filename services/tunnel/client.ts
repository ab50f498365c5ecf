// The tunnel's connection loop: keeps one relay session up for the current remote table. A new
// relay, secret or set of names means a new session (the token's names are fixed per session);
// other route changes apply to the next stream at once. Reconnects back off exponentially with
// full jitter, and the backoff is forgotten only once a session has stayed up: a relay that
// rejects stage 1 a moment after we open is retried ever more slowly, never in a hot loop.
import type { SecureContextOptions } from 'node:tls';
import { Backoff } from '../common/backoff.js';
import type { Module } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import { sleep } from '../common/long-poll.js';
import type { RemoteTable, TunnelState, TunnelStatus } from '../common/remote-contract.js';
import type { Dialer } from './dialer.js';
import { RelaySession, type SessionTiming } from './session.js';
import { TokenIssuer } from './tokens.js';

/** Errors that more tries will not fix (§4): after this many in a row we wait for new configuration. */
const PERMANENT_ERROR = /unauthorized|invalid token|invalid credential|authentication failed|forbidden|\b401\b|\b403\b/i;
export const MAX_PERMANENT_FAILURES = 5;

export interface TunnelClientOptions {
  logger: Logger;
  dialer: Dialer;
  /** The token's sub: which device this is. */
  subject: string;
  onStatus?: (status: TunnelStatus) => void;
  backoff?: Backoff;
  tls?: Pick<SecureContextOptions, 'ca'>;
  timing?: Partial<SessionTiming>;
  /** Status times. */
  now?: () => number;
  /** What tokens are stamped with (tests skew it to get a token refused). */
  tokenClock?: () => number;
}

interface Target {
  relayUrl: string;
  deviceSecret: string;
  hostnames: string[];
}

export class TunnelClient implements Module {
  readonly name = 'tunnel-client';
  private readonly backoff: Backoff;
  private readonly counters = { bytesIn: 0, bytesOut: 0 };
  private table: RemoteTable = { rev: 0, enabled: false, routes: [] };
  private target: Target | undefined;
  private runner: { abort: AbortController; session?: RelaySession; done: Promise<void> } | undefined;
  private current: Omit<TunnelStatus, 'streams' | 'bytesIn' | 'bytesOut'>;

  constructor(private readonly options: TunnelClientOptions) {
    this.backoff = options.backoff ?? new Backoff({ initialMs: 1000, maxMs: 60_000, stableMs: 30_000, jitter: 'full' });
    this.current = { state: 'disabled', since: this.isoNow() };
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    await this.halt();
    this.setState('disabled', { backoffMs: undefined });
  }

  status(): TunnelStatus {
    return { ...this.current, streams: this.runner?.session?.streamCount ?? 0, ...this.counters };
  }

  /** A new remote table from the daemon. */
  async update(table: RemoteTable): Promise<void> {
    this.table = table;
    const next = targetOf(table);
    if (next && this.target && sameTarget(next, this.target)) return;
    await this.halt();
    this.target = next;
    this.backoff.reset();
    if (!next) return this.setState('disabled', { relay: undefined, lastError: undefined, backoffMs: undefined });
    const abort = new AbortController();
    const runner: NonNullable<TunnelClient['runner']> = { abort, done: Promise.resolve() };
    this.runner = runner;
    runner.done = this.run(next, runner);
  }

  private async halt(): Promise<void> {
    const runner = this.runner;
    if (!runner) return;
    this.runner = undefined;
    runner.abort.abort();
    runner.session?.close();
    await runner.done;
  }

  private async run(target: Target, runner: NonNullable<TunnelClient['runner']>): Promise<void> {
    const { signal } = runner.abort;
    const tokens = new TokenIssuer({ deviceSecret: target.deviceSecret, subject: this.options.subject, hostnames: target.hostnames, now: this.options.tokenClock });
    const relay = redact(target.relayUrl);
    let permanentFailures = 0;
    while (!signal.aborted) {
      this.setState('connecting', { relay, backoffMs: undefined });
      const session = new RelaySession({
        url: target.relayUrl,
        tokens,
        table: () => this.table,
        dialer: this.options.dialer,
        logger: this.options.logger,
        counters: this.counters,
        tls: this.options.tls,
        timing: this.options.timing,
        onOpen: () => {
          this.backoff.succeeded();
          this.options.logger.info('relay session open', { relay, hostnames: target.hostnames.length });
          this.setState('connected', { lastError: undefined });
        },
      });
      runner.session = session;
      const end = await session.run();
      runner.session = undefined;
      if (signal.aborted) break;
      this.options.logger.warn('relay session ended', { relay, opened: end.opened, reason: end.reason });
      permanentFailures = PERMANENT_ERROR.test(end.reason) ? permanentFailures + 1 : 0;
      if (permanentFailures >= MAX_PERMANENT_FAILURES) {
        // More tries would only hammer the relay with a credential it refuses; new configuration restarts us.
        this.setState('backoff', { lastError: `${end.reason} (gave up after ${permanentFailures} tries; waiting for new remote settings)`, backoffMs: undefined });
        return;
      }
      const delay = this.backoff.failed();
      this.setState('backoff', { lastError: end.reason, backoffMs: delay });
      await sleep(delay, signal);
    }
  }

  private setState(state: TunnelState, fields: Partial<TunnelStatus>): void {
    const changed = this.current.state !== state;
    // Error texts come from the relay and TLS; the daemon takes at most 2 KiB of them.
    if (fields.lastError) fields.lastError = fields.lastError.slice(0, 1024);
    this.current = { ...this.current, ...fields, state, since: changed ? this.isoNow() : this.current.since };
    this.options.onStatus?.(this.status());
  }

  private isoNow(): string {
    return new Date((this.options.now ?? Date.now)()).toISOString();
  }
}

function targetOf(table: RemoteTable): Target | undefined {
  if (!table.enabled || !table.relayUrl || !table.deviceSecret) return undefined;
  const hostnames = [...new Set(table.routes.map((route) => route.hostname))].sort();
  // A token must claim something (§1.2); with no names there is nothing to serve.
  if (!hostnames.length) return undefined;
  return { relayUrl: table.relayUrl, deviceSecret: table.deviceSecret, hostnames };
}

function sameTarget(a: Target, b: Target): boolean {
  return a.relayUrl === b.relayUrl && a.deviceSecret === b.deviceSecret && a.hostnames.join('\n') === b.hostnames.join('\n');
}

/** The relay's URL for status and logs: no credentials, no query. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    parsed.search = '';
    return parsed.toString();
  } catch {
    return 'invalid relay URL';
  }
}
