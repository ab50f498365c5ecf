// The device's public certificates: one per remote hostname (so a new app never reissues the
// others), obtained by ACME HTTP-01 with acme-client, kept in dir (inside the encrypted bootstrap
// volume), renewed at 2/3 of their lifetime, retried with backoff that honours rate limits. A
// certificate stays in current() until its replacement is stored, so renewal never interrupts
// serving.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Client as AcmeAccountClient } from 'acme-client';
import { writeFileDurable } from '../../../common/durable.js';
import { BadRequestError, NotFoundError, PiccoloError } from '../../../common/errors.js';
import type { Module } from '../../../common/lifecycle.js';
import type { Logger } from '../../../common/logger.js';
import { AcmeRateLimitedError, ChallengeFailedError, loadAcme, probeDirectory } from './acme-http.js';
import { DEFAULT_BACKOFF, renewalTime, retryDelay, type BackoffPolicy } from './schedule.js';
import { SerialQueue } from '../../../common/serial-queue.js';

export interface CertificatePair {
  /** PEM private key. */
  key: string;
  /** PEM leaf certificate followed by its chain. */
  cert: string;
}

export type CertificateState = 'pending' | 'valid' | 'renewing' | 'failed';

export interface CertificateInfo {
  name: string;
  state: CertificateState;
  /** Of the certificate in use, if there is one (ISO times). */
  issuer?: string;
  notBefore?: string;
  notAfter?: string;
  renewAt?: string;
  lastError?: string;
  /** After a failure: when the next attempt runs. */
  nextAttemptAt?: string;
}

/** Runs `run` after delayMs; returns a cancel function. Tests inject one to drive the clock. */
export type Schedule = (delayMs: number, run: () => void) => () => void;

export interface CertificateManagerOptions {
  /** Holds the account key and one file per certificate; created with mode 0700. */
  dir: string;
  directoryUrl: string;
  /** Contact address given to the ACME server for expiry notices. */
  email?: string;
  logger: Logger;
  now?: () => number;
  /** Called with every valid pair whenever that set changes (issue, renewal, removal, expiry). */
  onChange: (pairs: CertificatePair[]) => void;
  schedule?: Schedule;
  backoff?: BackoffPolicy;
  random?: () => number;
}

/** Manual renewal of a name the ACME server currently rate-limits. */
export class CertificateRateLimitedError extends PiccoloError {
  constructor(name: string, until: number) {
    super(429, 'rate_limited', `the ACME server rate-limits ${name}; try again after ${new Date(until).toISOString()}`);
  }
}

/** A manual renewal that did not produce a certificate; the message says why. */
export class CertificateIssueError extends PiccoloError {
  constructor(message: string) {
    super(502, 'acme_failed', message);
  }
}

interface Issued {
  pair: CertificatePair;
  issuer: string;
  notBefore: number;
  notAfter: number;
}

interface Entry {
  name: string;
  issued?: Issued;
  /** An order for this name is in flight. */
  busy: boolean;
  failures: number;
  lastError?: string;
  nextAttemptAt?: number;
  rateLimitedUntil?: number;
}

// Public DNS names only: HTTP-01 cannot prove a wildcard or an IP address.
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;
const ACCOUNT_KEY_FILE = 'account.key.pem';
/** The account's URL at the CA, for the directory it was registered with (AccountRecord). */
const ACCOUNT_URL_FILE = 'account.json';

interface AccountRecord {
  directoryUrl: string;
  accountUrl: string;
}
const CERTIFICATES_DIR = 'certificates';
// acme-client polls a challenge or order this way: about 20 s at most, so stop() waits little.
const POLL = { backoffAttempts: 8, backoffMin: 500, backoffMax: 5000 };

export class CertificateManager implements Module {
  readonly name = 'certificates';
  private readonly entries = new Map<string, Entry>();
  /** HTTP-01 token -> key authorization, while its challenge is being validated. */
  private readonly challenges = new Map<string, string>();
  private readonly now: () => number;
  private readonly schedule: Schedule;
  private readonly backoff: BackoffPolicy;
  private readonly random: () => number;
  private desired?: Set<string>;
  private accountKey?: string;
  private client?: AcmeAccountClient;
  /** Orders and file removals run one at a time, in order. */
  private readonly queue = new SerialQueue();
  private cancelTimer?: () => void;
  private starting?: Promise<void>;
  private running = false;
  private stopped = false;
  private lastNotified = '';

