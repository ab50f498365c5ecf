// The key hierarchy: one random data key, wrapped three ways (admin passphrase, recovery phrase,
// TPM-sealed secret), and per-volume passphrases wrapped by the data key. All of it lives in one
// small JSON file (see keyring-file.ts and docs/key-hierarchy.md). Keys never reach the disk in
// the clear and are never logged. Read paths never write; a broken file is reported, not replaced.
import { hkdfSync, randomBytes, scrypt as scryptCallback } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { BadRequestError } from '../../common/errors.js';
import { DurableWriteError, stageFileDurable, writeFileDurable } from '../../common/durable.js';
import type { Logger } from '../../common/logger.js';
import { DATA_KEY_BYTES, DataKey } from './data-key.js';
import { ForeignDataKeyError, KeyFileBrokenError, KeyRingExistsError, KeyRingMissingError, WrongPassphraseError, WrongRecoveryPhraseError } from './errors.js';
import { KEYRING_FORMAT, parseKeyRingFile, serializeKeyRingFile, type KeyRingFile, type PassphraseWrap, type RecoveryWrap, type ScryptParams, type TpmWrap } from './keyring-file.js';
import { entropyFromRecoveryPhrase, RECOVERY_ENTROPY_BYTES, recoveryPhraseFromEntropy } from './recovery-phrase.js';
import type { SecretSealer } from './tpm.js';
import { checkMatches, keyCheck, unwrapSecret, wrapSecret, type Wrapped } from './wrap.js';
import { SerialQueue } from '../../common/serial-queue.js';

export type { ScryptParams } from './keyring-file.js';
export { DataKey } from './data-key.js';

/** A new random recovery phrase, for a setup flow that shows it before create() (see create). */
export function generateRecoveryPhrase(): string {
  const entropy = randomBytes(RECOVERY_ENTROPY_BYTES);
  try {
    return recoveryPhraseFromEntropy(entropy);
  } finally {
    entropy.fill(0);
  }
}

/**
 * 64 MiB, ~0.2 s on the build machine, so ~0.8-1.2 s on a Raspberry Pi 4 (4-6x slower single
 * threaded). Measured figures in docs/key-hierarchy.md. Stored per wrap, so raising it later
 * only applies from the next passphrase change.
 */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 16, r: 8, p: 1 };

const SALT_BYTES = 16;
const VOLUME_SECRET_BYTES = 32;
const VOLUME_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface KeyRingOptions {
  /** e.g. <stateDir>/keyring.json */
  file: string;
  logger: Logger;
  /** Absent when the device has no TPM: then only the passphrase and the recovery phrase unlock. */
  tpm?: SecretSealer;
  /** scrypt parameters for new passphrase wraps; tests pass cheap ones. */
  scrypt?: ScryptParams;
  clock?: () => Date;
}

export interface CreatedKeyRing {
  dataKey: DataKey;
  /** Shown to the admin once, to write down; not stored anywhere. */
  recoveryPhrase: string;
  /** Whether the TPM sealed a copy, so the next boot unlocks by itself. */
  tpmSealed: boolean;
}

export class KeyRing {
  private readonly file: string;
  private readonly logger: Logger;
  private readonly scrypt: ScryptParams;
  private readonly clock: () => Date;
  private readonly writes = new SerialQueue();

  constructor(private readonly options: KeyRingOptions) {
    this.file = options.file;
    this.logger = options.logger;
    this.scrypt = options.scrypt ?? DEFAULT_SCRYPT;
    this.clock = options.clock ?? (() => new Date());
  }

