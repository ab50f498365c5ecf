// Errors of the control store. The "unusable" ones mean: stop, keep the file as it is, ask a
// human; nothing in the daemon may try to repair or replace the store after one of them.
import { PiccoloError } from '../../common/errors.js';

export type CorruptionReason = 'empty' | 'truncated' | 'not_json' | 'bad_shape' | 'unknown_format' | 'checksum_mismatch';

/** The store file exists but must not be used; open() refuses and leaves the file untouched. */
export abstract class StoreUnusableError extends PiccoloError {
  constructor(
    code: string,
    message: string,
    readonly file: string,
  ) {
    // 503: the daemon depends on the store; the file path stays out of what clients see.
    super(503, code, message);
  }
}

/** The bytes on disk are not a store we wrote (damaged, truncated, edited by hand). */
export class StoreCorruptError extends StoreUnusableError {
  constructor(
    file: string,
    readonly reason: CorruptionReason,
    detail: string,
  ) {
    super('store_corrupt', `control store ${file} is corrupt (${reason}): ${detail}`, file);
  }
}

/** Written by a newer Piccolo: opening it here would lose whatever the newer schema added. */
export class StoreSchemaTooNewError extends StoreUnusableError {
  constructor(
    file: string,
    readonly foundVersion: number,
    readonly knownVersion: number,
  ) {
    super('store_schema_too_new', `control store ${file} has schema v${foundVersion}; this build knows up to v${knownVersion}`, file);
  }
}

/** Another live process (or another ControlStore in this one) is the writer of this store. */
export class StoreInUseError extends PiccoloError {
  constructor(
    readonly lockFile: string,
    readonly holderPid: number,
  ) {
    super(503, 'store_in_use', `control store is already open for writing by pid ${holderPid} (lock ${lockFile})`);
  }
}

/** The store holds control data; a commit that grows it past the limit is a caller's bug. */
export class StoreTooLargeError extends PiccoloError {
  constructor(
    readonly sizeBytes: number,
    readonly limitBytes: number,
  ) {
    super(507, 'store_too_large', `control store would be ${sizeBytes} bytes; the limit is ${limitBytes}`);
  }
}

/** A migration threw or returned no document: a bug in this build; the file is left as it was. */
export class StoreMigrationError extends PiccoloError {
  constructor(
    readonly fromVersion: number,
    cause: unknown,
  ) {
    super(503, 'store_migration_failed', `control store migration v${fromVersion}→v${fromVersion + 1} failed: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.cause = cause;
  }
}
