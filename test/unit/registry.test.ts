import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ComponentRegistry, parseReport } from '../../services/health/registry.js';
import { BadRequestError } from '../../services/common/errors.js';

const T0 = 1_700_000_000_000;

test('required components that never reported make the device not ready', () => {
  const registry = new ComponentRegistry(['daemon', 'proxy']);
  registry.apply({ component: 'daemon', state: 'ok', ttlMs: 1000 }, T0);
  const r = registry.readiness(T0);
  assert.is(r.ready, false);
  assert.equal(r.reasons, ['proxy: down (has not reported yet)']);
});

test('ready when every required component is ok or degraded; annotations become notes', () => {
  const registry = new ComponentRegistry(['daemon']);
  registry.apply({ component: 'daemon', state: 'ok', ttlMs: 1000 }, T0);
  registry.apply({ component: 'daemon.crypto', state: 'degraded', reason: 'locked, waiting for unlock', ttlMs: 1000 }, T0);
  registry.apply({ component: 'tunnel', state: 'ok', reason: 'remote access not configured', ttlMs: 1000 }, T0);
  const r = registry.readiness(T0 + 10);
  assert.is(r.ready, true);
  assert.equal(r.reasons, []);
  assert.equal(r.notes, ['daemon.crypto: degraded (locked, waiting for unlock)', 'tunnel: ok (remote access not configured)']);
});

test('a fatal sub-component of a required service makes it not ready', () => {
  const registry = new ComponentRegistry(['daemon']);
  registry.apply({ component: 'daemon', state: 'ok', ttlMs: 1000 }, T0);
  registry.apply({ component: 'daemon.store', state: 'fatal', reason: 'checksum mismatch', ttlMs: 1000 }, T0);
  assert.equal(registry.readiness(T0).reasons, ['daemon.store: fatal (checksum mismatch)']);
});

test('an optional component that is down is a note, not a reason', () => {
  const registry = new ComponentRegistry(['daemon']);
  registry.apply({ component: 'daemon', state: 'ok', ttlMs: 1000 }, T0);
  registry.apply({ component: 'tunnel', state: 'down', reason: 'relay unreachable', ttlMs: 1000 }, T0);
  const r = registry.readiness(T0);
  assert.is(r.ready, true);
  assert.equal(r.notes, ['tunnel: down (relay unreachable)']);
});

test('a component that stops reporting counts as down once its ttl passes', () => {
  const registry = new ComponentRegistry(['daemon']);
  registry.apply({ component: 'daemon', state: 'ok', ttlMs: 15_000 }, T0);
  assert.is(registry.readiness(T0 + 15_000).ready, true);
  const late = registry.readiness(T0 + 16_000);
  assert.is(late.ready, false);
  assert.equal(late.reasons, ['daemon: down (stopped reporting 16 s ago)']);
  registry.apply({ component: 'daemon', state: 'ok', ttlMs: 15_000 }, T0 + 17_000);
  assert.is(registry.readiness(T0 + 17_000).ready, true);
});

test('parseReport accepts a well-formed report', () => {
  assert.equal(parseReport({ component: 'daemon.store', state: 'fatal', reason: 'x', ttlMs: 500 }), {
    component: 'daemon.store',
    state: 'fatal',
    reason: 'x',
    ttlMs: 500,
  });
});

test('parseReport names every problem of a malformed report', () => {
  try {
    parseReport({ component: '../etc', state: 'great', ttlMs: 5, extra: 1 });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, BadRequestError);
    const details = (err as BadRequestError).details as string[];
    assert.is(details.length, 4);
    assert.match(details.join('\n'), /component: must match/);
    assert.match(details.join('\n'), /state: must be one of ok, degraded, down, fatal/);
    assert.match(details.join('\n'), /ttlMs: must be an integer/);
    assert.match(details.join('\n'), /extra: unknown field/);
  }
  assert.throws(() => parseReport([1]), /JSON object/);
});

test.run();