  async exists(): Promise<boolean> {
    try {
      await stat(this.file);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /**
   * Sets the device up. Refuses when a key ring exists, even a broken one: nothing is ever replaced.
   * recoveryPhrase: one the admin was already shown (generateRecoveryPhrase); a new one otherwise.
   */
  create(passphrase: string, recoveryPhrase?: string): Promise<CreatedKeyRing> {
    return this.writes.run(async () => {
      if (await this.exists()) throw new KeyRingExistsError(this.file);
      const recoveryEntropy = recoveryPhrase === undefined ? randomBytes(RECOVERY_ENTROPY_BYTES) : entropyFromRecoveryPhrase(recoveryPhrase);
      const dataKey = new DataKey(randomBytes(DATA_KEY_BYTES));
      const keyId = randomBytes(8).toString('hex');
      const now = this.clock().toISOString();
      try {
        const doc: KeyRingFile = {
          format: KEYRING_FORMAT,
          keyId,
          dataKeyCheck: keyCheck(dataKey.bytes, dataKeyPurpose(keyId)).toString('base64'),
          createdAt: now,
          updatedAt: now,
          passphrase: await this.wrapWithPassphrase(keyId, dataKey, passphrase),
          recovery: wrapWithRecovery(keyId, dataKey, recoveryEntropy),
          volumes: {},
        };
        const tpmSealed = await this.writeNew(doc, dataKey);
        this.logger.info('key ring created', { keyId, tpmSealed });
        return { dataKey, recoveryPhrase: recoveryPhraseFromEntropy(recoveryEntropy), tpmSealed };
      } catch (err) {
        dataKey.wipe();
        throw err;
      } finally {
        recoveryEntropy.fill(0);
      }
    });
  }

  /**
   * A key ring around a data key restored from a backup: the backup's key id and recovery wrap,
   * so the same recovery key keeps opening the device and its backups; a new passphrase wrap and a
   * fresh TPM seal. Refuses when a key ring exists, as create() does.
   */
  restore(slot: RecoverySlot, dataKey: DataKey, passphrase: string): Promise<{ tpmSealed: boolean }> {
    return this.writes.run(async () => {
      if (await this.exists()) throw new KeyRingExistsError(this.file);
      if (!checkMatches(dataKey.bytes, dataKeyPurpose(slot.keyId), slot.dataKeyCheck)) throw new ForeignDataKeyError();
      const now = this.clock().toISOString();
      const doc: KeyRingFile = {
        format: KEYRING_FORMAT,
        keyId: slot.keyId,
        dataKeyCheck: slot.dataKeyCheck,
        createdAt: now,
        updatedAt: now,
        passphrase: await this.wrapWithPassphrase(slot.keyId, dataKey, passphrase),
        recovery: { ...slot.recovery },
        volumes: {},
      };
      const tpmSealed = await this.writeNew(doc, dataKey);
      this.logger.info('key ring restored from a backup', { keyId: slot.keyId, tpmSealed });
      return { tpmSealed };
    });
  }

  /** The recovery slot's public parts, for a backup's header (see openRecoverySlot). */
  async recoverySlot(dataKey: DataKey): Promise<RecoverySlot> {
    const doc = await this.load();
    this.assertOwnKey(doc, dataKey);
    return { keyId: doc.keyId, dataKeyCheck: doc.dataKeyCheck, recovery: { ...doc.recovery } };
  }

  async unlockWithPassphrase(passphrase: string): Promise<DataKey> {
    const doc = await this.load();
    const wrap = doc.passphrase;
    const wrappingKey = await deriveFromPassphrase(passphrase, Buffer.from(wrap.salt, 'base64'), wrap.params);
    try {
      return this.openDataKey(doc, wrappingKey, wrap, 'passphrase', () => new WrongPassphraseError());
    } finally {
      wrappingKey.fill(0);
    }
  }

  /** Throws InvalidRecoveryPhraseError for a typo, WrongRecoveryPhraseError for a valid phrase that does not fit. */
  async unlockWithRecovery(phrase: string): Promise<DataKey> {
    const entropy = entropyFromRecoveryPhrase(phrase);
    const doc = await this.load();
    const wrappingKey = deriveFromRecovery(entropy, Buffer.from(doc.recovery.salt, 'base64'));
    entropy.fill(0);
    try {
      return this.openDataKey(doc, wrappingKey, doc.recovery, 'recovery', () => new WrongRecoveryPhraseError());
    } finally {
      wrappingKey.fill(0);
    }
  }

  /**
   * The unattended unlock after a reboot. undefined when there is no TPM, nothing sealed, or the
   * TPM refuses (PCRs changed, TPM cleared or gone): the caller then asks for the passphrase and
   * calls reseal(). Throws only for a broken key file.
   */
  async unlockWithTpm(): Promise<DataKey | undefined> {
    const doc = await this.load();
    if (!this.options.tpm || !doc.tpm) return undefined;
    let secret: Buffer | undefined;
    try {
      secret = await this.options.tpm.unseal(doc.tpm.sealed);
    } catch (err) {
      this.logger.warn('TPM unseal failed; the passphrase is needed', { err });
      return undefined;
    }
    if (!secret) {
      this.logger.info('TPM policy no longer matches (PCRs changed); the passphrase is needed', { pcrs: doc.tpm.sealed.pcrs });
      return undefined;
    }
    try {
      const unwrapped = unwrapSecret(secret, doc.tpm, wrapPurpose(doc.keyId, 'tpm'));
      if (unwrapped.status === 'wrong-key') {
        // The TPM gave back a secret, but not this wrap's: a blob from another key ring.
        this.logger.warn('TPM-sealed secret does not match the key ring; the passphrase is needed');
        return undefined;
      }
      return this.toDataKey(doc, unwrapped, 'tpm');
    } finally {
      secret.fill(0);
    }
  }

  /**
   * Re-wraps the data key under a new passphrase; no data is re-encrypted. All or nothing: the
   * new file is written in full beside the old one first (the step that needs disk space), then
   * `beforeReplace` runs (e.g. recording the change in the control store), and only then is the
   * old file replaced. If writing or `beforeReplace` fails, the old passphrase still works and the
   * log says so; the log says "changed" only once the new one does.
   */
  async changePassphrase(dataKey: DataKey, newPassphrase: string, beforeReplace?: () => Promise<unknown>): Promise<void> {
    try {
      await this.update(dataKey, async (doc) => void (doc.passphrase = await this.wrapWithPassphrase(doc.keyId, dataKey, newPassphrase)), beforeReplace);
    } catch (err) {
      if (err instanceof DurableWriteError && err.replaced) {
        // Renamed into place, so the new passphrase works; only the directory fsync failed.
        this.logger.warn('admin passphrase changed, but its directory sync failed: a power loss now could bring the old one back', { err });
        return;
      }
      this.logger.error('admin passphrase change failed; the old passphrase still works', { err });
      throw err;
    }
    this.logger.info('admin passphrase changed');
  }

  /** A new recovery phrase; the old one stops working. */
  rotateRecovery(dataKey: DataKey): Promise<string> {
    return this.update(dataKey, (doc) => {
      const entropy = randomBytes(RECOVERY_ENTROPY_BYTES);
      try {
        doc.recovery = wrapWithRecovery(doc.keyId, dataKey, entropy);
        this.logger.info('recovery phrase replaced');
        return recoveryPhraseFromEntropy(entropy);
      } finally {
        entropy.fill(0);
      }
    });
  }

  /** Seals a fresh secret to the TPM's current PCRs. false (and the file untouched) when the TPM cannot. */
  reseal(dataKey: DataKey): Promise<boolean> {
    return this.update(dataKey, async (doc) => {
      const tpm = await this.wrapWithTpm(doc.keyId, dataKey);
      if (!tpm) return false;
      doc.tpm = tpm;
      this.logger.info('data key resealed to the TPM', { pcrs: tpm.sealed.pcrs });
      return true;
    });
  }

  /**
   * The gocryptfs passphrase of a volume: 43 base64url characters from 32 random bytes, made on
   * first request and stable afterwards. A Buffer so the caller can wipe it after use.
   */
  async volumePassphrase(dataKey: DataKey, volumeName: string): Promise<Buffer> {
    assertVolumeName(volumeName);
    const purpose = (doc: KeyRingFile) => wrapPurpose(doc.keyId, `volume/${volumeName}`);
    const existing = await this.load();
    this.assertOwnKey(existing, dataKey);
    const wrapped = existing.volumes[volumeName];
    if (wrapped) return this.openVolumeSecret(dataKey, wrapped, volumeName, purpose(existing));
    return this.update(dataKey, (doc) => {
      // Another call may have made it while this one waited for the lock.
      const raced = doc.volumes[volumeName];
      if (raced) return this.openVolumeSecret(dataKey, raced, volumeName, purpose(doc));
      const secret = randomBytes(VOLUME_SECRET_BYTES);
      try {
        doc.volumes[volumeName] = wrapSecret(dataKey.bytes, secret, purpose(doc));
        this.logger.info('volume passphrase created', { volume: volumeName });
        return Buffer.from(secret.toString('base64url'), 'ascii');
      } finally {
        secret.fill(0);
      }
    });
  }

  /** Drops a volume's passphrase after the volume is destroyed: its ciphertext can never be read again. */
  async forgetVolume(dataKey: DataKey, volumeName: string): Promise<void> {
    assertVolumeName(volumeName);
    return this.update(dataKey, (doc) => {
      if (!(volumeName in doc.volumes)) return;
      delete doc.volumes[volumeName];
      this.logger.info('volume passphrase forgotten', { volume: volumeName });
    });
  }

  // ---- internals ----

  private async load(): Promise<KeyRingFile> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new KeyRingMissingError(this.file);
      throw err;
    }
    return parseKeyRingFile(text, this.file);
  }