  constructor(private readonly options: CertificateManagerOptions) {
    this.now = options.now ?? Date.now;
    this.schedule = options.schedule ?? setTimer;
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.random = options.random ?? Math.random;
  }

  start(): Promise<void> {
    this.starting ??= this.load();
    return this.starting;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    // A stop during start (the volume closing while the files load) waits for the load, then stays stopped.
    await this.starting?.catch(() => undefined);
    this.running = false;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    await this.queue.idle();
  }

  private async load(): Promise<void> {
    await mkdir(path.join(this.options.dir, CERTIFICATES_DIR), { recursive: true, mode: 0o700 });
    this.accountKey = await this.loadAccountKey();
    const loaded = await this.loadCertificates();
    if (this.stopped) return;
    for (const entry of loaded) this.entries.set(entry.name, entry);
    this.running = true;
    if (this.desired) this.reconcile(this.desired);
    this.changed();
  }

  /** The hostnames that need a certificate: issues missing ones, stops serving removed ones. */
  setNames(names: string[]): void {
    const wanted = new Set<string>();
    names.forEach((raw, index) => {
      const name = typeof raw === 'string' ? raw.trim().toLowerCase().replace(/\.$/, '') : '';
      if (!HOSTNAME.test(name)) throw new BadRequestError(`names[${index}]: not a public DNS name: ${JSON.stringify(raw)}`);
      wanted.add(name);
    });
    this.desired = wanted;
    if (this.running) {
      this.reconcile(wanted);
      this.changed();
    }
  }

  inventory(): CertificateInfo[] {
    return this.sortedEntries().map((entry) => {
      const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
      const { issued } = entry;
      return {
        name: entry.name,
        state: this.stateOf(entry),
        issuer: issued?.issuer,
        notBefore: iso(issued?.notBefore),
        notAfter: iso(issued?.notAfter),
        renewAt: iso(issued && renewalTime(issued.notBefore, issued.notAfter)),
        lastError: entry.lastError,
        nextAttemptAt: iso(entry.nextAttemptAt),
      };
    });
  }

  /** Every pair that is valid now, for the proxy. */
  current(): CertificatePair[] {
    const now = this.now();
    return this.sortedEntries().flatMap(({ issued }) => (issued && issued.notAfter > now ? [issued.pair] : []));
  }

  challengeAnswer(token: string): string | undefined {
    return this.challenges.get(token);
  }

  /**
   * Orders a new certificate now for name (or every name), ahead of the schedule and of any
   * backoff, but not of a rate limit. Resolves once stored; rejects with what went wrong.
   */
  async renew(name?: string): Promise<void> {
    if (!this.running) throw new PiccoloError(503, 'unavailable', 'the certificate manager is not running');
    const named = name === undefined ? undefined : this.entries.get(name.toLowerCase());
    if (name !== undefined && !named) throw new NotFoundError(`name: no certificate is wanted for ${JSON.stringify(name)}`);
    const targets = named ? [named] : this.sortedEntries();
    const now = this.now();
    const limited = targets.find((entry) => entry.rateLimitedUntil !== undefined && entry.rateLimitedUntil > now);
    if (limited) throw new CertificateRateLimitedError(limited.name, limited.rateLimitedUntil!);
    const failures = await this.queue.run(async () => {
      const errors: string[] = [];
      for (const entry of targets) {
        if (this.running && this.entries.get(entry.name) === entry && !(await this.attempt(entry))) errors.push(`${entry.name}: ${entry.lastError}`);
      }
      return errors;
    });
    this.changed();
    if (failures.length) throw new CertificateIssueError(failures.join('; '));
  }

  private stateOf(entry: Entry): CertificateState {
    const usable = entry.issued !== undefined && entry.issued.notAfter > this.now();
    if (entry.busy) return usable ? 'renewing' : 'pending';
    if (entry.lastError !== undefined) return 'failed';
    return usable ? 'valid' : 'pending';
  }

