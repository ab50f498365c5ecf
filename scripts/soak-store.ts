// Crash-safety soak of the control store, measured rather than assumed. Each trial starts
// test/support/store-writer.ts on a fresh directory, SIGKILLs it a random 3-200 ms after its
// store is open (so kills land mid-write), then reopens the store and checks that it opens
// (checksum verified), that rev >= the last acknowledged rev and that every acknowledged write
// is there with its exact value. A SIGKILL leaves the page cache intact, so this covers
// process crashes, not power loss; that half rests on writeFileDurable's fsync ordering.
// Usage: tsx scripts/soak-store.ts [trials=1000] [--concurrency N] [--payload BYTES] [--dir DIR]
// (--dir: where trial directories go, e.g. a gocryptfs mount, to soak on the real filesystem).
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { createLogger } from '../services/common/logger.js';
import { ControlStore, LOCK_FILE_NAME, STORE_FILE_NAME, StoreUnusableError } from '../services/daemon/store/store.js';
import { DEFAULT_PAYLOAD_BYTES, WRITER_SCHEMA, payloadFor, type WriterDocument } from '../test/support/store-writer.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WRITER_SOURCE = path.join(REPO_ROOT, 'test', 'support', 'store-writer.ts');
const KILL_DELAY_MS = { min: 3, max: 200 };
const READY_TIMEOUT_MS = 15_000;

export interface TrialResult {
  /** Last rev the writer acknowledged before it died. */
  acked: number;
  /** Rev found on reopen; undefined if the store did not open. */
  reopenedRev?: number;
  /** Why the store did not open or did not hold together; undefined when it is fine. */
  corruption?: string;
  /** Acknowledged writes missing or wrong after reopen. */
  lostWrites: number;
  /** The kill left a temp file: it landed between creating a new version and renaming it. */
  killedMidWrite: boolean;
  /** A failed trial's directory, kept for a post-mortem. */
  keptDir?: string;
}

export interface SoakSummary {
  trials: number;
  corruptions: number;
  lostWrites: number;
  medianWrites: number;
  killedMidWrite: number;
  seconds: number;
  failures: { trial: number; result: TrialResult }[];
}

/**
 * Bundles the writer into a plain .mjs (as the daemon ships), so each trial costs a bare node
 * start instead of a TypeScript loader. Returns the bundle's path.
 */
export async function buildStoreWriter(outDir: string): Promise<string> {
  const outfile = path.join(outDir, 'store-writer.mjs');
  await build({ entryPoints: [WRITER_SOURCE], outfile, bundle: true, platform: 'node', target: 'node18', format: 'esm', logLevel: 'warning' });
  return outfile;
}

/** One crash trial in a fresh directory under baseDir, removed afterwards unless it failed. */
export async function runTrial(options: { writer: string; baseDir: string; killAfterMs: number; payloadBytes?: number }): Promise<TrialResult> {
  const { writer, baseDir, killAfterMs, payloadBytes = DEFAULT_PAYLOAD_BYTES } = options;
  const dir = await mkdtemp(path.join(baseDir, 'trial-'));
  const acked = await runWriterUntilKilled(writer, dir, killAfterMs, payloadBytes);
  const names = await readdir(dir);
  const killedMidWrite = names.some((name) => name.startsWith(`.${STORE_FILE_NAME}.`) && name.endsWith('.tmp'));
  const result = await verifyAfterCrash(dir, acked, payloadBytes, killedMidWrite);
  if (isFailure(result)) return { ...result, keptDir: dir };
  await rm(dir, { recursive: true, force: true });
  return result;
}

async function runWriterUntilKilled(writer: string, dir: string, killAfterMs: number, payloadBytes: number): Promise<number> {
  const child = spawn(process.execPath, [writer, dir, '--payload', String(payloadBytes)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let acked = 0;
  let killed = false;
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
  const readyTimer = setTimeout(() => child.kill('SIGKILL'), READY_TIMEOUT_MS);
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const [word, value] = line.split(' ');
    if (word === 'ready') {
      clearTimeout(readyTimer);
      setTimeout(() => {
        killed = true;
        child.kill('SIGKILL');
      }, killAfterMs);
    } else if (word === 'ack') {
      acked = Number(value);
    }
  });
  // 'close' comes after the exit and after stdout is drained, so every ack sent has been read.
  const code = await new Promise<number | null>((resolve) => child.on('close', (exitCode) => resolve(exitCode)));
  clearTimeout(readyTimer);
  if (!killed) throw new Error(`store writer ended by itself (exit ${code}) before the kill: ${stderr.trim() || 'no output'}`);
  return acked;
}