  /**
   * Read, change, write durably; serialized so two writers cannot lose each other's change.
   * beforeReplace runs once the new file is staged, before it replaces the old; if it throws,
   * the staged file is discarded and the old one stays.
   */
  private update<T>(dataKey: DataKey, change: (doc: KeyRingFile) => T | Promise<T>, beforeReplace?: () => Promise<unknown>): Promise<T> {
    return this.writes.run(async () => {
      const doc = await this.load();
      this.assertOwnKey(doc, dataKey);
      const before = serializeKeyRingFile(doc);
      const result = await change(doc);
      // A change that changed nothing (a reseal the TPM refused) leaves the file as it was.
      if (serializeKeyRingFile(doc) !== before) {
        doc.updatedAt = this.clock().toISOString();
        const staged = await stageFileDurable(this.file, serializeKeyRingFile(doc), 0o600);
        try {
          await beforeReplace?.();
        } catch (err) {
          await staged.discard();
          throw err;
        }
        await staged.commit();
      }
      return result;
    });
  }

  private assertOwnKey(doc: KeyRingFile, dataKey: DataKey): void {
    if (!checkMatches(dataKey.bytes, dataKeyPurpose(doc.keyId), doc.dataKeyCheck)) throw new ForeignDataKeyError();
  }

  private openDataKey(doc: KeyRingFile, wrappingKey: Buffer, wrap: Wrapped, slot: 'passphrase' | 'recovery', wrongSecret: () => Error): DataKey {
    const unwrapped = unwrapSecret(wrappingKey, wrap, wrapPurpose(doc.keyId, slot));
    if (unwrapped.status === 'wrong-key') throw wrongSecret();
    return this.toDataKey(doc, unwrapped, slot);
  }

