// The renewal schedule and the retry backoff: pure math, with an injected random source.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseRetryAfter } from '../../services/daemon/remote/acme/acme-http.js';
import { renewalTime, retryDelay } from '../../services/daemon/remote/acme/schedule.js';

const DAY = 86400_000;
const policy = { minMs: 60_000, maxMs: 3600_000 };

test('renewal at 2/3 of the lifetime: a 90-day certificate renews with 30 days left', () => {
  const notBefore = Date.UTC(2026, 0, 1);
  assert.is(renewalTime(notBefore, notBefore + 90 * DAY), notBefore + 60 * DAY);
  assert.is(renewalTime(notBefore, notBefore + 6 * DAY), notBefore + 4 * DAY);
});

test('retry delay doubles per failure, jittered within the upper half, capped', () => {
  const low = () => 0;
  const high = () => 1;
  assert.equal([1, 2, 3, 4].map((n) => retryDelay(n, policy, high)), [60_000, 120_000, 240_000, 480_000]);
  assert.equal([1, 2, 3].map((n) => retryDelay(n, policy, low)), [30_000, 60_000, 120_000]);
  assert.is(retryDelay(50, policy, high), 3600_000);
  assert.is(retryDelay(50, policy, low), 1800_000);
  const jittered = retryDelay(3, policy, () => 0.25);
  assert.is(jittered, 120_000 + 30_000);
});

test('a rate limit waits at least its Retry-After, even beyond the cap', () => {
  assert.is(retryDelay(1, policy, () => 1, 7200_000), 7200_000);
  assert.is(retryDelay(4, policy, () => 1, 10_000), 480_000, 'a short Retry-After does not shorten the backoff');
});

test('Retry-After as seconds or an HTTP date', () => {
  const now = Date.UTC(2026, 11, 1, 8, 0, 0);
  assert.is(parseRetryAfter('120', now), 120_000);
  assert.is(parseRetryAfter(new Date(now + 90_000).toUTCString(), now), 90_000);
  assert.is(parseRetryAfter(new Date(now - 90_000).toUTCString(), now), 0);
  assert.is(parseRetryAfter(undefined, now), 0);
  assert.is(parseRetryAfter('soon', now), 0);
});

test.run();
