// The device's name: <name>.local reaches the portal, <listener>-<app>.<name>.local the apps,
// and the sign-in cookie is set for <name>.local. PICCOLO_DEVICE_NAME is the name until a person
// sets one; that one lives in the control store (device.name), so it follows the device's
// control state like everything else a person chooses. The store is encrypted, though, and a
// locked device must still answer at its name (the unlock page is reached through it): a plain
// copy in the state folder brings the name back before the unlock. The name is not secret.
import { readFile, rm } from 'node:fs/promises';
import type { Module } from '../../common/lifecycle.js';
import type { Logger } from '../../common/logger.js';
import { writeFileDurable } from '../../common/durable.js';
import { BadRequestError } from '../../common/errors.js';
import type { ControlDocument } from '../control-document.js';
import type { ControlStore } from '../store/store.js';
import type { MdnsStatus } from '../mdns/publisher.js';
import type { DeviceInfo } from './types.js';

const LABEL = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$/;

/** Throws an Error saying what is wrong unless raw is one DNS label (what config and the API both take). */
export function parseDeviceName(raw: string): string {
  if (!LABEL.test(raw)) throw new Error('must be a DNS label: 2-32 lower-case letters, digits and dashes, starting with a letter, not ending with a dash');
  return raw;
}

export function deviceInfo(name: string): DeviceInfo {
  return { name, hostname: `${name}.local` };
}

export interface DeviceNameOptions {
  /** PICCOLO_DEVICE_NAME: the name until one is set. */
  fallback: string;
  /** The plain copy for a locked device (in the state folder). */
  cacheFile: string;
  logger: Logger;
}

export class DeviceName implements Module {
  readonly name = 'device-name';
  private value: string;
  private store: ControlStore<ControlDocument> | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly listeners = new Set<(info: DeviceInfo) => void>();

  constructor(private readonly options: DeviceNameOptions) {
    this.value = options.fallback;
  }

  get current(): string {
    return this.value;
  }

  get info(): DeviceInfo {
    return { ...deviceInfo(this.value), ...(this.announced && { mdns: this.announced }) };
  }

  /**
   * The label the LAN reaches the device at: the responder's (piccolo-2 when another host holds
   * piccolo.local), as long as it is this name or a rename of it; otherwise the chosen name.
   */
  get inUse(): string {
    const base = this.announced?.state === 'off' ? undefined : this.announced?.hostname.replace(/\.local$/, '');
    return base && (base === this.value || new RegExp(`^${this.value}-\\d+$`).test(base)) ? base : this.value;
  }

  /** What the mDNS responder says (mdns/publisher.ts); listeners hear of it as of a rename. */
  setAnnounced(status: MdnsStatus): void {
    this.announced = status;
    for (const listener of this.listeners) listener(this.info);
  }

  private announced: MdnsStatus | undefined;

  /** The cached name, unless the unlocked store already said (a TPM unlock can come first). */
  async start(): Promise<void> {
    if (this.store) return;
    try {
      const cached = (await readFile(this.options.cacheFile, 'utf8')).trim();
      this.apply(parseDeviceName(cached));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.options.logger.warn('device name cache unreadable; using the configured name', { err });
    }
  }

  async stop(): Promise<void> {
    this.release();
    await this.copying;
  }

  /** Called after each change, with the new name and host name. */
  onChange(listener: (info: DeviceInfo) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** While unlocked, the store says (and every commit may change it, a follower's copy included); locked, the last name stays. */
  follow(store: ControlStore<ControlDocument> | undefined): void {
    this.release();
    if (!store) return;
    this.store = store;
    this.unsubscribe = store.subscribe(({ data }) => this.fromStore(data.device.name));
    this.fromStore(store.data.device.name);
  }

  /** Sets the name (the API's PUT): 400 naming `name` unless a DNS label. */
  async set(name: string, store: ControlStore<ControlDocument>): Promise<DeviceInfo> {
    try {
      parseDeviceName(name);
    } catch (err) {
      throw new BadRequestError(`name: ${(err as Error).message}`);
    }
    await store.commit((draft) => void (draft.device.name = name));
    // The commit's subscriber applied it already when this store is followed; a store not followed yet still gets it.
    this.fromStore(name);
    return this.info;
  }

  private release(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.store = undefined;
  }

  private fromStore(stored: string | undefined): void {
    this.keepCopy(stored);
    this.apply(stored ?? this.options.fallback);
  }

  private apply(name: string): void {
    if (name === this.value) return;
    this.value = name;
    this.options.logger.info('device name', { name });
    for (const listener of this.listeners) listener(this.info);
  }

  /** What the copy holds (undefined: no file), and the copy's writes, one after another so the last name wins. */
  private copied: string | undefined | null = null;
  private copying: Promise<void> = Promise.resolve();

  /** Only a name a person set is copied: without one, the configured name applies, also while locked. */
  private keepCopy(stored: string | undefined): void {
    if (stored === this.copied) return;
    this.copied = stored;
    const file = this.options.cacheFile;
    this.copying = this.copying
      .then(() => (stored === undefined ? rm(file, { force: true }) : writeFileDurable(file, `${stored}\n`, 0o644)))
      .catch((err) => {
        this.copied = null;
        this.options.logger.warn('could not keep a copy of the device name; a locked device answers at the configured name', { err });
      });
  }

  /** For tests and stop: resolves once the copy is written. */
  flushed(): Promise<void> {
    return this.copying;
  }
}
