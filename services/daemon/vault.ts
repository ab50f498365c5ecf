// The vault: the device's encrypted state and its life cycle — unclaimed, locked, unlocked or
// failed. It owns the key ring, the bootstrap and control volumes and the control store, and
// reports each of them to the health service.
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { BadRequestError, ConflictError, LockedError, UnavailableError } from '../common/errors.js';
import { freeBytesAt, syncDirectory } from '../common/durable.js';
import { DiskFullError, isNoSpaceError } from '../common/errors.js';
import type { HealthReporter } from '../common/health-report.js';
import type { Module } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import { DataKey, KeyRing, generateRecoveryPhrase, type KeyRingOptions, type RecoverySlot } from './crypto/keyring.js';
import type { Tpm } from './crypto/tpm.js';
import { ControlStore } from './store/store.js';
import { CONTROL_SCHEMA_VERSION, CONTROL_MIGRATIONS, initialControlDocument, type ControlDocument } from './control-document.js';
import { VolumeManager } from './volumes/volumes.js';
import { SizeLimitedFolders } from './volumes/size-limited.js';
import type { DiskSpaceWatch } from './system/disk-space.js';
import { SerialQueue } from '../common/serial-queue.js';

export type VaultState = 'unclaimed' | 'locked' | 'unlocked' | 'failed';

/** Volumes every device has; apps get their own later. */
const SYSTEM_VOLUMES = ['bootstrap', 'control'] as const;
/** The shared media folders' volume (ensureMediaFolder). */
const MEDIA_VOLUME = 'media';
/** As the app spec's mediaName: a plain folder name, never a path. */
const MEDIA_FOLDER = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;

export interface VaultOptions {
  stateDir: string;
  logger: Logger;
  health: HealthReporter;
  tpm: Tpm | undefined;
  /** Overrides for tests (fast scrypt); production uses the key ring's defaults. */
  keyRing?: Partial<KeyRingOptions>;
  /** How often the mounted volumes are checked (a dead gocryptfs process leaves a dead mount). */
  checkIntervalMs?: number;
  /** Told of every state change (the events stream relays them). */
  onStateChange?: (state: VaultState, reason: string | undefined) => void;
  /** Test builds only (test-hooks.ts): a fault to report as if a check had failed. */
  injectedFault?: () => string | undefined;
  /** Hears how store and key ring writes went; while it says full, daemon.store is degraded. */
  diskSpace?: Pick<DiskSpaceWatch, 'status' | 'noteWrite' | 'releaseReserve'>;
}

export class Vault implements Module {
  readonly name = 'vault';
  state: VaultState = 'unclaimed';
  reason: string | undefined;
  private dataKey: DataKey | undefined;
  private store: ControlStore<ControlDocument> | undefined;
  private readonly keyring: KeyRing;
  private readonly volumes: VolumeManager;
  private readonly paths: { keyring: string; volumes: string; staging: string; orphans: string };
  /** Every state change, one at a time. */
  private readonly queue = new SerialQueue();
  private checkTimer: NodeJS.Timeout | undefined;
  private readonly sizeLimits: SizeLimitedFolders;
  /** daemon.store as the vault last judged it, before a full disk is taken into account. */
  private storeReport: { state: 'ok' | 'degraded' | 'fatal'; reason?: string } | undefined;
  /** The data key of an unlock whose store could not open for lack of space: opened once there is room. */
  private openWhenRoom: DataKey | undefined;

  constructor(private readonly options: VaultOptions) {
    const dir = options.stateDir;
    this.paths = {
      keyring: path.join(dir, 'keyring.json'),
      volumes: path.join(dir, 'volumes'),
      staging: path.join(dir, 'setup-staging'),
      orphans: path.join(dir, 'orphaned'),
    };
    this.keyring = this.keyRingAt(this.paths.keyring);
    this.volumes = this.volumesAt(this.paths.volumes);
    this.sizeLimits = new SizeLimitedFolders({ logger: options.logger });
  }

  get tpmAvailable(): boolean {
    return this.options.tpm !== undefined;
  }

  get controlStore(): ControlStore<ControlDocument> {
    this.assertUnlocked();
    return this.store!;
  }

  /** The mounted bootstrap volume: small secrets a TPM unlock alone must bring back (relay secret, certificates). */
  get bootstrapDir(): string {
    this.assertUnlocked();
    return this.volumes.mountpoint('bootstrap');
  }

