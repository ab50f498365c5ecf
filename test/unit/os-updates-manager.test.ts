// The OS update manager with its runner pointed at the fakes (test/fixtures/os-update-fake/),
// in process: the runner is a constructor option, so no daemon is needed for these cases.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../services/common/logger.js';
import { OsUpdateManager } from '../../services/daemon/updates/manager.js';
import { pathRunner } from '../../services/daemon/updates/runner.js';
import { FAKE_BIN, FakeSystem } from '../fixtures/os-update-fake/fake-system.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-os-manager-'));
const fake = FakeSystem.create(path.join(dir, 'fake-os'));
const logger = createLogger({ service: 'test', write: () => {} });
const audit = { record: async () => {} };

function manager(searchPath: string): OsUpdateManager {
  return new OsUpdateManager({ runner: pathRunner(searchPath, { ...process.env, PICCOLO_FAKE_OS_STATE: fake.dir }), recordFile: path.join(dir, 'record.json'), timeoutMs: 10_000, publish: () => {}, audit, logger, now: Date.now });
}

test.after(() => rmSync(dir, { recursive: true, force: true }));

test("snapper cannot answer: the list comes from tukit's snapshots", async () => {
  fake.change((s) => void (s.snapperBroken = true));
  const status = await manager(`${FAKE_BIN}:${process.env.PATH}`).status();
  fake.change((s) => void (s.snapperBroken = false));
  assert.ok(status.available);
  if (!status.available) return;
  assert.equal(status.snapshots.map((s) => [s.number, s.current, s.default]), [[1, false, false], [2, true, true]]);
  assert.ok(fake.calls().includes('snapper --no-dbus --utc --iso --json list'), 'snapper without D-Bus was tried first');
  assert.ok(fake.calls().includes('tukit snapshots -f default,active,number,date,description'));
});

test('no snapshots readable at all: a 503 naming what failed, not a 500', async () => {
  const bin = path.join(dir, 'only-tu');
  mkdirSync(bin);
  // transactional-update and a snapper that fails, no tukit: nothing lists the snapshots.
  const { symlinkSync } = await import('node:fs');
  symlinkSync(path.join(FAKE_BIN, 'transactional-update'), path.join(bin, 'transactional-update'));
  symlinkSync(path.join(FAKE_BIN, 'snapper'), path.join(bin, 'snapper'));
  fake.change((s) => void (s.snapperBroken = true));
  try {
    await manager(`${bin}:/usr/bin:/bin`).status();
    assert.unreachable('status should fail');
  } catch (err) {
    assert.is((err as { status?: number }).status, 503);
    assert.match((err as Error).message, /could not read the snapshots: snapper --utc --iso --json list: Failure/);
  } finally {
    fake.change((s) => void (s.snapperBroken = false));
  }
});

test('without transactional-update on the search path: not available, and nothing else is run', async () => {
  const empty = path.join(dir, 'empty');
  mkdirSync(empty);
  const before = fake.calls().length;
  assert.equal(await manager(empty).status(), { available: false, reason: 'OS updates are not available on this image: it has no transactional-update (only the MicroOS images update themselves).' });
  assert.is(fake.calls().length, before);
});

test.run();
