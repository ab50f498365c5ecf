// Runs the uvu suites one after another and closes with the totals over all of them as
// "N passed, N failed". Usage: tsx test/run.ts [suite...] (default: all).
// The unit suite runs in one process (fast, nothing to leak). Every other test file runs in its own
// process group with a time limit, so one hung file fails alone instead of holding the run until
// CI's limit; the run as a whole has a budget too, and it ends with the slowest files, so the tail
// of a log always says where the time went.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ALL_SUITES = ['unit', 'integration', 'image'];
const suites = process.argv.slice(2).length ? process.argv.slice(2) : ALL_SUITES;
/** How long a test process may live on after printing its summary. */
const EXIT_GRACE_MS = 60_000;
/** The longest one file may take: image files build and boot an image under TCG. */
const fileLimitMs = (suite: string) => (suite.startsWith('image') ? 40 : 10) * 60_000;
/** The whole run's budget, under CI's 90 minutes; files not started within it count as failed. */
const RUN_BUDGET_MS = Number(process.env.PICCOLO_TEST_BUDGET_MIN || 80) * 60_000;
const started = Date.now();

interface Totals {
  passed: number;
  failed: number;
  skipped: number;
}

interface Timing {
  name: string;
  ms: number;
  note: string;
}
const timings: Timing[] = [];
/** The test process group running now: an interrupted run takes it down too (it is detached). */
let current: number | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (current) killGroup(current);
    process.exit(130);
  });
}

/** SIGKILL to a whole process group; one that is gone already is no error. */
function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
}

const clock = (ms: number) => `${Math.floor(ms / 60_000)}:${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')}`;

/** Runs one uvu process (a directory or a single file) and reads its summary. */
function runUvu(args: string[], limitMs: number, name: string): Promise<Totals> {
  return new Promise((resolve) => {
    const begun = Date.now();
    // Its own process group: on a time-out, the daemons, containers' conmon and QEMU it started go too.
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, NO_COLOR: '1' },
      detached: true,
    });
    current = child.pid;
    let output = '';
    let note = '';
    const giveUp = (why: string) => {
      note = why;
      console.log(`\n${name}: ${why}; killed, counted as a failure`);
      killGroup(child.pid!);
    };
    const limit = setTimeout(() => giveUp(`still running after ${limitMs / 60_000} min`), limitMs);
    let lingering: NodeJS.Timeout | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk;
      process.stdout.write(chunk);
      // uvu has printed its summary: a process still alive after that is held by something a test
      // left open (a socket, a timer, a child process).
      if (!lingering && /Duration:/.test(output)) {
        lingering = setTimeout(() => giveUp(`did not exit ${EXIT_GRACE_MS / 1000} s after its summary`), EXIT_GRACE_MS);
      }
    });
    child.on('close', (code, signal) => {
      current = undefined;
      reapGroup(child.pid!, name);
      clearTimeout(limit);
      clearTimeout(lingering);
      const count = (label: string) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(output)?.[1] ?? 0);
      const total = count('Total');
      const passed = count('Passed');
      const skipped = count('Skipped');
      // A process that crashed or was killed counts as one failure more, so it cannot pass silently.
      // uvu's Total leaves skipped tests out.
      const failed = total - passed + (signal === 'SIGKILL' ? 1 : 0) || (code === 0 ? 0 : 1);
      timings.push({ name, ms: Date.now() - begun, note });
      resolve({ passed, failed, skipped });
    });
  });
}

/**
 * Whatever a test file left running in its process group (a daemon, a registry, a browser) would
 * load every file after it: named, so the leak can be found, and killed.
 */
function reapGroup(pgid: number, name: string): void {
  const left = execFileSync('ps', ['-eo', 'pid=,pgid=,comm='], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([pid, group]) => Number(group) === pgid && Number(pid) !== pgid);
  if (!left.length) return;
  // tsx's esbuild service ends by itself once its parent is gone: no leak, just not gone yet.
  const leaked = left.filter(([, , comm]) => comm !== 'esbuild');
  if (leaked.length) console.log(`${name}: left ${leaked.length} process(es) running (${[...new Set(leaked.map(([, , comm]) => comm))].join(', ')}); killed`);
  killGroup(pgid);
}

async function runSuite(suite: string): Promise<Totals> {
  const dir = path.join('test', suite);
  if (!existsSync(path.join(ROOT, dir))) throw new Error(`no suite test/${suite}`);
  if (suite === 'unit') return runUvu(['node_modules/uvu/bin.js', dir, '\\.test\\.ts$'], fileLimitMs(suite), 'unit suite');
  const totals: Totals = { passed: 0, failed: 0, skipped: 0 };
  const files = readdirSync(path.join(ROOT, dir)).filter((f) => f.endsWith('.test.ts')).sort();
  for (const file of files) {
    if (Date.now() - started > RUN_BUDGET_MS) {
      console.log(`${file}: not run, the run's ${RUN_BUDGET_MS / 60_000} min budget is spent; counted as a failure`);
      timings.push({ name: `${suite}/${file}`, ms: 0, note: 'not run (budget spent)' });
      totals.failed += 1;
      continue;
    }
    console.log(`${file}  [${clock(Date.now() - started)}]`);
    const result = await runUvu([path.join(dir, file)], fileLimitMs(suite), `${suite}/${file}`);
    totals.passed += result.passed;
    totals.failed += result.failed;
    totals.skipped += result.skipped;
  }
  return totals;
}

const totals: Totals = { passed: 0, failed: 0, skipped: 0 };
for (const suite of suites) {
  console.log(`\n=== suite: ${suite}`);
  const result = await runSuite(suite);
  totals.passed += result.passed;
  totals.failed += result.failed;
  totals.skipped += result.skipped;
}
const slowest = [...timings].sort((a, b) => b.ms - a.ms).slice(0, 12);
console.log('\nslowest:');
for (const t of slowest) console.log(`  ${clock(t.ms).padStart(6)}  ${t.name}${t.note ? `  (${t.note})` : ''}`);
console.log(`\n${totals.passed} passed, ${totals.failed} failed${totals.skipped ? `, ${totals.skipped} skipped` : ''} in ${clock(Date.now() - started)}`);
process.exit(totals.failed ? 1 : 0);
