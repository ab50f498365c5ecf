// Route lookup and pools (§5): exact name before the one-label wildcard, never deeper or the apex;
// several backends on one key share it by smooth weighted round robin; normalization of names.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RoutePools, lookupKeys, portKey } from '../../services/relay/routing.js';
import { normalizeHostname } from '../../services/tunnel/protocol.js';

test('a name is looked up exactly, then under the wildcard of its parent', () => {
  assert.equal(lookupKeys('a.example.com'), ['a.example.com', '*.example.com']);
  assert.equal(lookupKeys('localhost'), ['localhost']);
  assert.is(portKey(15432), 'tcp:15432');
});

test('a wildcard claim matches one label only, not deeper names or the apex', () => {
  const pools = new RoutePools<string>();
  pools.add('wild', ['*.example.com'], 1);
  assert.is(pools.pick(lookupKeys('a.example.com')), 'wild');
  assert.is(pools.pick(lookupKeys('a.b.example.com')), undefined);
  assert.is(pools.pick(lookupKeys('example.com')), undefined);
});

test('an exact claim wins over the wildcard', () => {
  const pools = new RoutePools<string>();
  pools.add('wild', ['*.example.com'], 1);
  pools.add('exact', ['shop.example.com'], 1);
  assert.is(pools.pick(lookupKeys('shop.example.com')), 'exact');
  assert.is(pools.pick(lookupKeys('blog.example.com')), 'wild');
});

test('weighted round robin shares a key by weight, interleaved; weight ≤ 0 counts as 1', () => {
  const pools = new RoutePools<string>();
  pools.add('heavy', ['app.test'], 3);
  pools.add('light', ['app.test'], 0);
  const picks = Array.from({ length: 40 }, () => pools.pick(['app.test']));
  assert.is(picks.filter((p) => p === 'heavy').length, 30);
  assert.is(picks.filter((p) => p === 'light').length, 10);
  // Smooth: the light backend comes once in every four picks, never four heavy ones first and then a run.
  for (let i = 0; i < 40; i += 4) assert.is(picks.slice(i, i + 4).filter((p) => p === 'light').length, 1, `picks ${i}..${i + 3}`);
});

test('removing a backend takes it out of every pool it claimed', () => {
  const pools = new RoutePools<string>();
  pools.add('a', ['x.test', portKey(1000)], 1);
  pools.add('b', ['x.test'], 1);
  pools.remove('a');
  assert.equal([pools.pick(['x.test']), pools.pick(['x.test']), pools.pick([portKey(1000)])], ['b', 'b', undefined]);
});

test('normalization: whitespace, one trailing dot, IDNA, lower case', () => {
  assert.is(normalizeHostname('  Shop.Example.COM. '), 'shop.example.com');
  assert.is(normalizeHostname('bücher.example'), 'xn--bcher-kva.example');
  assert.is(normalizeHostname('*.Example.com'), '*.example.com');
  assert.is(normalizeHostname(''), undefined);
});

test.run();
