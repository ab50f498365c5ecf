// Runs the uvu suites one after another, each in its own process, and closes with the totals
// over all of them as "N passed, N failed". Usage: tsx test/run.ts [suite...] (default: all).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ALL_SUITES = ['unit', 'integration', 'image'];
const suites = process.argv.slice(2).length ? process.argv.slice(2) : ALL_SUITES;

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
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk;
      process.stdout.write(chunk);
    });
    child.on('close', (code) => {
      const count = (label: string) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(output)?.[1] ?? 0);
      const total = count('Total');
      const passed = count('Passed');
      const skipped = count('Skipped');
      // A suite that crashed before its summary counts as one failure, so it cannot pass silently.
      const failed = total - passed - skipped || (code === 0 ? 0 : 1);
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
