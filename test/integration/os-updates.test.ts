// OS updates through the real daemon bundle, with the transactional-update, snapper, tukit,
// systemd-run, systemctl, journalctl and findmnt fakes of test/fixtures/os-update-fake/ first on
// the daemon's update search path: only MicroOS has transactional-update, so it cannot run here.
// The fakes follow the documented contract (exit codes, `snapper --json list`, a delay per
// package); what is tested is the daemon: status, one apply at a time with progress on the events
// stream, the timeout, reboot, rollback with its notice, bad input, and the image without the tools.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { FAKE_BIN, FakeSystem } from '../fixtures/os-update-fake/fake-system.js';
import { ApiSession } from '../support/api-session.js';
import { setUpDevice, TEST_PASSWORD } from '../support/portal.js';
import { removeTestDir, startTestDaemon, waitFor, type ServiceProcess } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-os-updates-'));
const stateDir = path.join(dir, 'state');
const TIMEOUT_MS = 6000;
const fake = FakeSystem.create(path.join(dir, 'fake-os'), { dup: { mode: 'update', packages: 6, stepMs: 100 } });
const running: ServiceProcess[] = [];
let base = '';
let api: ApiSession;
let daemonProc: ServiceProcess;

async function startDaemon(): Promise<void> {
  const daemon = await startTestDaemon(stateDir, {
    PICCOLO_OS_UPDATE_PATH: `${FAKE_BIN}:${process.env.PATH}`,
    PICCOLO_FAKE_OS_STATE: fake.dir,
    PICCOLO_OS_UPDATE_TIMEOUT_MS: String(TIMEOUT_MS),
    PICCOLO_PODMAN_SOCKET: path.join(dir, 'no-podman.sock'),
  });
  running.push(daemon.proc);
  daemonProc = daemon.proc;
  base = daemon.api;
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  await startDaemon();
  api = await setUpDevice(base, stateDir);
});

test.after(async () => {
  await Promise.all(running.map((p) => p.kill('SIGKILL')));
  removeTestDir(dir);
});

const status = async () => {
  const res = await api.call('GET', '/api/v1/updates/os');
  assert.is(res.status, 200, JSON.stringify(res.body));
  return res.body;
};

async function events(): Promise<{ received: any[]; close: () => void }> {
  const ws = new WebSocket(base.replace('http', 'ws') + '/api/v1/events', { headers: { cookie: api.cookie, origin: base } });
  const received: any[] = [];
  ws.on('message', (data) => received.push(JSON.parse(String(data))));
  await new Promise((resolve, reject) => ws.on('open', resolve).on('error', reject));
  return { received, close: () => ws.close() };
}

/** Waits for the run to end: the last os.update event says finished, and the status agrees. */
async function finishedRun(timeoutMs = 30_000): Promise<any> {
  return waitFor(async () => {
    const s = await status();
    return s.running === undefined && s.lastRun && s.lastRun.result !== 'running' ? s : undefined;
  }, timeoutMs, 'the OS update run to finish');
}

