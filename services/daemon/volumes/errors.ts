// Errors of the encrypted volumes. Details carry the tool's own words (never a passphrase).
import { PiccoloError } from '../../common/errors.js';

export class InvalidVolumeNameError extends PiccoloError {
  constructor(name: string) {
    super(400, 'invalid_volume_name', `invalid volume name ${JSON.stringify(name)}: use bootstrap, control or app-<name> (lowercase letters, digits, single dashes)`);
  }
}

export class VolumeExistsError extends PiccoloError {
  constructor(name: string) {
    super(409, 'volume_exists', `volume ${name} already exists`);
  }
}

/** Mounted read-write and asked read-only, or the other way round. */
export class VolumeModeConflictError extends PiccoloError {
  constructor(name: string, mountedReadOnly: boolean) {
    super(409, 'volume_mode_conflict', `volume ${name} is already mounted ${mountedReadOnly ? 'read-only' : 'read-write'}; unmount it first`, {
      volume: name,
      mountedReadOnly,
    });
  }
}

export class VolumeBusyError extends PiccoloError {
  constructor(name: string, detail: string) {
    super(409, 'volume_busy', `volume ${name} is in use (open files or a process inside it) and cannot be unmounted`, { volume: name, detail });
  }
}

export type VolumeFailure =
  | 'wrong_passphrase'
  | 'missing' // no cipher folder or no gocryptfs.conf
  | 'config_unreadable' // gocryptfs.conf damaged
  | 'mountpoint_busy' // something else is mounted there, or the folder is not empty
  | 'failed';

/**
 * A volume could not be created, mounted or unmounted. Fatal for the volume: the caller reports
 * it to health with the reason.
 */
export class VolumeError extends PiccoloError {
  constructor(
    readonly volume: string,
    readonly reason: VolumeFailure,
    message: string,
    detail?: string,
  ) {
    super(503, `volume_${reason}`, `volume ${volume}: ${message}`, { volume, reason, detail });
  }
}

export class WrongVolumePassphraseError extends VolumeError {
  constructor(volume: string) {
    super(volume, 'wrong_passphrase', 'the passphrase does not open it');
  }
}