  async start(): Promise<void> {
    await mkdir(this.options.stateDir, { recursive: true, mode: 0o700 });
    this.report('crypto', 'ok');
    await this.queue.run(async () => {
      if (!(await this.keyring.exists())) {
        await this.discardHalfSetup();
        return this.setState('unclaimed', 'not set up yet, waiting for setup');
      }
      const dataKey = await this.guard('crypto', 'broken key file', () => this.keyring.unlockWithTpm());
      if (!dataKey) return this.setState('locked', 'locked, waiting for unlock');
      this.options.logger.info('unlocked with the TPM');
      await this.open(dataKey);
    }).catch((err) => this.options.logger.error('vault start failed', { err }));
    this.checkTimer = setInterval(() => void this.queue.run(() => this.checkVolumes()), this.options.checkIntervalMs ?? 500);
  }

  async stop(): Promise<void> {
    clearInterval(this.checkTimer);
    // Volumes stay mounted: a daemon restart takes them over instead of remounting.
    await this.queue.run(async () => {
      await this.store?.close();
      this.store = undefined;
      this.dataKey?.wipe();
      this.dataKey = undefined;
    });
  }

  newRecoveryPhrase(): string {
    return generateRecoveryPhrase();
  }

  /**
   * Sets the device up. Everything is made in a staging folder; renaming the key ring into place
   * is the commit point, so a crash at any step leaves "unclaimed" and a retry starts clean.
   */
  async setup(password: string, recoveryPhrase: string): Promise<void> {
    await this.queue.run(async () => {
      if (this.state !== 'unclaimed') throw new ConflictError('this device is already set up');
      await this.discardHalfSetup();
      await mkdir(this.paths.staging, { mode: 0o700 });
      const stagedKeyring = this.keyRingAt(path.join(this.paths.staging, 'keyring.json'));
      const stagedVolumes = this.volumesAt(path.join(this.paths.staging, 'volumes'));
      const { dataKey } = await stagedKeyring.create(password, recoveryPhrase);
      for (const volume of SYSTEM_VOLUMES) await stagedVolumes.create(volume, await stagedKeyring.volumePassphrase(dataKey, volume));
      await stagedVolumes.mount('control', await stagedKeyring.volumePassphrase(dataKey, 'control'), { readOnly: false });
      const store = await this.openStore(stagedVolumes);
      await store.close();
      await stagedVolumes.unmount('control');
      await rename(path.join(this.paths.staging, 'volumes'), this.paths.volumes);
      await rename(path.join(this.paths.staging, 'keyring.json'), this.paths.keyring);
      await syncDirectory(this.options.stateDir);
      await rm(this.paths.staging, { recursive: true, force: true });
      this.options.logger.info('device set up', { tpmSealed: this.tpmAvailable });
      await this.open(dataKey);
    });
  }

  async unlock(password: string): Promise<void> {
    await this.queue.run(async () => {
      if (this.state !== 'locked') throw new ConflictError(`nothing to unlock: the device is ${this.state}`);
      const dataKey = await this.keyring.unlockWithPassphrase(password);
      await this.reseal(dataKey);
      await this.open(dataKey);
    });
  }

  async lock(): Promise<void> {
    await this.queue.run(async () => {
      this.assertUnlocked();
      // App volumes first: one still in use refuses (409) before anything else has changed.
      const system: readonly string[] = SYSTEM_VOLUMES;
      for (const volume of await this.volumes.list()) {
        if (volume.mounted && !system.includes(volume.name)) await this.volumes.unmount(volume.name);
      }
      await this.store!.close();
      this.store = undefined;
      for (const volume of [...SYSTEM_VOLUMES].reverse()) await this.volumes.unmount(volume);
      this.dataKey!.wipe();
      this.dataKey = undefined;
      this.setState('locked', 'locked, waiting for unlock');
    });
  }

  async verifyPassword(password: string): Promise<void> {
    (await this.keyring.unlockWithPassphrase(password)).wipe();
  }