const auditEvents = () =>
  readFileSync(path.join(stateDir, 'audit.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line))
    .filter((e) => e.event.startsWith('os.'));

test('status: the snapshots, the one running and the one next, the root file system, nothing pending', async () => {
  assert.is((await new ApiSession(base).call('GET', '/api/v1/updates/os')).status, 401, 'signed in only');
  const s = await status();
  assert.is(s.available, true);
  assert.is(s.version, '4.8.3');
  assert.equal(s.snapshots.map((x: any) => [x.number, x.current, x.default, x.important]), [[1, false, false, false], [2, true, true, true]]);
  assert.is(s.snapshots[1].date, '2026-11-20T03:30:11.000Z');
  assert.is(s.currentSnapshot, 2);
  assert.is(s.defaultSnapshot, 2);
  assert.is(s.rebootPending, false);
  assert.equal(s.root, { source: '/dev/vda3[/@/.snapshots/2/snapshot]', fstype: 'btrfs', readOnly: true });
  assert.is(s.unit, undefined, 'no run, no unit');
  assert.equal(s.journal, []);
  assert.is(s.lastRun, undefined);
  assert.is(s.rolledBack, undefined);
  assert.ok(fake.calls().includes('snapper --utc --iso --json list'), fake.calls().join('\n'));
});

test('bad input: 4xx naming the field, nothing run', async () => {
  const before = fake.calls().filter((c) => c.startsWith('transactional-update rollback') || c.startsWith('systemd-run')).length;
  const cases: [string, unknown, number, RegExp][] = [
    ['/api/v1/updates/os/apply', { now: true }, 400, /unknown field now/],
    ['/api/v1/updates/os/reboot', {}, 400, /missing field confirm/],
    ['/api/v1/updates/os/reboot', { confirm: 'yes' }, 400, /confirm: must be equal to constant/],
    ['/api/v1/updates/os/rollback', { snapshot: 'one', confirm: '1' }, 400, /snapshot: must be integer/],
    ['/api/v1/updates/os/rollback', { snapshot: 1 }, 400, /missing field confirm/],
    ['/api/v1/updates/os/rollback', { snapshot: 1, confirm: '2' }, 400, /confirm: type the snapshot's number \(1\)/],
    ['/api/v1/updates/os/rollback', { snapshot: 99, confirm: '99' }, 400, /snapshot: there is no snapshot 99/],
    ['/api/v1/updates/os/rollback', { snapshot: 2, confirm: '2' }, 409, /snapshot 2 is already the one the device starts next/],
  ];
  for (const [route, body, expected, message] of cases) {
    const res = await api.call('POST', route, body);
    assert.is(res.status, expected, `${route} ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
    assert.match(JSON.stringify(res.body.error), message);
  }
  const text = await fetch(base + '/api/v1/updates/os/apply', { method: 'POST', headers: { cookie: api.cookie, 'x-csrf-token': api.csrf, 'content-type': 'text/plain' }, body: 'go' });
  assert.is(text.status, 415);
  const noCsrf = await fetch(base + '/api/v1/updates/os/apply', { method: 'POST', headers: { cookie: api.cookie, 'content-type': 'application/json' }, body: '{}' });
  assert.is(noCsrf.status, 403);
  const after = fake.calls().filter((c) => c.startsWith('transactional-update rollback') || c.startsWith('systemd-run')).length;
  assert.is(after, before, 'no update or rollback ran');
});

test('apply: one at a time (the second gets 409), progress on the events stream, a new default snapshot waiting for a reboot', async () => {
  const stream = await events();
  const [first, second] = await Promise.all([api.call('POST', '/api/v1/updates/os/apply', {}), api.call('POST', '/api/v1/updates/os/apply', {})]);
  const statuses = [first.status, second.status].sort();
  assert.equal(statuses, [202, 409], `${JSON.stringify(first.body)} ${JSON.stringify(second.body)}`);
  const accepted = first.status === 202 ? first : second;
  const refused = first.status === 202 ? second : first;
  assert.is(accepted.body.run.result, 'running');
  assert.is(accepted.body.run.fromSnapshot, 2);
  assert.match(refused.body.error.message, /already running/);
  // While it runs: the status says so, a reboot is refused.
  const during = await status();
  assert.ok(during.running, JSON.stringify(during));
  const reboot = await api.call('POST', '/api/v1/updates/os/reboot', { confirm: true });
  assert.is(reboot.status, 409);
  assert.match(reboot.body.error.message, /being applied/);

  const done = await finishedRun();
  stream.close();
  assert.is(done.lastRun.result, 'updated', JSON.stringify(done.lastRun));
  assert.is(done.lastRun.snapshot, 3);
  assert.is(done.lastRun.exitCode, 0);
  assert.is(done.defaultSnapshot, 3);
  assert.is(done.currentSnapshot, 2);
  assert.is(done.rebootPending, true);
  assert.ok(done.journal.includes('New default snapshot is #3 (/.snapshots/3/snapshot).'), done.journal.join('\n'));

  const updates = stream.received.filter((e) => e.type === 'os.update');
  const percents = updates.map((e) => e.data.progress?.percent).filter((p) => p !== undefined);
  assert.ok(percents.length >= 12, `a progress event per package downloaded and installed: ${percents}`);
  assert.equal([...percents].sort((a, b) => a - b), percents, `progress only grows: ${percents}`);
  assert.is(percents.at(-1), 100);
  assert.ok(updates.some((e) => e.data.progress?.phase === 'downloading') && updates.some((e) => e.data.progress?.phase === 'installing'));
  assert.is(updates.at(-1).data.state, 'finished');
  assert.is(updates.at(-1).data.run.result, 'updated');

  // Its own unit, waited for; progress read from that unit's journal, not through a pipe.
  const unit = done.lastRun.unit;
  assert.match(unit, /^piccolo-os-update-\d{17}\.service$/);
  assert.equal(done.unit, { name: unit, activeState: 'inactive', result: 'success' });
  assert.ok(fake.calls().includes(`systemd-run --unit ${unit} --collect --wait --quiet -p RuntimeMaxSec=${TIMEOUT_MS / 1000 + 60} transactional-update --non-interactive dup`), fake.calls().join('\n'));
  assert.ok(fake.calls().includes(`journalctl -u ${unit} -f -n all -o cat --no-pager`));
  // The refused second apply and the refused reboot are on the record too.
  assert.equal(auditEvents().map((e) => `${e.event}:${e.outcome}`).slice(-4).sort(), ['os.reboot:error', 'os.update.apply:error', 'os.update.apply:ok', 'os.update.result:ok']);
});

test('reboot: systemctl reboot, and the new snapshot runs', async () => {
  const res = await api.call('POST', '/api/v1/updates/os/reboot', { confirm: true });
  assert.is(res.status, 202, JSON.stringify(res.body));
  assert.ok(fake.calls().includes('systemctl reboot'));
  // The fake's reboot boots the default snapshot (the daemon is the same process here).
  const s = await status();
  assert.is(s.currentSnapshot, 3);
  assert.is(s.rebootPending, false);
  assert.is(s.rolledBack, undefined);
  assert.equal(auditEvents().at(-1).event, 'os.reboot');
});

test('rollback to a chosen snapshot: typed confirmation, audited, and the last update shows as rolled back', async () => {
  const res = await api.call('POST', '/api/v1/updates/os/rollback', { snapshot: 2, confirm: '2' });
  assert.is(res.status, 200, JSON.stringify(res.body));
  assert.equal({ ...res.body.rollback, at: undefined }, { at: undefined, from: 3, to: 2 });
  assert.ok(fake.calls().includes('transactional-update rollback 2'));
  assert.is(res.body.status.defaultSnapshot, 2);
  assert.is(res.body.status.rebootPending, true);
  assert.equal(res.body.status.rolledBack, { snapshot: 3, by: 'owner', runningSnapshot: 3 });
  const audit = auditEvents().at(-1);
  assert.equal([audit.event, audit.outcome, audit.detail], ['os.rollback', 'ok', 'to snapshot 2']);
  await api.call('POST', '/api/v1/updates/os/reboot', { confirm: true });
  assert.equal((await status()).rolledBack, { snapshot: 3, by: 'owner', runningSnapshot: 2 });
});

test('an update that health-checker rolled back after a bad boot shows as rolled back automatically', async () => {
  assert.is((await api.call('POST', '/api/v1/updates/os/apply', {})).status, 202);
  const done = await finishedRun();
  assert.is(done.lastRun.snapshot, 4);
  assert.is(done.rolledBack, undefined, 'a fresh update is not rolled back');
  await api.call('POST', '/api/v1/updates/os/reboot', { confirm: true });
  assert.is((await status()).currentSnapshot, 4);
  // What health-checker does when a plugin's check fails on the first boot: the last good
  // snapshot becomes the default again, then a reboot.
  fake.change((s) => void (s.default = 2));
  await api.call('POST', '/api/v1/updates/os/reboot', { confirm: true });
  const s = await status();
  assert.is(s.currentSnapshot, 2);
  assert.equal(s.rolledBack, { snapshot: 4, by: 'automatic', runningSnapshot: 2 });
});

test('a failing update: result failed with the reason, the default snapshot unchanged', async () => {
  fake.change((s) => void (s.dup.mode = 'fail'));
  assert.is((await api.call('POST', '/api/v1/updates/os/apply', {})).status, 202);
  const done = await finishedRun();
  assert.is(done.lastRun.result, 'failed');
  assert.is(done.lastRun.exitCode, 1);
  assert.match(done.lastRun.message, /zypper dup on \S+ failed with exit code 8/);
  assert.is(done.defaultSnapshot, 2);
  assert.equal(done.snapshots.map((x: any) => x.number), [1, 2, 3, 4]);
  assert.equal(auditEvents().at(-1).outcome, 'error');
});

test('nothing to update: result up-to-date, no new snapshot', async () => {
  fake.change((s) => void (s.dup.mode = 'nothing'));
  assert.is((await api.call('POST', '/api/v1/updates/os/apply', {})).status, 202);
  const done = await finishedRun();
  assert.is(done.lastRun.result, 'up-to-date');
  assert.is(done.lastRun.snapshot, undefined);
  assert.is(done.rebootPending, false);
});

test('an update that hangs is stopped at the timeout; the next one may run', async () => {
  fake.change((s) => void (s.dup.mode = 'hang'));
  const t0 = Date.now();
  assert.is((await api.call('POST', '/api/v1/updates/os/apply', {})).status, 202);
  const done = await finishedRun(TIMEOUT_MS + 20_000);
  const elapsed = Date.now() - t0;
  assert.is(done.lastRun.result, 'timed-out');
  assert.ok(elapsed >= TIMEOUT_MS && elapsed < TIMEOUT_MS + 15_000, `stopped after ${elapsed} ms`);
  assert.ok(fake.calls().includes(`systemctl stop ${done.lastRun.unit}`), 'the unit is stopped, not only its systemd-run');
  // The status read may have begun just before the stop; the unit is inactive right after it.
  await waitFor(async () => ((await status()).unit?.activeState !== 'active' ? true : undefined), 5000, 'the update unit stopped');
  fake.change((s) => void (s.dup.mode = 'nothing'));
  assert.is((await api.call('POST', '/api/v1/updates/os/apply', {})).status, 202, 'the lock is free again');
  assert.is((await finishedRun()).lastRun.result, 'up-to-date');
});

test('a daemon restarted mid-run finds the run again: still running (a second apply gets 409), then its result', async () => {
  // Held before its first package while the daemon is away, so it is surely still going when it is back.
  fake.change((s) => void ((s.dup.mode = 'update'), (s.dup.paused = true)));
  assert.is((await api.call('POST', '/api/v1/updates/os/apply', {})).status, 202);
  await waitFor(async () => (/packages are going to be upgraded/.test((await status()).running?.progress?.line ?? '') ? true : undefined), 10_000, 'the run under way');
  const unit = (await status()).running.run.unit;
  await daemonProc.kill('SIGKILL');
  await startDaemon();
  // The restarted device is locked (no TPM here): the password opens it and signs in.
  api = new ApiSession(base);
  const unlock = await api.call('POST', '/api/v1/crypto/unlock', { password: TEST_PASSWORD });
  assert.is(unlock.status, 200, JSON.stringify(unlock.body));
  const during = await status();
  assert.is(during.running?.run.unit, unit, `the unit outlived the daemon: ${JSON.stringify(during.unit)}`);
  assert.is(during.unit.activeState, 'active');
  const again = await api.call('POST', '/api/v1/updates/os/apply', {});
  assert.is(again.status, 409);
  assert.match(again.body.error.message, /already running .*started before the daemon restarted/);
  fake.change((s) => void (s.dup.paused = false));
  const done = await finishedRun();
  assert.is(done.lastRun.result, 'updated', JSON.stringify(done.lastRun));
  assert.is(done.lastRun.snapshot, 5);
  assert.is(done.defaultSnapshot, 5);
  assert.match(done.lastRun.message, /snapshot 5 is ready/);
});

test('an image without transactional-update (the Debian image): "not available on this image", not an error', async () => {
  const emptyDir = path.join(dir, 'no-tools');
  mkdirSync(emptyDir);
  const otherState = path.join(dir, 'debian-state');
  const debian = await startTestDaemon(otherState, {
    // The system's own folders: this Debian machine has systemctl and findmnt, but no transactional-update.
    PICCOLO_OS_UPDATE_PATH: `${emptyDir}:/usr/sbin:/usr/bin:/sbin:/bin`,
    PICCOLO_PODMAN_SOCKET: path.join(dir, 'no-podman.sock'),
    PICCOLO_DAEMON_INTERNAL_SOCKET: path.join(dir, 'debian-internal.sock'),
  });
  running.push(debian.proc);
  const session = await setUpDevice(debian.api, otherState);
  const res = await session.call('GET', '/api/v1/updates/os');
  assert.is(res.status, 200);
  assert.equal(res.body, { available: false, reason: 'OS updates are not available on this image: it has no transactional-update (only the MicroOS images update themselves).' });
  for (const [route, body] of [['/api/v1/updates/os/apply', {}], ['/api/v1/updates/os/reboot', { confirm: true }], ['/api/v1/updates/os/rollback', { snapshot: 1, confirm: '1' }]] as const) {
    const refused = await session.call('POST', route, body);
    assert.is(refused.status, 409, route);
    assert.is(refused.body.error.code, 'not_available');
  }
  const errors = debian.proc.logs.filter((l) => l.level === 'error' && String(l.msg).includes('os'));
  assert.equal(errors, [], 'nothing about OS updates logged as an error');
});

test.run();
