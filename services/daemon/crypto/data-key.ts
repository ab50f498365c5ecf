// The key that protects everything else. Held in memory only while the device is unlocked;
// wipe() overwrites the bytes when the daemon locks or the key is replaced.
import { inspect } from 'node:util';

export const DATA_KEY_BYTES = 32;

export class DataKey {
  #bytes: Buffer | undefined;

  /** Copies the bytes; the caller should wipe its own copy. */
  constructor(bytes: Uint8Array) {
    if (bytes.length !== DATA_KEY_BYTES) throw new Error(`a data key has ${DATA_KEY_BYTES} bytes, not ${bytes.length}`);
    // Buffer.alloc never hands out a slice of the shared pool, so wipe() clears the only copy.
    this.#bytes = Buffer.alloc(DATA_KEY_BYTES);
    this.#bytes.set(bytes);
  }

  get bytes(): Buffer {
    if (!this.#bytes) throw new Error('the data key was wiped');
    return this.#bytes;
  }

  get wiped(): boolean {
    return this.#bytes === undefined;
  }

  wipe(): void {
    this.#bytes?.fill(0);
    this.#bytes = undefined;
  }

  // A DataKey that ends up in a log line or a response shows nothing.
  toJSON(): string {
    return '[DataKey]';
  }

  [inspect.custom](): string {
    return this.toString();
  }

  toString(): string {
    return this.wiped ? '[DataKey wiped]' : '[DataKey]';
  }
}
