// Hands the device CA's certificate to the daemon, which offers it for download in the portal
// (a person installs it to trust the device's TLS). The proxy owns the CA (cert-store.ts); the
// daemon keeps the certificate in memory only, so it is pushed at start and again after each
// route table the proxy applies: a restarted daemon publishes a new table, and so gets the
// certificate back at once. Failures are retried with the same backoff as the route long poll;
// stop() cancels the wait.
import { Backoff } from '../common/backoff.js';
import type { Module } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import { sleep } from '../common/long-poll.js';
import type { DaemonClient } from './daemon-client.js';

export interface DeviceCaPushOptions {
  daemon: Pick<DaemonClient, 'pushDeviceCa'>;
  /** The CA certificate (PEM), read when pushing: the cert store loads it in its own start. */
  certificate: () => string;
  logger: Logger;
  backoff?: Backoff;
}

export class DeviceCaPush implements Module {
  readonly name = 'device-ca-push';
  private readonly abort = new AbortController();
  private readonly backoff: Backoff;
  private running: Promise<void> | undefined;
  /** A push asked for while one runs: that one pushes once more when done. */
  private again = false;
  private failing = false;

  constructor(private readonly options: DeviceCaPushOptions) {
    this.backoff = options.backoff ?? new Backoff({ initialMs: 100, maxMs: 10_000, stableMs: 30_000 });
  }

  /** Pushes in the background: the proxy serves whether or not the daemon is up yet. */
  async start(): Promise<void> {
    this.push();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  /** Pushes now (or right after the push under way), retrying until the daemon takes it. */
  push(): void {
    if (this.abort.signal.aborted) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.run().finally(() => (this.running = undefined));
  }

  private async run(): Promise<void> {
    do {
      this.again = false;
      while (!this.abort.signal.aborted && !(await this.tryOnce())) await sleep(this.backoff.failed(), this.abort.signal);
    } while (this.again && !this.abort.signal.aborted);
  }

  private async tryOnce(): Promise<boolean> {
    try {
      const taken = await this.options.daemon.pushDeviceCa(this.options.certificate(), this.abort.signal);
      this.backoff.succeeded();
      if (this.failing) this.options.logger.info('device CA handed to the daemon again');
      else this.options.logger.debug('device CA handed to the daemon', { taken });
      this.failing = false;
      return true;
    } catch (err) {
      if (this.abort.signal.aborted) return false;
      if (!this.failing) this.options.logger.warn('cannot hand the device CA to the daemon; retrying', { err });
      this.failing = true;
      return false;
    }
  }
}