  private toDataKey(doc: KeyRingFile, unwrapped: { status: 'ok'; secret: Buffer } | { status: 'damaged' }, slot: string): DataKey {
    if (unwrapped.status === 'damaged') throw new KeyFileBrokenError(this.file, `the ${slot} wrap fails its authentication tag`);
    const { secret } = unwrapped;
    try {
      if (secret.length !== DATA_KEY_BYTES || !checkMatches(secret, dataKeyPurpose(doc.keyId), doc.dataKeyCheck)) {
        throw new KeyFileBrokenError(this.file, `the ${slot} wrap holds a key that does not match the data key check`);
      }
      return new DataKey(secret);
    } finally {
      secret.fill(0);
    }
  }

  private openVolumeSecret(dataKey: DataKey, wrapped: Wrapped, volumeName: string, purpose: string): Buffer {
    const unwrapped = unwrapSecret(dataKey.bytes, wrapped, purpose);
    // The data key was checked, so any failure here is damage to the file.
    if (unwrapped.status !== 'ok') throw new KeyFileBrokenError(this.file, `the passphrase of volume ${volumeName} does not decrypt`);
    try {
      return Buffer.from(unwrapped.secret.toString('base64url'), 'ascii');
    } finally {
      unwrapped.secret.fill(0);
    }
  }

  private async wrapWithPassphrase(keyId: string, dataKey: DataKey, passphrase: string): Promise<PassphraseWrap> {
    if (typeof passphrase !== 'string' || passphrase.length === 0) throw new BadRequestError('the passphrase must not be empty');
    const salt = randomBytes(SALT_BYTES);
    const params = { ...this.scrypt };
    const wrappingKey = await deriveFromPassphrase(passphrase, salt, params);
    try {
      return { kdf: 'scrypt', salt: salt.toString('base64'), params, ...wrapSecret(wrappingKey, dataKey.bytes, wrapPurpose(keyId, 'passphrase')) };
    } finally {
      wrappingKey.fill(0);
    }
  }

