// Keeps the LAN's view of the device in line with what it should be: the host name a person chose
// (through the responder, which probes it and takes piccolo-2 on a conflict), and one name per app
// listener, <listener>-<app>.<name in use>.local, published while the app is installed. It follows
// the responder by polling it, so a rename after a later conflict, or a responder that starts
// after the daemon (or restarts and forgets the name), is picked up within one interval.
import type { Module } from '../../common/lifecycle.js';
import type { Logger } from '../../common/logger.js';
import { SerialQueue } from '../../common/serial-queue.js';
import type { MdnsResponder } from './avahi.js';

export type MdnsState = 'announced' | 'renamed' | 'probing' | 'off';

/** What the API says about the device on the LAN (DeviceInfo.mdns). */
export interface MdnsStatus {
  /** announced: the chosen name is ours; renamed: another host held it, so the responder took another; probing: not settled yet; off: no responder. */
  state: MdnsState;
  /** The name the LAN reaches the device at, e.g. piccolo-2.local (the chosen one while off). */
  hostname: string;
  /** Why it is off, or which app names could not be published. */
  reason?: string;
}

export interface MdnsPublisherOptions {
  responder: MdnsResponder;
  /** The device name a person chose (one label). */
  chosenName: () => string;
  pollMs: number;
  /** Called when the status changes (the name in use, above all). */
  onChange: (status: MdnsStatus) => void;
  logger: Logger;
}

/** The responder's name, if it is the chosen one or a conflict rename of it (chosen-N). */
function heldBase(fqdn: string, chosen: string): string | undefined {
  const base = fqdn.replace(/\.local\.?$/, '');
  return base === chosen || new RegExp(`^${chosen}-\\d+$`).test(base) ? base : undefined;
}

interface Publication {
  name: string;
  address: string;
  stop(): void;
}

export class MdnsPublisher implements Module {
  readonly name = 'mdns';
  private readonly queue = new SerialQueue();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private labels: string[] = [];
  private readonly published = new Map<string, Publication>();
  /** Names the responder refused (a collision), with when to try again. */
  private readonly refused = new Map<string, { until: number; reason: string }>();
  private current: MdnsStatus;

  constructor(private readonly options: MdnsPublisherOptions) {
    this.current = { state: 'off', hostname: `${options.chosenName()}.local`, reason: 'not started' };
  }

  get status(): MdnsStatus {
    return this.current;
  }

  /** The label the LAN knows the device by: the chosen name, or the responder's rename of it. */
  get nameInUse(): string {
    return this.current.state === 'off' ? this.options.chosenName() : this.current.hostname.replace(/\.local$/, '');
  }

  async start(): Promise<void> {
    this.running = true;
    // Not awaited beyond the first tick: a missing responder must not hold up the daemon.
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.options.pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.timer);
    await this.queue.run(() => this.withdrawAll());
  }

  /** The host-name labels of the apps' listeners (<listener>-<app>), published under the name in use. */
  setAppLabels(labels: readonly string[]): void {
    const next = [...new Set(labels)].sort();
    if (next.join() === this.labels.join()) return;
    this.labels = next;
    void this.tick();
  }

  /** Also called when the chosen name changes. */
  tick(): Promise<void> {
    return this.queue.run(() => this.sync()).catch((err) => this.options.logger.warn('mDNS sync failed', { err }));
  }

  private async sync(): Promise<void> {
    if (!this.running) return;
    const { responder } = this.options;
    const chosen = this.options.chosenName();
    let held: { fqdn: string; probing: boolean };
    try {
      held = await responder.hostName();
      // Not the chosen name nor a rename of it (first start, a new name, or a responder that
      // restarted with the system's host name): ask for it. A rename it holds is kept, since
      // asking again would only repeat the conflict.
      if (heldBase(held.fqdn, chosen) === undefined) {
        await responder.setHostName(chosen);
        held = await responder.hostName();
      }
    } catch (err) {
      this.withdrawAll();
      this.update({ state: 'off', hostname: `${chosen}.local`, reason: (err as Error).message }, (err as { detail?: string }).detail);
      return;
    }
    const base = heldBase(held.fqdn, chosen);
    if (base === undefined) {
      this.withdrawAll();
      this.update({ state: 'probing', hostname: `${chosen}.local` });
      return;
    }
    const problems: string[] = [];
    try {
      await this.publishApps(base, held.fqdn);
    } catch (err) {
      problems.push(`app names: ${(err as Error).message}`);
    }
    for (const [name, r] of this.refused) problems.push(`${name}: ${r.reason}`);
    this.update({
      state: held.probing ? 'probing' : base === chosen ? 'announced' : 'renamed',
      hostname: `${base}.local`,
      ...(problems.length && { reason: `not published: ${problems.join('; ')}` }),
    });
  }

  /**
   * One publication per app name: new ones started, gone ones withdrawn (with a goodbye). Each
   * points at the address the responder announces for the device itself, so an app name reaches
   * the device wherever its host name does (one address per name: Avahi refuses a second A
   * record for a name another publisher holds).
   */
  private async publishApps(base: string, fqdn: string): Promise<void> {
    const addresses = this.labels.length ? [await this.options.responder.hostAddress(fqdn)] : [];
    const wanted = new Map<string, { name: string; address: string }>();
    for (const label of this.labels) {
      for (const address of addresses) wanted.set(`${label}.${base}.local ${address}`, { name: `${label}.${base}.local`, address });
    }
    for (const [key, publication] of this.published) {
      if (wanted.has(key)) continue;
      publication.stop();
      this.published.delete(key);
    }
    const now = Date.now();
    for (const [name, r] of this.refused) if (r.until <= now || ![...wanted.values()].some((w) => w.name === name)) this.refused.delete(name);
    for (const [key, { name, address }] of wanted) {
      if (this.published.has(key) || this.refused.has(name)) continue;
      const handle = this.options.responder.publishAddress(name, address, (reason) => {
        // Ended by itself: a name another host holds is left alone for a while, anything else retried at the next tick.
        if (this.published.get(key)?.stop !== handle.stop) return;
        this.published.delete(key);
        this.options.logger.warn('mDNS name not published', { name, address, reason });
        if (/collision|conflict/i.test(reason)) this.refused.set(name, { until: Date.now() + 30_000, reason: 'another host on the network holds this name' });
      });
      this.published.set(key, { name, address, stop: handle.stop });
    }
  }

  private withdrawAll(): void {
    for (const publication of this.published.values()) publication.stop();
    this.published.clear();
  }

  private update(next: MdnsStatus, detail?: string): void {
    const before = this.current;
    this.current = next;
    if (before.state === next.state && before.hostname === next.hostname && before.reason === next.reason) return;
    if (next.state === 'off') this.options.logger.warn('mDNS off: the device cannot be found by name on the network', { reason: next.reason, detail });
    else if (next.state !== 'probing') this.options.logger.info('mDNS', { ...next });
    this.options.onChange(next);
  }
}
