// SerialQueue: pieces run one at a time in the order asked, each caller gets its own result or
// error, and a failure (a rejection or a throw) does not stop what comes after it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeyedSerialQueue, SerialQueue } from '../../services/common/serial-queue.js';
import { rejects } from '../support/assertions.js';

test('pieces run one at a time, in the order they were queued', async () => {
  const queue = new SerialQueue();
  const log: string[] = [];
  let running = 0;
  let most = 0;
  const piece = (name: string, ms: number) =>
    queue.run(async () => {
      running++;
      most = Math.max(most, running);
      log.push(`start ${name}`);
      await sleep(ms);
      log.push(`end ${name}`);
      running--;
      return name;
    });
  // The slow one first: without the queue the fast ones would finish before it.
  const results = await Promise.all([piece('a', 30), piece('b', 1), piece('c', 10)]);
  assert.equal(results, ['a', 'b', 'c']);
  assert.is(most, 1);
  assert.equal(log, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
});

test('a failure goes to its caller and does not poison the queue', async () => {
  const queue = new SerialQueue();
  const rejected = queue.run(async () => {
    await sleep(5);
    throw new Error('first failed');
  });
  const thrown = queue.run(() => {
    throw new TypeError('second threw synchronously');
  });
  const after = queue.run(async () => 'third ran');
  assert.is((await rejects(rejected, Error)).message, 'first failed');
  await rejects(thrown, TypeError);
  assert.is(await after, 'third ran');
  assert.is(await queue.run(() => 42), 42, 'a plain value works too');
});

test('idle waits for everything queued so far, never rejects, and size counts what is pending', async () => {
  const queue = new SerialQueue();
  const done: number[] = [];
  void queue.run(async () => {
    await sleep(10);
    done.push(1);
  });
  void queue.run(async () => {
    throw new Error('ignored by idle');
  }).catch(() => {});
  void queue.run(async () => void done.push(3));
  assert.is(queue.size, 3);
  await queue.idle();
  assert.equal(done, [1, 3]);
  assert.is(queue.size, 0);
});

test('work queued from inside a piece runs after it, not inside it (no deadlock when not awaited)', async () => {
  const queue = new SerialQueue();
  const log: string[] = [];
  await queue.run(async () => {
    void queue.run(async () => void log.push('inner'));
    log.push('outer');
  });
  await queue.idle();
  assert.equal(log, ['outer', 'inner']);
});

test('a keyed queue serializes per key, runs keys side by side, and forgets idle keys', async () => {
  const queue = new KeyedSerialQueue();
  const log: string[] = [];
  const piece = (key: string, name: string, ms: number) =>
    queue.run(key, async () => {
      log.push(`start ${name}`);
      await sleep(ms);
      log.push(`end ${name}`);
    });
  const all = Promise.all([piece('x', 'x1', 30), piece('x', 'x2', 1), piece('y', 'y1', 5)]);
  assert.equal(queue.keys.sort(), ['x', 'y']);
  await all;
  // y1 started while x1 was still running; x2 waited for x1.
  assert.ok(log.indexOf('start y1') < log.indexOf('end x1'), log.join(', '));
  assert.ok(log.indexOf('start x2') > log.indexOf('end x1'), log.join(', '));
  assert.is((await rejects(queue.run('x', () => Promise.reject(new Error('x failed'))), Error)).message, 'x failed');
  await queue.run('x', async () => void log.push('after failure'));
  assert.is(log.at(-1), 'after failure');
  await sleep(0);
  assert.equal(queue.keys, []);
});

test.run();
