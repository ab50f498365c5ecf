// A child process that writes a control store until it is killed, for the crash tests
// (scripts/soak-store.ts, test/integration/store-crash.test.ts) and the second-writer test.
// Usage: store-writer <dir> [--payload <bytes>] [--hold]
// stdout carries only the protocol: "ready <rev>" once open, then "ack <rev>" after each
// commit() resolved, i.e. once that write is durable. Commit n adds writes["w<n>"], so an
// acknowledged "ack 7" promises w1..w7. --hold opens the store and then only holds the lock.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../services/common/logger.js';
import { ControlStore, type ControlStoreOptions } from '../../services/daemon/store/store.js';

export interface WriterDocument {
  writes: Record<string, string>;
}

export const WRITER_SCHEMA: Pick<ControlStoreOptions<WriterDocument>, 'schemaVersion' | 'migrations' | 'initial'> = {
  schemaVersion: 1,
  migrations: [],
  initial: () => ({ writes: {} }),
};

export const DEFAULT_PAYLOAD_BYTES = 512;

/** The value of key w<n>: derived from n, so a reader can tell a right value from a damaged one. */
export function payloadFor(n: number, bytes: number): string {
  const block = createHash('sha256').update(`w${n}`).digest('hex');
  return block.repeat(Math.ceil(bytes / block.length)).slice(0, bytes);
}

async function main(args: string[]): Promise<void> {
  const [dir, ...flags] = args;
  if (!dir) throw new Error('usage: store-writer <dir> [--payload <bytes>] [--hold]');
  const payloadIndex = flags.indexOf('--payload');
  const payloadBytes = payloadIndex >= 0 ? Number(flags[payloadIndex + 1]) : DEFAULT_PAYLOAD_BYTES;
  // stdout is the protocol; logs go to stderr.
  const logger = createLogger({ service: 'store-writer', level: 'warn', write: (line) => process.stderr.write(line) });
  const store = await ControlStore.open<WriterDocument>({ dir: path.resolve(dir), logger, ...WRITER_SCHEMA });
  process.stdout.write(`ready ${store.rev}\n`);
  if (flags.includes('--hold')) {
    setInterval(() => {}, 60_000); // keeps the process (and the lock) alive until killed
    return;
  }
  for (;;) {
    const rev = await store.commit((draft) => {
      const n = store.rev + 1;
      draft.writes[`w${n}`] = payloadFor(n, payloadBytes);
    });
    // Writes to a pipe are synchronous on Linux: once this returns, the parent can read it.
    process.stdout.write(`ack ${rev}\n`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`store-writer: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}\n`);
    process.exit(1);
  });
}