  /**
   * All or nothing: `record` (the control store's note of the change) runs once the new key ring
   * is written in full and before it replaces the old one; if either fails, the old password
   * still works. A refusal for space is a DiskFullError (507 disk_full).
   */
  async changePassword(current: string, next: string, record?: () => Promise<unknown>): Promise<void> {
    await this.queue.run(async () => {
      this.assertUnlocked();
      const dataKey = await this.keyring.unlockWithPassphrase(current);
      try {
        await this.savePassphrase(dataKey, next, record);
      } finally {
        dataKey.wipe();
      }
    });
  }

  /** The state disk filled up or has room again: daemon.store says so (unless it is worse). */
  diskSpaceChanged(): void {
    if (this.storeReport) this.report('store', this.storeReport.state, this.storeReport.reason);
  }

  private async savePassphrase(dataKey: DataKey, next: string, record: (() => Promise<unknown>) | undefined): Promise<void> {
    try {
      await this.keyring.changePassphrase(dataKey, next, record);
    } catch (err) {
      if (!isNoSpaceError(err)) throw err;
      // A refusal by the store has been reported by the store; the key ring's own is reported here.
      if (!(err instanceof DiskFullError)) {
        const bytes = await stat(this.paths.keyring).then((s) => s.size, () => 4096);
        this.options.diskSpace?.noteWrite({ ok: false, noSpace: true, bytes });
      }
      throw new DiskFullError(await freeBytesAt(this.options.stateDir), 'the password was not changed, the old one still works');
    }
  }

  async rotateRecovery(password: string): Promise<string> {
    return this.queue.run(async () => {
      this.assertUnlocked();
      await this.verifyPassword(password);
      return this.keyring.rotateRecovery(this.dataKey!);
    });
  }

  /** The recovery key sets a new password; a locked device unlocks with it. */
  async resetPassword(recoveryPhrase: string, next: string, record?: () => Promise<unknown>): Promise<void> {
    await this.queue.run(async () => {
      const dataKey = await this.keyring.unlockWithRecovery(recoveryPhrase);
      const wasLocked = this.state === 'locked';
      try {
        // Opened first (the recovery key is enough to unlock), so the change can be recorded in
        // the store as part of it, all or nothing as in changePassword.
        if (wasLocked) {
          await this.reseal(dataKey);
          await this.open(dataKey);
        }
        await this.savePassphrase(dataKey, next, record);
      } finally {
        // Once open, the vault keeps the data key; otherwise it is wiped.
        if (this.dataKey !== dataKey) dataKey.wipe();
      }
    });
  }

  /**
   * For a backup, after the admin password: a copy of the data key (the caller derives the
   * archive key from it, then wipes it) and the recovery slot that lets the recovery key alone
   * reach that key again.
   */
  async backupKeys(password: string): Promise<{ dataKey: DataKey; slot: RecoverySlot }> {
    this.assertUnlocked();
    const dataKey = await this.keyring.unlockWithPassphrase(password);
    try {
      return { dataKey, slot: await this.keyring.recoverySlot(dataKey) };
    } catch (err) {
      dataKey.wipe();
      throw err;
    }
  }

  /** Names of the app volumes on disk (app-<name>), apps installed or data kept after an uninstall. */
  async appVolumeNames(): Promise<string[]> {
    this.assertUnlocked();
    return (await this.volumes.list()).filter((volume) => volume.exists && volume.name.startsWith('app-')).map((volume) => volume.name);
  }

