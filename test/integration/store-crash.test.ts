// The control store survives its writer being SIGKILLed mid-write: the soak of
// scripts/soak-store.ts (`make soak-store` runs 1000 trials), here with 50.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpus } from 'node:os';
import { describeTrial, formatSummary, runSoak } from '../../scripts/soak-store.js';

test('50 SIGKILLed writers: every store opens and keeps every acknowledged write', async () => {
  const summary = await runSoak({ trials: 50, concurrency: Math.min(4, cpus().length) });
  console.log(formatSummary(summary));
  const failures = summary.failures.map(({ trial, result }) => `trial ${trial}: ${describeTrial(result)}`);
  assert.equal(failures, []);
  assert.is(summary.corruptions, 0);
  assert.is(summary.lostWrites, 0);
  // Guards the test itself: writers must actually have been writing when they were killed.
  assert.ok(summary.medianWrites > 0, 'writers made no commits before the kill');
});

test.run();