async function verifyAfterCrash(dir: string, acked: number, payloadBytes: number, killedMidWrite: boolean): Promise<TrialResult> {
  const logger = createLogger({ service: 'soak-store', level: 'error', write: () => {} });
  let store: ControlStore<WriterDocument>;
  try {
    // Also exercises recovery: the killed writer's lock is stale, its temp file left over.
    store = await ControlStore.open<WriterDocument>({ dir, logger, ...WRITER_SCHEMA });
  } catch (err) {
    const kind = err instanceof StoreUnusableError ? 'unusable' : 'open failed';
    return { acked, lostWrites: 0, killedMidWrite, corruption: `${kind}: ${(err as Error).message}` };
  }
  try {
    const { rev, data } = store;
    let lostWrites = 0;
    for (let n = 1; n <= acked; n++) if (data.writes[`w${n}`] !== payloadFor(n, payloadBytes)) lostWrites++;
    // Beyond the acked ones: the document must be exactly the writes w1..w<rev>, nothing torn.
    const keys = Object.keys(data.writes);
    const consistent = keys.length === rev && keys.every((key) => data.writes[key] === payloadFor(Number(key.slice(1)), payloadBytes));
    const leftovers = (await readdir(dir)).filter((name) => name.endsWith('.tmp') || (name.startsWith(LOCK_FILE_NAME + '.')));
    const corruption = !consistent
      ? `document does not match rev ${rev} (${keys.length} writes)`
      : leftovers.length
        ? `leftover files after reopen: ${leftovers.join(', ')}`
        : undefined;
    return { acked, reopenedRev: rev, lostWrites, killedMidWrite, ...(corruption && { corruption }) };
  } finally {
    await store.close();
  }
}

/** Runs `trials` trials, `concurrency` at a time; calls onTrial after each. */
export async function runSoak(options: {
  trials: number;
  concurrency?: number;
  payloadBytes?: number;
  baseDir?: string;
  onTrial?: (index: number, result: TrialResult, completed: number) => void;
}): Promise<SoakSummary> {
  const { trials, concurrency = 1, payloadBytes, onTrial } = options;
  const started = Date.now();
  const baseDir = await mkdtemp(path.join(options.baseDir ?? tmpdir(), 'piccolo-soak-store-'));
  const results: TrialResult[] = new Array(trials);
  try {
    const writer = await buildStoreWriter(baseDir);
    let next = 0;
    let completed = 0;
    const worker = async () => {
      while (next < trials) {
        const index = next++;
        const killAfterMs = KILL_DELAY_MS.min + Math.random() * (KILL_DELAY_MS.max - KILL_DELAY_MS.min);
        const result = await runTrial({ writer, baseDir, killAfterMs, ...(payloadBytes && { payloadBytes }) });
        results[index] = result;
        onTrial?.(index, result, ++completed);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  } finally {
    // Failed trials keep their directories for a post-mortem; otherwise leave nothing behind.
    if (!results.some((r) => r && isFailure(r))) await rm(baseDir, { recursive: true, force: true });
  }
  const failures = results.flatMap((result, trial) => (isFailure(result) ? [{ trial, result }] : []));
  return {
    trials,
    corruptions: results.filter((r) => r.corruption).length,
    lostWrites: results.reduce((sum, r) => sum + r.lostWrites, 0),
    medianWrites: median(results.map((r) => r.acked)),
    killedMidWrite: results.filter((r) => r.killedMidWrite).length,
    seconds: (Date.now() - started) / 1000,
    failures,
  };
}

export function describeTrial(result: TrialResult): string {
  const { corruption, acked, reopenedRev, lostWrites, keptDir } = result;
  return `${corruption ?? 'ok'}; acked ${acked}, reopened rev ${reopenedRev ?? '-'}, ${lostWrites} lost writes${keptDir ? `; kept in ${keptDir}` : ''}`;
}

export function formatSummary(summary: SoakSummary): string {
  const { trials, corruptions, lostWrites, medianWrites, killedMidWrite, seconds } = summary;
  return `soak-store: ${trials} trials, ${corruptions} corruptions, ${lostWrites} lost writes, median ${medianWrites} writes per trial, ${killedMidWrite} kills mid-write, ${seconds.toFixed(1)} s`;
}

function isFailure(result: TrialResult): boolean {
  return result.corruption !== undefined || result.lostWrites > 0;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function parseArgs(args: string[]): { trials: number; concurrency: number; payloadBytes: number; baseDir?: string } {
  const flag = (name: string) => {
    const index = args.indexOf(name);
    return index >= 0 ? args.splice(index, 2)[1] : undefined;
  };
  const concurrency = Number(flag('--concurrency') ?? Math.min(4, cpus().length));
  const payloadBytes = Number(flag('--payload') ?? DEFAULT_PAYLOAD_BYTES);
  const baseDir = flag('--dir');
  const trials = Number(args[0] ?? 1000);
  for (const [name, value] of Object.entries({ trials, concurrency, payloadBytes })) {
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`soak-store: ${name} must be a positive integer`);
  }
  return { trials, concurrency, payloadBytes, ...(baseDir && { baseDir: path.resolve(baseDir) }) };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const options = parseArgs(process.argv.slice(2));
  const summary = await runSoak({
    ...options,
    onTrial: (index, result, completed) => {
      if (isFailure(result)) console.error(`trial ${index}: ${describeTrial(result)}`);
      if (completed % 100 === 0) console.error(`soak-store: ${completed}/${options.trials} trials`);
    },
  });
  console.log(formatSummary(summary));
  process.exit(summary.corruptions || summary.lostWrites ? 1 : 0);
}