  /**
   * Sets a fresh device up from a backup, like setup(): the key ring (around the backup's data
   * key, with a new password) and every volume are made in the staging folder, `fill` writes the
   * volumes' contents into their mount points, the control store must then open, and only then
   * does the key ring's rename commit it. A failure anywhere, a tampered archive found at its last
   * chunk included, leaves the device unclaimed, as it was.
   */
  async restore(input: { password: string; dataKey: DataKey; slot: RecoverySlot; volumes: string[]; fill: (mountpoints: ReadonlyMap<string, string>) => Promise<void> }): Promise<void> {
    await this.queue.run(async () => {
      if (this.state !== 'unclaimed') throw new ConflictError('this device is already set up; restore onto a fresh device');
      await this.discardHalfSetup();
      await mkdir(this.paths.staging, { mode: 0o700 });
      const stagedKeyring = this.keyRingAt(path.join(this.paths.staging, 'keyring.json'));
      const stagedVolumes = this.volumesAt(path.join(this.paths.staging, 'volumes'));
      const { password, dataKey, slot } = input;
      try {
        await stagedKeyring.restore(slot, dataKey, password);
        const mountpoints = new Map<string, string>();
        for (const volume of new Set([...SYSTEM_VOLUMES, ...input.volumes])) {
          const passphrase = await stagedKeyring.volumePassphrase(dataKey, volume);
          await stagedVolumes.create(volume, passphrase);
          mountpoints.set(volume, (await stagedVolumes.mount(volume, passphrase, { readOnly: false })).mountpoint);
        }
        await input.fill(mountpoints);
        // The restored store must open here (checksum, schema, migrations) before anything commits.
        await (await this.openStore(stagedVolumes)).close();
        for (const volume of mountpoints.keys()) await stagedVolumes.unmount(volume);
      } catch (err) {
        await this.discardHalfSetup().catch((cleanup) => this.options.logger.error('could not clean up a failed restore', { err: cleanup }));
        throw err;
      }
      await rename(path.join(this.paths.staging, 'volumes'), this.paths.volumes);
      await rename(path.join(this.paths.staging, 'keyring.json'), this.paths.keyring);
      await syncDirectory(this.options.stateDir);
      await rm(this.paths.staging, { recursive: true, force: true });
      this.options.logger.info('device restored from a backup', { volumes: input.volumes.length, tpmSealed: this.tpmAvailable });
      // The vault's own copy: the caller wipes the key it passed in, whatever happened.
      await this.open(new DataKey(dataKey.bytes));
    });
  }

  /** While unlocked: every system volume must be mounted; a lost mount is fatal until remounted. */
  private async checkVolumes(): Promise<void> {
    if (this.state === 'failed' && this.openWhenRoom) return this.openStoreOnceRoom();
    if (this.state !== 'unlocked') return;
    const injected = this.options.injectedFault?.();
    if (injected) return this.report('persistence', 'fatal', injected);
    for (const volume of SYSTEM_VOLUMES) {
      if ((await this.volumes.status(volume)).mounted) continue;
      this.report('persistence', 'fatal', `volume ${volume} is not mounted`);
      this.options.logger.error('volume lost its mount; remounting', { volume });
      try {
        await this.volumes.mount(volume, await this.keyring.volumePassphrase(this.dataKey!, volume), { readOnly: false });
      } catch (err) {
        this.options.logger.error('remount failed', { volume, err });
        return;
      }
    }
    this.report('persistence', 'ok');
  }

  /** An app's persistent storage: its own encrypted volume, made on first use, mounted read-write. */
  async ensureAppVolume(app: string): Promise<string> {
    return this.queue.run(async () => {
      this.assertUnlocked();
      const volume = `app-${app}`;
      const passphrase = await this.keyring.volumePassphrase(this.dataKey!, volume);
      if (!(await this.volumes.status(volume)).exists) await this.volumes.create(volume, passphrase);
      const { mountpoint } = await this.volumes.mount(volume, passphrase, { readOnly: false });
      // Its size-limited folders open with it: nothing reads the volume without their files.
      await this.sizeLimits.mountAll(mountpoint);
      return mountpoint;
    });
  }

  /** A folder of an app's mounted volume as a file system of at most `bytes` (volumes/size-limited.ts). */
  async limitAppFolder(app: string, volume: string, bytes: number | undefined, field: string): Promise<void> {
    await this.queue.run(async () => {
      this.assertUnlocked();
      const status = await this.volumes.status(`app-${app}`);
      if (!status.mounted) throw new ConflictError(`app ${app}: its volume is not mounted`);
      await this.sizeLimits.ensure(status.mountpoint, volume, bytes, field);
    });
  }

  /**
   * A shared media folder (Media, Downloads...) that apps are granted: a folder of the one shared
   * `media` volume, gocryptfs like the apps' own, so shared files are as encrypted at rest as app
   * data and lock with the device. One volume for all of them (not one per folder) because a
   * folder is only a name the apps agree on; the volume is made, and the folder in it, on the
   * first app granted it.
   */
  async ensureMediaFolder(folder: string): Promise<string> {
    if (!MEDIA_FOLDER.test(folder)) throw new BadRequestError(`media folder ${JSON.stringify(folder)}: must be a folder name such as Media or Downloads`);
    return this.queue.run(async () => {
      this.assertUnlocked();
      const passphrase = await this.keyring.volumePassphrase(this.dataKey!, MEDIA_VOLUME);
      if (!(await this.volumes.status(MEDIA_VOLUME)).exists) await this.volumes.create(MEDIA_VOLUME, passphrase);
      const dir = path.join((await this.volumes.mount(MEDIA_VOLUME, passphrase, { readOnly: false })).mountpoint, folder);
      await mkdir(dir, { recursive: true });
      return dir;
    });
  }

