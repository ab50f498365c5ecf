// The relay's device secret: one root-only file in the encrypted bootstrap volume, so that after a
// reboot the TPM unlock alone brings it back, and it is never in the control store or a log.
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileDurable } from '../../common/durable.js';

export class DeviceSecretFile {
  readonly file: string;

  /** `dir`: a folder inside the mounted bootstrap volume. */
  constructor(dir: string) {
    this.file = path.join(dir, 'device-secret');
  }

  /** The secret, or undefined when none was ever written. */
  async read(): Promise<string | undefined> {
    try {
      return await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async write(secret: string): Promise<void> {
    await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    await writeFileDurable(this.file, secret, 0o600);
  }
}