  private sortedEntries(): Entry[] {
    return [...this.entries.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  private reconcile(wanted: Set<string>): void {
    const removed = [...this.entries.keys()].filter((name) => !wanted.has(name));
    for (const name of removed) this.entries.delete(name);
    for (const name of wanted) if (!this.entries.has(name)) this.entries.set(name, { name, busy: false, failures: 0 });
    if (removed.length) {
      this.options.logger.info('certificates dropped', { names: removed });
      // Queued behind any order in flight, and skipped for a name wanted again by then.
      void this.queue.run(async () => {
        for (const name of removed) if (!this.entries.has(name)) await rm(this.certificateFile(name), { force: true });
      }).catch((err) => this.options.logger.warn('could not remove a dropped certificate', { err }));
    }
  }

  /** Tells onChange when the served set changed, and sets the timer for the next due work. */
  private changed(): void {
    const pairs = this.current();
    const fingerprint = pairs.map((pair) => pair.cert).join('\n');
    if (fingerprint !== this.lastNotified) {
      this.lastNotified = fingerprint;
      this.options.onChange(pairs);
    }
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    if (!this.running) return;
    const now = this.now();
    const wakeups = [...this.entries.values()].flatMap((entry) => [
      ...(entry.busy ? [] : [this.dueAt(entry)]),
      // Expiry changes current(), so onChange must hear of it.
      ...(entry.issued && entry.issued.notAfter > now ? [entry.issued.notAfter] : []),
    ]);
    if (!wakeups.length) return;
    this.cancelTimer = this.schedule(Math.max(0, Math.min(...wakeups) - now), () => {
      this.cancelTimer = undefined;
      void this.runDue();
    });
  }

  private dueAt(entry: Entry): number {
    if (entry.nextAttemptAt !== undefined) return entry.nextAttemptAt;
    return entry.issued ? renewalTime(entry.issued.notBefore, entry.issued.notAfter) : this.now();
  }

  private async runDue(): Promise<void> {
    await this.queue.run(async () => {
      for (const entry of this.sortedEntries()) {
        if (this.running && !entry.busy && this.entries.get(entry.name) === entry && this.dueAt(entry) <= this.now()) await this.attempt(entry);
      }
    });
    this.changed();
  }

  /** One order for entry; true when a new certificate is stored and served. */
  private async attempt(entry: Entry): Promise<boolean> {
    const logger = this.options.logger.child({ certificate: entry.name });
    entry.busy = true;
    try {
      logger.info(entry.issued ? 'renewing certificate' : 'requesting certificate');
      const pair = await this.order(entry.name);
      const issued = readIssued(pair);
      // Dropped while the order ran: neither stored nor served.
      if (this.entries.get(entry.name) !== entry) return false;
      await writeFileDurable(this.certificateFile(entry.name), JSON.stringify(pair), 0o600);
      Object.assign(entry, { issued, failures: 0, lastError: undefined, nextAttemptAt: undefined, rateLimitedUntil: undefined });
      logger.info('certificate issued', { issuer: issued.issuer, notAfter: new Date(issued.notAfter).toISOString() });
      return true;
    } catch (err) {
      // The next order builds its client anew.
      this.client = undefined;
      const retryAfterMs = err instanceof AcmeRateLimitedError ? err.retryAfterMs : 0;
      entry.failures += 1;
      entry.lastError = await this.describe(err);
      const delay = retryDelay(entry.failures, this.backoff, this.random, retryAfterMs);
      entry.nextAttemptAt = this.now() + delay;
      entry.rateLimitedUntil = retryAfterMs ? this.now() + retryAfterMs : undefined;
      logger.warn('certificate order failed', { error: entry.lastError, failures: entry.failures, retryInMs: delay });
      return false;
    } finally {
      entry.busy = false;
    }
  }

  private async order(name: string): Promise<CertificatePair> {
    const client = await this.account();
    const order = await client.createOrder({ identifiers: [{ type: 'dns', value: name }] });
    for (const authz of await client.getAuthorizations(order)) {
      if (authz.status === 'valid') continue;
      const challenge = authz.challenges.find((c) => c.type === 'http-01');
      if (!challenge) throw new Error(`the ACME server offers no http-01 challenge for ${name}`);
      this.challenges.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
      try {
        await client.completeChallenge(challenge);
        await client.waitForValidStatus(challenge);
      } catch (err) {
        throw err instanceof AcmeRateLimitedError ? err : new ChallengeFailedError(name, challenge.token, (err as Error).message);
      } finally {
        this.challenges.delete(challenge.token);
      }
    }
    const acme = await loadAcme();
    const [key, csr] = await acme.crypto.createCsr({ commonName: name, altNames: [name] }, await acme.crypto.createPrivateEcdsaKey());
    const cert = await client.getCertificate(await client.finalizeOrder(order, csr));
    return { key: key.toString(), cert };
  }

  private async account(): Promise<AcmeAccountClient> {
    if (!this.client) {
      // The account's URL is kept beside its key: with it acme-client needs no registration call.
      // Registering a known key again would make acme-client send an update that carries nothing
      // new, which CAs (pebble) refuse; acme-client drops the problem type, so that cannot be told
      // apart from other refusals afterwards.
      const accountUrl = await this.readAccountUrl();
      const client = new (await loadAcme()).Client({ directoryUrl: this.options.directoryUrl, accountKey: this.accountKey!, accountUrl, ...POLL });
      if (!accountUrl) {
        // Whoever configures remote access accepts the CA's terms.
        await client.createAccount({ termsOfServiceAgreed: true, ...(this.options.email ? { contact: [`mailto:${this.options.email}`] } : {}) });
        const record: AccountRecord = { directoryUrl: this.options.directoryUrl, accountUrl: client.getAccountUrl() };
        await writeFileDurable(path.join(this.options.dir, ACCOUNT_URL_FILE), JSON.stringify(record), 0o600);
      }
      this.client = client;
    }
    return this.client;
  }

  private async describe(err: unknown): Promise<string> {
    if (err instanceof AcmeRateLimitedError || err instanceof ChallengeFailedError) return err.message;
    // acme-client turns every transport failure into this TypeError; the probe finds the cause.
    if (err instanceof TypeError) return `could not reach the ACME server at ${this.options.directoryUrl}: ${(await probeDirectory(this.options.directoryUrl)) ?? 'the connection failed'}`;
    return `the ACME server refused the order: ${(err as Error).message}`;
  }

  /** The stored account URL, if it was registered at the directory in use now. */
  private async readAccountUrl(): Promise<string | undefined> {
    try {
      const record = JSON.parse(await readFile(path.join(this.options.dir, ACCOUNT_URL_FILE), 'utf8')) as AccountRecord;
      return record.directoryUrl === this.options.directoryUrl && typeof record.accountUrl === 'string' ? record.accountUrl : undefined;
    } catch {
      return undefined;
    }
  }

  private async loadAccountKey(): Promise<string> {
    const file = path.join(this.options.dir, ACCOUNT_KEY_FILE);
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const key = (await (await loadAcme()).crypto.createPrivateEcdsaKey()).toString();
    await writeFileDurable(file, key, 0o600);
    this.options.logger.info('ACME account key created');
    return key;
  }

  private async loadCertificates(): Promise<Entry[]> {
    const dir = path.join(this.options.dir, CERTIFICATES_DIR);
    const entries: Entry[] = [];
    for (const file of await readdir(dir)) {
      const name = file.replace(/\.json$/, '');
      if (name === file || !HOSTNAME.test(name)) continue;
      try {
        const pair = JSON.parse(await readFile(path.join(dir, file), 'utf8')) as CertificatePair;
        entries.push({ name, issued: readIssued(pair), busy: false, failures: 0 });
      } catch (err) {
        // Unreadable or mismatched: ordered again if the name is still wanted.
        this.options.logger.warn('ignoring a stored certificate that does not load', { certificate: name, err });
      }
    }
    return entries;
  }

  private certificateFile(name: string): string {
    return path.join(this.options.dir, CERTIFICATES_DIR, `${name}.json`);
  }
}

/** Reads a pair's dates and issuer; throws if the key is not the certificate's. */
function readIssued(pair: CertificatePair): Issued {
  if (typeof pair?.key !== 'string' || typeof pair?.cert !== 'string') throw new Error('not a {key, cert} pair');
  const cert = new X509Certificate(pair.cert);
  if (!cert.checkPrivateKey(createPrivateKey(pair.key))) throw new Error('the key does not belong to the certificate');
  // node:crypto, not acme-client: stored certificates are read at start, before any order needs acme-client.
  const issuer = /^CN=(.*)$/m.exec(cert.issuer)?.[1] ?? 'unknown';
  return { pair, issuer, notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
}

function setTimer(delayMs: number, run: () => void): () => void {
  // setTimeout holds at most ~24.8 days; a longer wait wakes early, finds nothing due, and re-arms.
  const timer = setTimeout(run, Math.min(delayMs, 2 ** 31 - 1));
  timer.unref();
  return () => clearTimeout(timer);
}
