// Backup and restore of the whole device: the control store, the bootstrap volume and every app
// volume, in one encrypted archive (archive-crypto.ts around archive-contents.ts). A backup is
// opened by the recovery key alone, so it can be kept anywhere. Restore only onto a fresh device,
// all or nothing: the vault stages everything and commits only after the last chunk verified.
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import path from 'node:path';
import { ConflictError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { CONTROL_SCHEMA_VERSION } from '../control-document.js';
import { openRecoverySlot, type DataKey, type RecoverySlot } from '../crypto/keyring.js';
import { entropyFromRecoveryPhrase } from '../crypto/recovery-phrase.js';
import { encodeStoreFile } from '../store/file-format.js';
import type { Vault } from '../vault.js';
import { ArchiveOpener, ArchiveSealer, deriveArchiveKey, newArchive } from './archive-crypto.js';
import { CONTENTS_FORMAT, CONTROL_NAME, ContentsWriter, MANIFEST_NAME, readContents, type BackupManifest } from './archive-contents.js';
import { BackupArchiveError, BackupBusyError, WrongBackupKeyError } from './errors.js';
import type { BackupProgress } from './progress.js';

export type { BackupProgress } from './progress.js';


export interface BackupServiceOptions {
  vault: Vault;
  /**
   * Runs `work` with the app's containers stopped, starting them again after (the app manager's
   * quiesce); when apps are not running, `work` runs as is.
   */
  quiesce: <T>(app: string, work: () => Promise<T>) => Promise<T>;
  /** Progress goes to the events stream. */
  publish: (progress: BackupProgress) => void;
  logger: Logger;
  deviceName: () => string;
  version: string;
  now?: () => number;
  /** Tests: small chunks, so that a small archive has several. */
  chunkBytes?: number;
}

/** How often progress is published while bytes flow. */
const PROGRESS_INTERVAL_MS = 250;

export class BackupService {
  private busy: 'backup' | 'restore' | undefined;
  private last: BackupProgress | undefined;

  constructor(private readonly options: BackupServiceOptions) {}

  /** The last restore's progress (a fresh device has no session for the events stream: the wizard asks here). */
  get restoreStatus(): BackupProgress | { kind: 'restore'; state: 'idle' } {
    return this.last?.kind === 'restore' ? this.last : { kind: 'restore', state: 'idle' };
  }

  /**
   * Checks the admin password, then returns the archive as a stream, made while it is read: the
   * control store as of now, the bootstrap volume, then each app volume with its app stopped for
   * the copy. An error midway ends the stream without its final chunk, so the file is refused
   * as truncated rather than restored short.
   */
  async backup(password: string): Promise<{ stream: Readable; filename: string; apps: string[] }> {
    const { logger } = this.options;
    if (this.busy) throw new BackupBusyError(this.busy);
    // Taken before the first await: two backups asked at once must not both start.
    this.busy = 'backup';
    let prepared: Awaited<ReturnType<BackupService['prepareBackup']>>;
    try {
      prepared = await this.prepareBackup(password);
    } catch (err) {
      this.busy = undefined;
      throw err;
    }
    const { key, header, apps, volumes, controlFile, manifest } = prepared;
    const writer = new ContentsWriter();
    const sealer = new ArchiveSealer(key, header);
    key.fill(0);
    const progress = this.tracker({ kind: 'backup', state: 'running', step: 'control', bytes: 0 });
    const output = counting((bytes) => progress.add(bytes));
    const fill = async () => {
      await writer.addFile(MANIFEST_NAME, JSON.stringify(manifest, null, 2));
      await writer.addFile(CONTROL_NAME, controlFile);
      for (const volume of volumes) {
        progress.step(volume);
        await this.copyVolume(writer, volume, apps);
      }
      progress.step('finishing');
      writer.finalize();
    };
    const done = Promise.all([fill(), pipeline(writer.stream, sealer, output)]);
    done.then(
      () => {
        progress.finish({ state: 'succeeded', apps });
        logger.info('backup written', { apps: apps.length, volumes: volumes.length, bytes: progress.bytes });
      },
      (err: Error) => {
        // The client's response breaks off: without the final chunk the file will not restore.
        writer.stream.destroy();
        output.destroy(err);
        progress.finish({ state: 'failed', error: { code: 'backup_failed', message: err.message } });
        logger.error('backup failed', { err });
      },
    ).finally(() => (this.busy = undefined));
    const stamp = header.createdAt.replace(/[:]/g, '').replace(/\.\d+Z$/, 'Z');
    return { stream: output, filename: `${this.options.deviceName()}-${stamp}.piccolo-backup`, apps };
  }

  /**
   * Restores a fresh device from an archive and the recovery key, with a new admin password.
   * The recovery key is tried on the header before anything is written; a tampered or cut
   * archive fails when its bad chunk arrives, and the vault throws away what was staged.
   */
  async restore(source: Readable, input: { recoveryKey: string; password: string; totalBytes?: number }): Promise<BackupManifest> {
    const { vault, logger } = this.options;
    if (this.busy) throw new BackupBusyError(this.busy);
    if (vault.state !== 'unclaimed') throw new ConflictError('this device is already set up; restore onto a fresh device');
    entropyFromRecoveryPhrase(input.recoveryKey).fill(0); // a typo is a 400 naming the word, before any upload is read
    this.busy = 'restore';
    const progress = this.tracker({ kind: 'restore', state: 'running', step: 'reading', bytes: 0, ...(input.totalBytes ? { totalBytes: input.totalBytes } : {}) });
    let dataKey: DataKey | undefined;
    let slot: RecoverySlot | undefined;
    const opener = new ArchiveOpener((header) => {
      const opened = openRecoverySlot(header.slot, input.recoveryKey);
      if (opened.status === 'wrong-key') throw new WrongBackupKeyError();
      if (opened.status === 'damaged') throw new BackupArchiveError('tampered', 'the recovery slot in the header is damaged');
      dataKey = opened.dataKey;
      slot = header.slot;
      return deriveArchiveKey(dataKey.bytes, Buffer.from(header.salt, 'base64'));
    });
    // Piped, not pipeline(): a refused archive must leave the request open, drained, so the client reads the 400.
    const interrupted = () => opener.destroy(new ConflictError('the upload was interrupted before it ended'));
    source.once('aborted', interrupted);
    source.once('error', interrupted);
    source.pipe(counting((bytes) => progress.add(bytes))).pipe(opener);
    let restoring: Promise<void> | undefined;
    const contents: Promise<BackupManifest> = readContents(opener, {
      onManifest: (manifest) =>
        new Promise((resolve, reject) => {
          restoring = vault.restore({
            password: input.password,
            dataKey: dataKey!,
            slot: slot!,
            volumes: manifest.volumes,
            fill: async (mountpoints) => {
              resolve({ volumes: mountpoints, controlStoreDir: path.join(mountpoints.get('control')!, 'store') });
              await contents;
            },
          });
          restoring.catch(reject);
        }),
      onVolume: (volume) => progress.step(volume),
    });
    try {
      const manifest = await contents;
      progress.step('finishing');
      await restoring;
      progress.finish({ state: 'succeeded', apps: manifest.apps });
      logger.info('restored from a backup', { apps: manifest.apps, volumes: manifest.volumes, bytes: progress.bytes });
      return manifest;
    } catch (err) {
      source.unpipe();
      source.resume(); // drain the rest of the upload, so the client reads the answer
      opener.destroy();
      await restoring?.catch(() => {});
      const reply = err as { code?: string; message: string };
      progress.finish({ state: 'failed', error: { code: reply.code ?? 'internal', message: reply.message } });
      logger.warn('restore refused or failed; the device stays fresh', { err });
      throw err;
    } finally {
      source.off('aborted', interrupted);
      source.off('error', interrupted);
      dataKey?.wipe();
      this.busy = undefined;
    }
  }

  /** The password checked, the archive's key and header, and what goes in as of now. */
  private async prepareBackup(password: string) {
    const { vault } = this.options;
    const { dataKey, slot } = await vault.backupKeys(password);
    let archive: ReturnType<typeof newArchive>;
    try {
      archive = newArchive(dataKey.bytes, slot, { chunkBytes: this.options.chunkBytes, now: this.date() });
    } finally {
      dataKey.wipe();
    }
    try {
      const store = vault.controlStore;
      const apps = Object.keys(store.data.apps).sort();
      const controlFile = encodeStoreFile({ schemaVersion: CONTROL_SCHEMA_VERSION, rev: store.rev, data: store.data });
      const volumes = ['bootstrap', ...(await vault.appVolumeNames())];
      const manifest: BackupManifest = {
        format: CONTENTS_FORMAT,
        createdAt: archive.header.createdAt,
        device: { name: this.options.deviceName(), version: this.options.version },
        control: { schemaVersion: CONTROL_SCHEMA_VERSION, rev: store.rev },
        volumes,
        apps,
      };
      return { ...archive, apps, volumes, controlFile, manifest };
    } catch (err) {
      archive.key.fill(0);
      throw err;
    }
  }

  /** Copies one volume; an installed app is stopped for it and started again after. */
  private async copyVolume(writer: ContentsWriter, volume: string, apps: string[]): Promise<void> {
    const { vault, quiesce } = this.options;
    if (volume === 'bootstrap') return writer.addVolume(volume, vault.bootstrapDir);
    const app = volume.slice('app-'.length);
    if (apps.includes(app)) return quiesce(app, async () => writer.addVolume(volume, await vault.ensureAppVolume(app)));
    // Data an uninstall kept: mounted for the copy only, then closed as it was.
    try {
      await writer.addVolume(volume, await vault.ensureAppVolume(app));
    } finally {
      await vault.closeAppVolume(app);
    }
  }

  private date(): Date {
    return new Date((this.options.now ?? Date.now)());
  }

  /** Progress kept for the status endpoint and published at most every PROGRESS_INTERVAL_MS. */
  private tracker(initial: BackupProgress) {
    const current: BackupProgress = { ...initial };
    let lastPublished = 0;
    const publish = (force: boolean) => {
      const now = Date.now();
      if (!force && now - lastPublished < PROGRESS_INTERVAL_MS) return;
      lastPublished = now;
      this.last = { ...current };
      this.options.publish({ ...current });
    };
    publish(true);
    return {
      get bytes() {
        return current.bytes;
      },
      add(bytes: number) {
        current.bytes += bytes;
        publish(false);
      },
      step(step: string) {
        current.step = step;
        publish(true);
      },
      finish(end: Pick<BackupProgress, 'state' | 'error' | 'apps'>) {
        Object.assign(current, end, { step: 'done' });
        publish(true);
      },
    };
  }
}

/** A pass-through that counts what flows (progress) without taking the data from the next reader. */
function counting(onBytes: (bytes: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
}
