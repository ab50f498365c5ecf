import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventEmitter } from 'node:events';
import { startService, type Module } from '../../services/common/lifecycle.js';
import { createLogger } from '../../services/common/logger.js';
import { createNotifier, type Notifier } from '../../services/common/notify.js';

const logger = createLogger({ service: 'test', write: () => {} });

function recordingNotifier(events: string[], watchdogIntervalMs?: number): Notifier {
  return {
    ready: async () => void events.push('READY'),
    status: async (text) => void events.push(`STATUS=${text}`),
    watchdog: async () => void events.push('WATCHDOG'),
    watchdogIntervalMs,
  };
}

function module(name: string, events: string[], failOn?: 'start' | 'stop'): Module {
  return {
    name,
    start: async () => {
      if (failOn === 'start') throw new Error(`${name} cannot bind`);
      events.push(`start ${name}`);
    },
    stop: async () => {
      events.push(`stop ${name}`);
      if (failOn === 'stop') throw new Error(`${name} stuck`);
    },
  };
}

test('starts in order, READY after the last start, stops in reverse on SIGTERM', async () => {
  const events: string[] = [];
  const signals = new EventEmitter();
  const service = await startService({ logger, notifier: recordingNotifier(events), signals, modules: [module('a', events), module('b', events)] });
  assert.equal(events, ['start a', 'start b', 'READY']);
  signals.emit('SIGTERM', 'SIGTERM');
  assert.is(await service.stopped, 0);
  assert.equal(events.slice(3), ['stop b', 'stop a']);
  assert.is(signals.listenerCount('SIGTERM'), 0);
});

test('a module that fails to start: started ones stop, READY is never sent', async () => {
  const events: string[] = [];
  const modules = [module('a', events), module('b', events, 'start'), module('c', events)];
  try {
    await startService({ logger, notifier: recordingNotifier(events), signals: new EventEmitter(), modules });
    assert.unreachable('start should fail');
  } catch (err) {
    assert.match((err as Error).message, /b cannot bind/);
  }
  assert.equal(events, ['start a', 'stop a']);
});

test('a failing stop still stops the rest and yields exit code 1', async () => {
  const events: string[] = [];
  const modules = [module('a', events), module('b', events, 'stop')];
  const service = await startService({ logger, notifier: recordingNotifier(events), signals: new EventEmitter(), modules });
  assert.is(await service.stop('test'), 1);
  assert.equal(events.slice(-2), ['stop b', 'stop a']);
});

test('pings the watchdog from the event loop until stopped', async () => {
  const events: string[] = [];
  const service = await startService({ logger, notifier: recordingNotifier(events, 10), signals: new EventEmitter(), modules: [] });
  await new Promise((r) => setTimeout(r, 55));
  await service.stop('test');
  const pings = events.filter((e) => e === 'WATCHDOG').length;
  assert.ok(pings >= 3, `expected several pings, got ${pings}`);
  await new Promise((r) => setTimeout(r, 30));
  assert.is(events.filter((e) => e === 'WATCHDOG').length, pings, 'no ping after stop');
});

test('notifier: no-op without NOTIFY_SOCKET; watchdog interval is half of WATCHDOG_USEC, only for our pid', async () => {
  const off = createNotifier({ env: { WATCHDOG_USEC: '30000000' }, pid: 42 });
  assert.is(off.watchdogIntervalMs, undefined);
  await off.ready(); // must not spawn anything or throw
  assert.is(createNotifier({ env: { NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '30000000' }, pid: 42 }).watchdogIntervalMs, 15000);
  assert.is(createNotifier({ env: { NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '7' }, pid: 42 }).watchdogIntervalMs, undefined);
  assert.is(createNotifier({ env: { NOTIFY_SOCKET: '/x' }, pid: 42 }).watchdogIntervalMs, undefined);
});

test.run();