  /** Where an app's volume is open now, or undefined (not made, closed, locked): nothing is mounted by asking. */
  async appVolumeMountpoint(app: string): Promise<string | undefined> {
    if (this.state !== 'unlocked') return undefined;
    const status = await this.volumes.status(`app-${app}`);
    return status.mounted && !status.stale ? status.mountpoint : undefined;
  }

  /** The shared media folders made so far (their names), without mounting anything: [] while locked or before the first grant. */
  async mediaFolders(): Promise<string[]> {
    if (this.state !== 'unlocked') return [];
    const status = await this.volumes.status(MEDIA_VOLUME);
    if (!status.mounted) return [];
    const entries = await readdir(status.mountpoint, { withFileTypes: true });
    return entries.filter((entry) => entry.isDirectory() && MEDIA_FOLDER.test(entry.name)).map((entry) => entry.name).sort();
  }

  /** Unmounts an app's volume, keeping its data (an uninstall without purge): it stays encrypted until reinstalled. */
  async closeAppVolume(app: string): Promise<void> {
    await this.queue.run(async () => {
      if (this.state !== 'unlocked') return;
      const volume = `app-${app}`;
      if ((await this.volumes.status(volume)).exists) await this.volumes.unmount(volume);
    });
  }

  /** Purges an app's data for good (the API asks for confirmation first). */
  async removeAppVolume(app: string): Promise<void> {
    await this.queue.run(async () => {
      this.assertUnlocked();
      const volume = `app-${app}`;
      if (!(await this.volumes.status(volume)).exists) return;
      await this.volumes.destroy(volume);
      await this.keyring.forgetVolume(this.dataKey!, volume);
      this.options.logger.warn('app data purged', { app });
    });
  }

  assertUnlocked(): void {
    if (this.state === 'locked') throw new LockedError();
    if (this.state === 'unclaimed') throw new ConflictError('this device is not set up yet');
    if (this.state === 'failed') throw new UnavailableError(`encrypted state unavailable: ${this.reason}`);
  }

  private async open(dataKey: DataKey): Promise<void> {
    await this.guard('persistence', 'volume failed to mount', async () => {
      for (const volume of SYSTEM_VOLUMES) {
        await this.volumes.mount(volume, await this.keyring.volumePassphrase(dataKey, volume), { readOnly: false });
      }
    });
    try {
      this.store = await this.guard('store', 'control store unusable', () => this.openStoreUsingReserve());
    } catch (err) {
      // Opening takes the writer lock, a small file: a full disk refuses even that, and there was
      // no reserve left to give up. Not a fault to restart for: the check timer opens the store as
      // soon as there is room.
      if (isNoSpaceError(err)) this.openWhenRoom = dataKey;
      throw err;
    }
    this.dataKey = dataKey;
    this.setState('unlocked');
  }

  /** A store that cannot open for lack of space gets the disk reserve (system/disk-space.ts) and one more try. */
  private async openStoreUsingReserve(): Promise<ControlStore<ControlDocument>> {
    try {
      return await this.openStore(this.volumes);
    } catch (err) {
      if (!isNoSpaceError(err) || !(await this.options.diskSpace?.releaseReserve('to open the control store'))) throw err;
      return this.openStore(this.volumes);
    }
  }

  /** From the check timer while an unlock waits for space (see open); quiet while still full. */
  private async openStoreOnceRoom(): Promise<void> {
    if (this.options.diskSpace?.status.full) return;
    const dataKey = this.openWhenRoom!;
    try {
      this.store = await this.openStore(this.volumes);
    } catch (err) {
      if (isNoSpaceError(err)) return; // still no room: the next check tries again
      this.openWhenRoom = undefined;
      dataKey.wipe();
      const reason = `control store unusable: ${(err as Error).message}`;
      this.report('store', 'fatal', reason);
      this.reason = reason;
      this.options.onStateChange?.('failed', reason);
      this.options.logger.error('fatal persistence fault', { component: 'store', reason });
      return;
    }
    this.openWhenRoom = undefined;
    this.report('store', 'ok');
    this.dataKey = dataKey;
    this.options.logger.info('control store opened: the state disk has room again');
    this.setState('unlocked');
  }

