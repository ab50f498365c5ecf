// Runs the uvu suites one after another, each in its own process, and closes with the totals
// over all of them as "N passed, N failed". Usage: tsx test/run.ts [suite...] (default: all).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ALL_SUITES = ['unit', 'integration', 'image'];
const suites = process.argv.slice(2).length ? process.argv.slice(2) : ALL_SUITES;
/** How long a suite's process may live on after printing its summary. */
const SUITE_EXIT_GRACE_MS = 60_000;

interface Totals {
  passed: number;
  failed: number;
  skipped: number;
}

function runSuite(suite: string): Promise<Totals> {
  const dir = path.join('test', suite);
  if (!existsSync(path.join(ROOT, dir))) throw new Error(`no suite test/${suite}`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'node_modules/uvu/bin.js', dir, '\\.test\\.ts$'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    let output = '';
    let lingering: NodeJS.Timeout | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk;
      process.stdout.write(chunk);
      // uvu has printed its summary: a process still alive after that is held by something a test
      // left open. Fail it, instead of hanging the run (and CI) until its time limit.
      if (!lingering && /Duration:/.test(output)) {
        lingering = setTimeout(() => {
          console.log(`\n${suite}: the test process did not exit ${SUITE_EXIT_GRACE_MS / 1000} s after its summary (a test left a socket, timer or process open); killed, counted as a failure`);
          child.kill('SIGKILL');
        }, SUITE_EXIT_GRACE_MS);
      }
    });
    child.on('close', (code, signal) => {
      clearTimeout(lingering);
      const count = (label: string) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(output)?.[1] ?? 0);
      const total = count('Total');
      const passed = count('Passed');
      const skipped = count('Skipped');
      // A suite that crashed before its summary counts as one failure, so it cannot pass silently.
      // uvu's Total leaves skipped tests out.
      const failed = total - passed + (signal === 'SIGKILL' ? 1 : 0) || (code === 0 ? 0 : 1);
      resolve({ passed, failed, skipped });
    });
  });
}

const totals: Totals = { passed: 0, failed: 0, skipped: 0 };
for (const suite of suites) {
  console.log(`\n=== suite: ${suite}`);
  const result = await runSuite(suite);
  totals.passed += result.passed;
  totals.failed += result.failed;
  totals.skipped += result.skipped;
}
console.log(`\n${totals.passed} passed, ${totals.failed} failed${totals.skipped ? `, ${totals.skipped} skipped` : ''}`);
process.exit(totals.failed ? 1 : 0);
