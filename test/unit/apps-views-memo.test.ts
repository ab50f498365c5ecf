// The list memo of views.ts: the same array while the store data, the engine state and every
// app's shown facts are the same; a new one when any of them changes, the restart countdown's
// whole second included (the API serializes the list once per array).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { factsKey, ViewsMemo, type AppView, type RuntimeFacts } from '../../services/daemon/apps/views.js';

const facts = (over: Partial<RuntimeFacts> = {}): RuntimeFacts => ({ run: 'running', activeJob: undefined, failure: undefined, backoff: undefined, now: 1_000_000, ...over });
const ok = { health: 'ok' as const };

test('the same inputs give the same array; any changed input builds again', () => {
  const memo = new ViewsMemo();
  const doc = {};
  const engine = {};
  let builds = 0;
  const build = () => (builds++, [{ name: 'a' } as AppView]);
  const key = factsKey('a', facts(), ok);
  const first = memo.get([doc, engine, key], build);
  assert.is(memo.get([doc, engine, factsKey('a', facts({ now: 1_000_500 }), ok)], build), first, 'now alone shows nowhere');
  assert.is(builds, 1);
  assert.is.not(memo.get([{}, engine, key], build), first, 'a new commit');
  assert.is.not(memo.get([doc, {}, key], build), first, 'a new engine read');
  assert.is.not(memo.get([doc, engine, factsKey('a', facts({ activeJob: 'stop' }), ok)], build), first, 'a job');
  assert.is.not(memo.get([doc, engine, factsKey('a', facts(), { health: 'degraded', reason: 'HTTP 500' })], build), first, 'a verdict');
  assert.is(builds, 5);
});

test('the restart countdown changes the key each whole second, not in between', () => {
  const backoff = { attempts: 1, nextAt: 1_010_000 };
  const at = (now: number) => factsKey('a', facts({ backoff, now, failure: undefined }), ok);
  assert.is(at(1_000_100), at(1_000_900), 'the same second: "in 10 s" both');
  assert.is.not(at(1_000_100), at(1_001_100), '10 s, then 9 s');
  assert.is.not(at(1_000_100), factsKey('a', facts({ backoff: { attempts: 2, nextAt: 1_010_000 }, now: 1_000_100 }), ok), 'another attempt');
});

test.run();
