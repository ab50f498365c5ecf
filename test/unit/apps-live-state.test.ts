// LiveEngineState's own rules, with a scripted engine (the real one is in
// test/integration/apps-state.test.ts): a refresh is a read that starts after the call, reads never
// overlap, a burst of events is one read, quiet events (execs) none, and while the engine cannot
// be read the reads fail instead of answering an old state.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger } from '../../services/common/logger.js';
import type { EngineEvent, EngineState } from '../../services/daemon/apps/engine.js';
import { LiveEngineState } from '../../services/daemon/apps/live-state.js';

const logger = createLogger({ service: 'test', level: 'error', write: () => {} });

/** An engine whose reads answer in order when released, and whose event stream the test pushes to. */
function scriptedEngine() {
  let version = 0;
  let failWith: Error | undefined;
  const pending: (() => void)[] = [];
  let active = 0;
  let maxActive = 0;
  let push: ((event: EngineEvent) => void) | undefined;
  const engine = {
    reads: 0,
    hold: false,
    async state(): Promise<EngineState> {
      engine.reads++;
      active++;
      maxActive = Math.max(maxActive, active);
      const seen = version;
      if (engine.hold) await new Promise<void>((resolve) => pending.push(resolve));
      active--;
      if (failWith) throw failWith;
      return { containers: [], networks: [{ name: `v${seen}`, app: 'a', subnet: undefined, internal: false }] };
    },
    async events(signal: AbortSignal): Promise<AsyncIterable<EngineEvent>> {
      const queue: EngineEvent[] = [];
      let wake: (() => void) | undefined;
      push = (event) => (queue.push(event), wake?.());
      signal.addEventListener('abort', () => wake?.());
      return (async function* () {
        while (!signal.aborted) {
          if (!queue.length) await new Promise<void>((resolve) => (wake = resolve));
          while (queue.length) yield queue.shift()!;
        }
      })();
    },
  };
  return {
    engine,
    bump: () => void version++,
    release: () => pending.splice(0).forEach((resolve) => resolve()),
    fail: (err: Error | undefined) => void (failWith = err),
    push: (action: string) => push!({ type: 'container', action, id: 'c1', app: 'a' }),
    get maxActive() {
      return maxActive;
    },
  };
}

const versionOf = (state: EngineState) => state.networks[0]!.name;
const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

test('a refresh is a read started after the call; reads never overlap; calls while one waits share it', async () => {
  const script = scriptedEngine();
  const live = new LiveEngineState({ engine: script.engine, logger, resyncMs: 3_600_000 });
  await live.start();
  await tick(10);
  const readsAfterStart = script.engine.reads;
  script.engine.hold = true;
  const first = live.refresh();
  await tick();
  script.bump(); // changed while the first read is under way: it cannot have seen this
  const second = live.refresh();
  const third = live.refresh();
  assert.is(second, third, 'calls while a read waits share it');
  script.release();
  assert.is(versionOf(await first), 'v0');
  await tick();
  script.release();
  assert.is(versionOf(await second), 'v1', 'the waiting read started after the change');
  assert.is(script.maxActive, 1, 'never two reads at once');
  assert.is(script.engine.reads, readsAfterStart + 2);
  script.engine.hold = false;
  await live.stop();
});

test('a burst of events is one read; exec events none; a change tells the listeners', async () => {
  const script = scriptedEngine();
  const live = new LiveEngineState({ engine: script.engine, logger, resyncMs: 3_600_000, settleMs: 30 });
  let changes = 0;
  live.onChange(() => changes++);
  await live.start();
  await tick(50);
  const reads = script.engine.reads;
  const changesBefore = changes;
  for (const action of ['exec_create', 'exec_start', 'exec_died']) script.push(action);
  await tick(80);
  assert.is(script.engine.reads, reads, 'execs change nothing that is read');
  script.bump();
  for (const action of ['create', 'init', 'start']) script.push(action);
  await tick(80);
  assert.is(script.engine.reads, reads + 1, 'one read for the burst');
  assert.is(versionOf(live.current()), 'v1');
  assert.is(changes, changesBefore + 1);
  script.push('die');
  await tick(80);
  assert.is(changes, changesBefore + 1, 'a read that found nothing new tells nobody');
  await live.stop();
});

test('while the engine cannot be read, current() fails with its error; the next good read clears it', async () => {
  const script = scriptedEngine();
  const live = new LiveEngineState({ engine: script.engine, logger, resyncMs: 3_600_000 });
  await live.start();
  assert.is(versionOf(live.current()), 'v0');
  script.fail(new Error('connect ENOENT podman.sock'));
  await live.refresh().catch(() => {});
  assert.throws(() => live.current(), /ENOENT/);
  script.fail(undefined);
  await live.refresh();
  assert.is(versionOf(live.current()), 'v0');
  await live.stop();
});

test('the periodic resync reads without any event', async () => {
  const script = scriptedEngine();
  const live = new LiveEngineState({ engine: script.engine, logger, resyncMs: 40 });
  await live.start();
  script.bump();
  await tick(150);
  assert.is(versionOf(live.current()), 'v1');
  await live.stop();
  const reads = script.engine.reads;
  await tick(100);
  assert.is(script.engine.reads, reads, 'stopped: no more reads');
});

test.run();
