// A service's own component through a real HealthReporter, over a real unix socket, into the health
// service's registry: not ready while its modules start (however long that takes), ready once they
// serve, down as soon as it begins to stop.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HealthReporter, ServingReport, type ComponentState } from '../../services/common/health-report.js';
import { startService, type Module } from '../../services/common/lifecycle.js';
import { createLogger } from '../../services/common/logger.js';
import { ComponentRegistry, parseReport } from '../../services/health/registry.js';
import { waitFor } from '../support/processes.js';

const logger = createLogger({ service: 'test', write: () => {} });
const notifier = { ready: async () => {}, status: async () => {}, watchdog: async () => {}, watchdogIntervalMs: undefined };
const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-serving-'));
const socketPath = path.join(dir, 'report.sock');
const registry = new ComponentRegistry(['proxy']);
const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    registry.apply(parseReport(JSON.parse(Buffer.concat(chunks).toString())), Date.now());
    res.writeHead(204).end();
  });
});

/** A module whose start and stop wait until the test lets them go on. */
function heldModule() {
  let releaseStart!: () => void;
  let releaseStop!: () => void;
  const started = new Promise<void>((resolve) => (releaseStart = resolve));
  const stopped = new Promise<void>((resolve) => (releaseStop = resolve));
  const module: Module = { name: 'slow', start: () => started, stop: () => stopped };
  return { module, releaseStart, releaseStop };
}

const reasons = () => registry.readiness(Date.now()).reasons;
const waitForReasons = (expected: string[], what: string) =>
  waitFor(async () => (JSON.stringify(reasons()) === JSON.stringify(expected) ? true : undefined), 3000, what).catch(() => assert.equal(reasons(), expected, what));

test.before(() => new Promise<void>((resolve) => server.listen(socketPath, resolve)));
test.after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

test('starting, then serving, degraded by what the service says, and down at once on stop', async () => {
  const health = new HealthReporter({ socketPath, logger, intervalMs: 100 });
  let current: { state: ComponentState; reason?: string } = { state: 'ok' };
  const serving = new ServingReport(health, 'proxy', () => current);
  const slow = heldModule();
  const signals = new EventEmitter();
  const service = startService({ logger, notifier, signals, modules: [health, slow.module, serving] });
  try {
    await waitForReasons(['proxy: down (starting)'], 'not ready while a module starts');
    // Longer than a report's lifetime (3 heartbeats): the heartbeat keeps the reason "starting".
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(reasons(), ['proxy: down (starting)'], 'still starting, not "stopped reporting"');
    current = { state: 'degraded', reason: 'not asked yet' };
    serving.refresh();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(reasons(), ['proxy: down (starting)'], 'a change during start waits for the start to end');

    slow.releaseStart();
    const running = await service;
    await waitForReasons([], 'ready once every module serves');
    assert.equal(registry.readiness(Date.now()).notes, ['proxy: degraded (not asked yet)'], 'the current state, reported at start');
    current = { state: 'ok' };
    serving.refresh();
    await waitFor(async () => (registry.readiness(Date.now()).notes.length === 0 ? true : undefined), 3000, 'ok again');

    signals.emit('SIGTERM', 'SIGTERM');
    await waitForReasons(['proxy: down (stopping)'], 'down while the other modules still stop');
    slow.releaseStop();
    assert.is(await running.stopped, 0);
    assert.equal(reasons(), ['proxy: down (stopping)']);
  } finally {
    // A failed assertion must not leave the service half-started with the heartbeat running.
    slow.releaseStart();
    slow.releaseStop();
    await (await service).stop('test over');
  }
});

test.run();
