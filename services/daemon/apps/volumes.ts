// Where an app's persistent data lives on the host. The daemon passes the vault's implementation
// (one gocryptfs volume per app, mounted while the device is unlocked); FolderAppVolumes is the
// plain-folder one for tests and development.
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';

export interface AppVolumes {
  /** Makes the app's volume available (creating it the first time) and returns its host folder. */
  ensure(app: string): Promise<string>;
  /** Deletes the app's data for good. */
  remove(app: string): Promise<void>;
  /** Closes the app's volume, keeping its data (an uninstall without purge); absent where nothing is ever open. */
  close?(app: string): Promise<void>;
  /**
   * Makes the folder `volume` of the app's (ensured) volume a file system of at most `bytes`
   * (storage.persistent.<volume>.size_limit, named by `field` in errors), or mounts the one it
   * was made with; undefined and never limited: a plain folder. Absent where folders cannot be
   * limited, and then a size limit is refused, never ignored.
   */
  limit?(app: string, volume: string, bytes: number | undefined, field: string): Promise<void>;
  /** The host folder of a shared media folder (Media, Downloads...), made the first time; absent where the device has none. */
  media?(name: string): Promise<string>;
}

export class FolderAppVolumes implements AppVolumes {
  constructor(private readonly root: string) {}

  async ensure(app: string): Promise<string> {
    const dir = path.join(this.root, app);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  async remove(app: string): Promise<void> {
    await rm(path.join(this.root, app), { recursive: true, force: true });
  }

  /** Beside the apps' folders: ".media" is no app name (names are DNS labels). */
  async media(name: string): Promise<string> {
    const dir = path.join(this.root, '.media', name);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  }
}
