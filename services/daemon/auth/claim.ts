// The one-time setup claim code. Whoever can read the device's console (or is root on it) can
// claim the device; others on the LAN cannot. The code survives daemon restarts until setup is
// done, in a root-only file.
import { randomInt } from 'node:crypto';
import { equalSecrets } from '../../common/secrets.js';
import { readFile, rm, writeFile } from 'node:fs/promises';
import type { Logger } from '../../common/logger.js';
import { writeFileDurable } from '../../common/durable.js';

// No 0/O, 1/I/L: the code is read off a screen and typed by a person.
const ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
const LENGTH = 10; // ~49 bits; guessing is also throttled

export interface ClaimCodeOptions {
  file: string;
  logger: Logger;
  /** Where people at the device see it: /dev/console on the image; undefined to skip. */
  console?: string;
}

export class ClaimCode {
  private code: string | undefined;

  constructor(private readonly options: ClaimCodeOptions) {}

  /** Loads the code or makes a new one, and shows it on the console and in the journal. */
  async ensure(): Promise<void> {
    this.code = await readFile(this.options.file, 'utf8').then((text) => text.trim(), () => undefined);
    if (!this.code) {
      this.code = Array.from({ length: LENGTH }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
      await writeFileDurable(this.options.file, this.code + '\n', 0o600);
    }
    const shown = format(this.code);
    this.options.logger.info('setup claim code (open the portal and enter it to set up this device)', { claimCode: shown });
    if (this.options.console) {
      await writeFile(this.options.console, `\r\nPiccolo OS setup claim code: ${shown}\r\n`).catch((err) =>
        this.options.logger.warn('cannot write the claim code to the console', { err, console: this.options.console }),
      );
    }
  }

  matches(presented: string): boolean {
    return this.code !== undefined && equalSecrets(normalize(presented), this.code);
  }

  /** Setup is done: the code must never work again. */
  async consume(): Promise<void> {
    this.code = undefined;
    await rm(this.options.file, { force: true });
  }
}

function format(code: string): string {
  return `${code.slice(0, 5)}-${code.slice(5)}`;
}

/** People type dashes, spaces and lower case; none of that matters. */
function normalize(input: string): string {
  return input.toUpperCase().replace(/[\s-]/g, '');
}
