// Errors of backup and restore. An archive that fails any check is the uploader's problem (400),
// named by what is wrong with it, so the person knows whether to pick another file or retype a key.
import { PiccoloError } from '../../common/errors.js';

export type ArchiveProblem =
  /** The file does not start like a Piccolo backup. */
  | 'not_a_backup'
  /** A backup format this version cannot read (made by a newer one). */
  | 'unsupported_format'
  /** The clear header does not parse or has a field out of range. */
  | 'damaged_header'
  /** A chunk fails its authentication tag: changed, reordered, or from another archive. */
  | 'tampered'
  /** The file ends before the archive's final chunk. */
  | 'truncated'
  /** Bytes after the final chunk. */
  | 'trailing_data'
  /** The decrypted contents are not what a backup holds (a manifest, the control store, volumes). */
  | 'bad_contents';

export class BackupArchiveError extends PiccoloError {
  constructor(readonly problem: ArchiveProblem, message: string) {
    super(400, 'backup_invalid', `archive: ${message}`, { field: 'archive', problem });
  }
}

/** A valid recovery key that is not this backup's (another device's, or one rotated since). */
export class WrongBackupKeyError extends PiccoloError {
  constructor() {
    super(401, 'wrong_recovery_key', 'recoveryKey: this recovery key does not open this backup (it may be another device\'s, or an older or newer one)', { field: 'recoveryKey' });
  }
}

/** One backup or restore at a time: both read or write every volume. */
export class BackupBusyError extends PiccoloError {
  constructor(what: string) {
    super(409, 'backup_busy', `a ${what} is already running; wait for it to finish`);
  }
}
