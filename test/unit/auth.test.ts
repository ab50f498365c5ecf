import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TooManyRequestsError } from '../../services/common/errors.js';
import { createLogger } from '../../services/common/logger.js';
import { ClaimCode } from '../../services/daemon/auth/claim.js';
import { passwordProblems } from '../../services/daemon/auth/password-policy.js';
import { SessionStore, csrfMatches } from '../../services/daemon/auth/sessions.js';
import { AttemptThrottle } from '../../services/daemon/auth/throttle.js';

function retryAfter(fn: () => void): number | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    assert.instance(err, TooManyRequestsError);
    return (err as TooManyRequestsError).retryAfterSeconds;
  }
}

test('throttle: free failures, then a doubling wait per client', () => {
  let now = 0;
  const throttle = new AttemptThrottle({ now: () => now, freeFailures: 2, baseDelayMs: 1000 });
  throttle.failure('a');
  throttle.failure('a');
  assert.is(retryAfter(() => throttle.check('a')), undefined);
  throttle.failure('a');
  assert.is(retryAfter(() => throttle.check('a')), 1);
  assert.is(retryAfter(() => throttle.check('b')), undefined, 'other clients are not slowed');
  now += 1000;
  throttle.failure('a');
  assert.is(retryAfter(() => throttle.check('a')), 2);
  now += 2000;
  throttle.failure('a');
  assert.is(retryAfter(() => throttle.check('a')), 4);
  throttle.success('a');
  assert.is(retryAfter(() => throttle.check('a')), undefined, 'success clears the client');
});

test('throttle: many clients together hit the global limit', () => {
  const throttle = new AttemptThrottle({ now: () => 0, freeFailures: 100, globalFreeFailures: 5 });
  for (let i = 0; i < 6; i++) throttle.failure(`10.0.0.${i}`);
  assert.is(retryAfter(() => throttle.check('10.0.0.99')), 1);
});

test('throttle: waits are capped and failures forgotten after a quiet period', () => {
  let now = 0;
  const throttle = new AttemptThrottle({ now: () => now, freeFailures: 0, maxDelayMs: 10_000, forgetAfterMs: 60_000 });
  for (let i = 0; i < 20; i++) throttle.failure('a');
  assert.is(retryAfter(() => throttle.check('a')), 10);
  now += 61_000;
  assert.is(retryAfter(() => throttle.check('a')), undefined);
});

test('sessions expire by age and idleness; CSRF token is bound to its session', () => {
  let now = 0;
  const sessions = new SessionStore({ now: () => now, maxAgeMs: 10_000, idleMs: 3_000 });
  const s = sessions.create('admin');
  const other = sessions.create('admin');
  assert.ok(csrfMatches(s, s.csrfToken));
  assert.not.ok(csrfMatches(s, other.csrfToken));
  assert.not.ok(csrfMatches(s, undefined));
  now = 2_000;
  assert.ok(sessions.get(s.id));
  now = 4_500;
  assert.ok(sessions.get(s.id), 'activity keeps it alive');
  now = 8_000;
  assert.is(sessions.get(s.id), undefined, 'idle too long');
  const t = sessions.create('admin');
  now = 18_000 + 1;
  assert.is(sessions.get(t.id), undefined, 'too old');
  assert.is(sessions.get('made-up'), undefined);
});

test('password rules name every problem', () => {
  assert.equal(passwordProblems('Tr0ub4dor&3xyz'), []);
  assert.equal(passwordProblems('correct horse battery staple'), [], 'long passphrases pass on length');
  assert.ok(passwordProblems('short1A!').some((p) => p.includes('at least 12')));
  assert.ok(passwordProblems('alllowercaseletters').some((p) => p.includes('3 of')));
  assert.ok(passwordProblems('MyPiccolo-Password-123').some((p) => p.includes('common word')));
});

test('claim code: root-only file, stable across restarts, typed loosely, single use', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-claim-'));
  const file = path.join(dir, 'claim-code');
  const lines: string[] = [];
  const logger = createLogger({ service: 'test', write: (l) => void lines.push(l) });
  const consoleFile = path.join(dir, 'console');
  const claim = new ClaimCode({ file, logger, console: consoleFile });
  await claim.ensure();
  const code = readFileSync(file, 'utf8').trim();
  assert.is(statSync(file).mode & 0o777, 0o600);
  assert.match(code, /^[A-Z2-9]{10}$/);
  const shown = `${code.slice(0, 5)}-${code.slice(5)}`;
  assert.match(readFileSync(consoleFile, 'utf8'), new RegExp(shown));
  assert.match(lines.join(''), new RegExp(shown));
  const again = new ClaimCode({ file, logger });
  await again.ensure();
  assert.ok(again.matches(shown.toLowerCase()), 'same code after a restart, any case, with dash');
  assert.not.ok(again.matches('AAAAA-AAAAA'));
  await again.consume();
  assert.not.ok(again.matches(code));
});

test.run();
