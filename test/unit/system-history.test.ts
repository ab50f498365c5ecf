// The apps' stats history: the ring buffer, and the sampler over a stand-in app manager (its
// list and stats are what AppManager answers) with an injected clock and no timer wait.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger } from '../../services/common/logger.js';
import { EventHub } from '../../services/daemon/api/events.js';
import type { ContainerStats } from '../../services/daemon/apps/engine.js';
import { RingBuffer } from '../../services/daemon/system/ring-buffer.js';
import { StatsHistory, type StatsSource } from '../../services/daemon/system/stats-history.js';

const logger = createLogger({ service: 'test', write: () => {} });

test('ring: oldest first, the oldest dropped once full', () => {
  const ring = new RingBuffer<number>(3);
  assert.equal(ring.toArray(), []);
  ring.push(1);
  ring.push(2);
  assert.equal(ring.toArray(), [1, 2]);
  ring.push(3);
  ring.push(4);
  ring.push(5);
  assert.equal(ring.toArray(), [3, 4, 5]);
  assert.is(ring.size, 3);
  assert.throws(() => new RingBuffer(0), /capacity/);
});

test('ring: capacity 120 keeps exactly the last hour of 30 s samples', () => {
  const ring = new RingBuffer<number>(120);
  for (let i = 0; i < 1000; i++) ring.push(i);
  const items = ring.toArray();
  assert.is(items.length, 120);
  assert.is(items[0], 880);
  assert.is(items[119], 999);
});

interface FakeApp {
  name: string;
  state: 'running' | 'stopped';
  stats?: ContainerStats | Error;
}

function fakeApps(apps: FakeApp[]): StatsSource {
  return {
    list: async () => apps.map(({ name, state }) => ({ name, state })),
    stats: async (name) => {
      const stats = apps.find((app) => app.name === name)?.stats;
      if (!stats || stats instanceof Error) throw stats ?? new Error(`no container ${name}`);
      return stats;
    },
  };
}

test('history: each running app gets a sample per round; stopped apps none; limit kept when unknown', async () => {
  let clock = Date.parse('2026-12-01T10:00:00Z');
  const apps: FakeApp[] = [
    { name: 'web', state: 'running', stats: { cpuPercent: 12.345, memoryBytes: 1000, memoryLimitBytes: 4000 } },
    { name: 'db', state: 'running', stats: { cpuPercent: 1, memoryBytes: 500, memoryLimitBytes: undefined } },
    { name: 'off', state: 'stopped' },
  ];
  const history = new StatsHistory({ apps: () => fakeApps(apps), events: new EventHub(() => clock), logger, intervalMs: 30_000, capacity: 2, now: () => clock });
  await history.tick();
  clock += 30_000;
  await history.tick();
  clock += 30_000;
  await history.tick();
  const web = history.history('web');
  assert.is(web.intervalSeconds, 30);
  assert.equal(web.samples, [
    { at: '2026-12-01T10:00:30.000Z', cpuPercent: 12.3, memoryBytes: 1000, memoryLimitBytes: 4000 },
    { at: '2026-12-01T10:01:00.000Z', cpuPercent: 12.3, memoryBytes: 1000, memoryLimitBytes: 4000 },
  ]);
  assert.equal(Object.keys(history.history('db').samples[0]!), ['at', 'cpuPercent', 'memoryBytes'], 'no memoryLimitBytes without a limit');
  assert.equal(history.history('off').samples, []);
});

test('history: an app that fails its stats call leaves a gap, the others are recorded', async () => {
  const apps: FakeApp[] = [
    { name: 'broken', state: 'running', stats: new Error('container gone') },
    { name: 'web', state: 'running', stats: { cpuPercent: 5, memoryBytes: 10, memoryLimitBytes: undefined } },
  ];
  const history = new StatsHistory({ apps: () => fakeApps(apps), events: new EventHub(Date.now), logger });
  await history.tick();
  assert.is(history.history('broken').samples.length, 0);
  assert.is(history.history('web').samples.length, 1);
});

test('history: apps unavailable (locked) skip the round without an error', async () => {
  const history = new StatsHistory({ apps: () => { throw new Error('locked'); }, events: new EventHub(Date.now), logger });
  await history.tick();
  assert.equal(history.history('web').samples, []);
});

test('history: dropped on the app-removed event, and for an app no longer listed', async () => {
  const hub = new EventHub(Date.now);
  const apps: FakeApp[] = [
    { name: 'web', state: 'running', stats: { cpuPercent: 5, memoryBytes: 10, memoryLimitBytes: undefined } },
    { name: 'db', state: 'running', stats: { cpuPercent: 5, memoryBytes: 10, memoryLimitBytes: undefined } },
  ];
  const history = new StatsHistory({ apps: () => fakeApps(apps), events: hub, logger, intervalMs: 3_600_000 });
  await history.start();
  await history.tick();
  // As AppsHost relays the manager's event: type app.state, data { type: 'app-removed', app }.
  hub.publish('app.state', { type: 'app-removed', app: 'web' });
  assert.equal(history.history('web').samples, []);
  assert.is(history.history('db').samples.length, 1);
  apps.splice(1, 1);
  await history.tick();
  assert.equal(history.history('db').samples, [], 'db is no longer installed');
  await history.stop();
  hub.publish('app.state', { type: 'app-removed', app: 'web' }); // no listener left: nothing breaks
});

test('history: the timer runs rounds, and stop ends them', async () => {
  const source = fakeApps([{ name: 'web', state: 'running', stats: { cpuPercent: 1, memoryBytes: 1, memoryLimitBytes: undefined } }]);
  const history = new StatsHistory({ apps: () => source, events: new EventHub(Date.now), logger, intervalMs: 20 });
  await history.start();
  const deadline = Date.now() + 3000;
  while (history.history('web').samples.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await history.stop();
  const samples = history.history('web').samples.length;
  assert.ok(samples >= 3, `${samples} samples`);
  await new Promise((r) => setTimeout(r, 80));
  assert.is(history.history('web').samples.length, samples, 'no round after stop');
});

test.run();