  private async openStore(volumes: VolumeManager): Promise<ControlStore<ControlDocument>> {
    return ControlStore.open<ControlDocument>({
      dir: path.join(volumes.mountpoint('control'), 'store'),
      logger: this.options.logger,
      schemaVersion: CONTROL_SCHEMA_VERSION,
      migrations: CONTROL_MIGRATIONS,
      initial: initialControlDocument,
      onWrite: (outcome) => this.options.diskSpace?.noteWrite(outcome),
    });
  }

  private async reseal(dataKey: DataKey): Promise<void> {
    if (!this.tpmAvailable) return;
    const sealed = await this.keyring.reseal(dataKey);
    this.options.logger.info(sealed ? 're-sealed the data key to the TPM' : 'could not re-seal to the TPM');
  }

  /** Leftovers of a setup that did not reach its commit point: unusable without a key ring. */
  private async discardHalfSetup(): Promise<void> {
    if (await exists(this.paths.staging)) {
      const staged = this.volumesAt(path.join(this.paths.staging, 'volumes'));
      for (const volume of await staged.list()) if (volume.mounted) await staged.unmount(volume.name);
      await rm(this.paths.staging, { recursive: true, force: true });
      this.options.logger.warn('removed an unfinished setup');
    }
    if (await exists(this.paths.volumes)) {
      // Never delete data: volumes without a key ring cannot be opened, but a person may want them.
      for (const volume of await this.volumes.list()) if (volume.mounted) await this.volumes.unmount(volume.name);
      await mkdir(this.paths.orphans, { recursive: true, mode: 0o700 });
      const target = path.join(this.paths.orphans, `volumes-${(await readdir(this.paths.orphans)).length + 1}`);
      await rename(this.paths.volumes, target);
      this.options.logger.warn('moved volumes without a key ring aside', { to: target });
    }
  }

  /** Runs a step whose failure is a fatal fault of one component: reported, state failed. */
  private async guard<T>(component: string, what: string, step: () => Promise<T>): Promise<T> {
    try {
      const result = await step();
      this.report(component, 'ok');
      return result;
    } catch (err) {
      if (isSecretError(err)) throw err;
      const noSpace = isNoSpaceError(err);
      const reason = noSpace ? `${what}: state disk full; it opens by itself once space is freed` : `${what}: ${(err as Error).message}`;
      // Degraded, not fatal, for a full disk: readiness stays up, so MicroOS's health-checker does
      // not roll back an OS snapshot (and reboot into the same full disk) for a data problem.
      this.report(component, noSpace ? 'degraded' : 'fatal', reason);
      this.state = 'failed';
      this.reason = reason;
      this.options.onStateChange?.('failed', reason);
      this.options.logger.error('fatal persistence fault', { component, reason });
      if (!noSpace) throw new UnavailableError(reason);
      this.options.diskSpace?.noteWrite({ ok: false, noSpace: true, bytes: 4096 });
      throw new DiskFullError(await freeBytesAt(this.options.stateDir), `${what}; the device opens by itself once space is freed`);
    }
  }

  private setState(state: VaultState, reason?: string): void {
    this.state = state;
    this.reason = reason;
    this.report('crypto', 'ok', reason);
    this.options.onStateChange?.(state, reason);
  }

  private report(component: string, state: 'ok' | 'degraded' | 'fatal', reason?: string): void {
    if (component === 'store') {
      this.storeReport = { state, reason };
      const disk = this.options.diskSpace?.status;
      if (state === 'ok' && disk?.full) return this.options.health.set('daemon.store', 'degraded', disk.reason);
    }
    this.options.health.set(`daemon.${component}`, state, reason);
  }

  private keyRingAt(file: string): KeyRing {
    return new KeyRing({ file, tpm: this.options.tpm, logger: this.options.logger, ...this.options.keyRing });
  }

  private volumesAt(root: string): VolumeManager {
    return new VolumeManager({ root, logger: this.options.logger });
  }
}

/** A wrong password or recovery key is the caller's mistake, not a fault of the device. */
function isSecretError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'status' in err && [400, 401].includes((err as { status: number }).status);
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false);
}