  /** Seals a TPM copy when it can and writes a new key file; whether the TPM sealed. */
  private async writeNew(doc: KeyRingFile, dataKey: DataKey): Promise<boolean> {
    const tpm = await this.wrapWithTpm(doc.keyId, dataKey);
    if (tpm) doc.tpm = tpm;
    await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    await writeFileDurable(this.file, serializeKeyRingFile(doc), 0o600);
    return Boolean(tpm);
  }

  /** undefined when there is no TPM or it cannot seal now; a device without TPM is a normal case. */
  private async wrapWithTpm(keyId: string, dataKey: DataKey): Promise<TpmWrap | undefined> {
    if (!this.options.tpm) return undefined;
    const secret = randomBytes(32);
    try {
      const sealed = await this.options.tpm.seal(secret);
      return { sealed, ...wrapSecret(secret, dataKey.bytes, wrapPurpose(keyId, 'tpm')) };
    } catch (err) {
      this.logger.warn('cannot seal to the TPM; unlocking will need the passphrase', { err });
      return undefined;
    } finally {
      secret.fill(0);
    }
  }
}

/**
 * What a backup carries so that the recovery key alone opens it: the recovery wrap of the data key
 * and what identifies that key. Safe to store in the clear: the wrap is AES-GCM under a key
 * derived from 256 random bits, and the checks only confirm a guess of the key.
 */
export interface RecoverySlot {
  keyId: string;
  dataKeyCheck: string;
  recovery: RecoveryWrap;
}

export type OpenedSlot = { status: 'ok'; dataKey: DataKey } | { status: 'wrong-key' } | { status: 'damaged' };

/** The data key in a recovery slot, with the recovery phrase. Throws InvalidRecoveryPhraseError for a typo. */
export function openRecoverySlot(slot: RecoverySlot, phrase: string): OpenedSlot {
  const entropy = entropyFromRecoveryPhrase(phrase);
  const wrappingKey = deriveFromRecovery(entropy, Buffer.from(slot.recovery.salt, 'base64'));
  entropy.fill(0);
  try {
    const unwrapped = unwrapSecret(wrappingKey, slot.recovery, wrapPurpose(slot.keyId, 'recovery'));
    if (unwrapped.status !== 'ok') return unwrapped;
    try {
      const { secret } = unwrapped;
      if (secret.length !== DATA_KEY_BYTES || !checkMatches(secret, dataKeyPurpose(slot.keyId), slot.dataKeyCheck)) return { status: 'damaged' };
      return { status: 'ok', dataKey: new DataKey(secret) };
    } finally {
      unwrapped.secret.fill(0);
    }
  } finally {
    wrappingKey.fill(0);
  }
}

function wrapWithRecovery(keyId: string, dataKey: DataKey, entropy: Buffer): RecoveryWrap {
  const salt = randomBytes(SALT_BYTES);
  const wrappingKey = deriveFromRecovery(entropy, salt);
  try {
    return { kdf: 'hkdf-sha256', salt: salt.toString('base64'), ...wrapSecret(wrappingKey, dataKey.bytes, wrapPurpose(keyId, 'recovery')) };
  } finally {
    wrappingKey.fill(0);
  }
}

/** Every wrap's additional data: ties it to this key ring and this slot. */
function wrapPurpose(keyId: string, slot: string): string {
  return `piccolo-keyring/${KEYRING_FORMAT}/${keyId}/${slot}`;
}

function dataKeyPurpose(keyId: string): string {
  return wrapPurpose(keyId, 'data-key');
}

function deriveFromPassphrase(passphrase: string, salt: Buffer, { N, r, p }: ScryptParams): Promise<Buffer> {
  // NFKC: the same passphrase typed on different systems may arrive composed or decomposed.
  const normalized = passphrase.normalize('NFKC');
  // Node refuses above maxmem (32 MiB by default); scrypt needs 128 * N * r bytes plus 128 * r * p.
  const maxmem = 128 * r * (N + p) + 1024 * 1024;
  return new Promise((resolve, reject) =>
    scryptCallback(normalized, salt, 32, { N, r, p, maxmem }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** The recovery entropy is 256 random bits already: HKDF is enough, no stretching needed. */
function deriveFromRecovery(entropy: Uint8Array, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', entropy, salt, 'piccolo recovery key wrap', 32));
}

function assertVolumeName(name: string): void {
  if (!VOLUME_NAME.test(name)) throw new BadRequestError(`invalid volume name ${JSON.stringify(name)}`);
}
