// The MicroOS health-checker plugin (overlays/usr/libexec/health-checker/piccolo.sh) against the
// real health service bundle, fed by the real daemon and proxy bundles: it retries within its
// bound, passes on 200 (a locked device included), fails on a fatal component (which makes
// MicroOS roll back), with curl and with bash's /dev/tcp. Its `stop` runs with the systemctl fake
// of test/fixtures/os-update-fake/ first on PATH, for that call only: systemd is not PID 1 here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { FAKE_BIN, FakeSystem } from '../fixtures/os-update-fake/fake-system.js';
import { setUpDevice, TEST_PASSWORD } from '../support/portal.js';
import { ServiceProcess, getJson, removeTestDir, startTestDaemon, startTestProxy, waitFor } from '../support/processes.js';
import type { ApiSession } from '../support/api-session.js';

const PLUGIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../overlays/usr/libexec/health-checker/piccolo.sh');
const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-health-checker-'));
const stateDir = path.join(dir, 'state');
const healthSocket = path.join(dir, 'health.sock');
const internalSocket = path.join(dir, 'internal.sock');
const running: ServiceProcess[] = [];
let readyUrl = '';
let daemonApi = '';
let session: ApiSession;

interface PluginRun {
  code: number;
  stderr: string;
  ms: number;
}

function plugin(action: string, env: NodeJS.ProcessEnv = {}): Promise<PluginRun> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(PLUGIN, [action], { env: { ...process.env, PICCOLO_HEALTH_URL: readyUrl, ...env }, timeout: 120_000 }, (err, _stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stderr, ms: Date.now() - started }),
    );
  });
}

/** Only what the plugin needs besides curl (bash, timeout, sleep), so its /dev/tcp path runs. */
function pathWithoutCurl(): string {
  const bin = path.join(dir, 'bin-no-curl');
  mkdirSync(bin, { recursive: true });
  for (const tool of ['bash', 'timeout', 'sleep']) {
    const found = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    assert.ok(found, `${tool} not found`);
    symlinkSync(found, path.join(bin, tool));
  }
  return bin;
}

const VARIANTS: [string, () => NodeJS.ProcessEnv][] = [
  ['curl', () => ({})],
  ['/dev/tcp', (() => {
    let bin: string | undefined;
    return () => ({ PATH: (bin ??= pathWithoutCurl()) });
  })()],
];

async function readiness(): Promise<{ status: number; body: any }> {
  return getJson(readyUrl);
}

test.before(async () => {
  assert.ok(spawnSync('bash', ['-c', 'command -v curl']).status === 0, 'curl is installed (scripts/setup.sh)');
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  const health = await ServiceProcess.start('health', { PICCOLO_HEALTH_LISTEN: '127.0.0.1:0', PICCOLO_HEALTH_SOCKET: healthSocket }, TEST_BUNDLE_DIR);
  running.push(health);
  await health.notified('READY=1');
  readyUrl = `http://${await health.address('http')}/health/ready`;
});

test.after(async () => {
  await Promise.all(running.map((p) => p.kill('SIGKILL')));
  removeTestDir(dir);
});

test('nothing reported yet: check fails within its bound and says why', async () => {
  for (const [variant, env] of VARIANTS) {
    const run = await plugin('check', { PICCOLO_HEALTH_WAIT: '3', ...env() });
    assert.is(run.code, 1, `${variant}: ${run.stderr}`);
    assert.ok(run.ms >= 3000 && run.ms < 9000, `${variant}: gave up after ${run.ms} ms (bound 3 s)`);
    assert.match(run.stderr, /not ready after 3s \(last answer: HTTP 503\)/, variant);
    assert.match(run.stderr, /daemon: down \(has not reported yet\)/, variant);
  }
});

test('check retries while the services start, and passes once the device is ready', async () => {
  const waiting = plugin('check', { PICCOLO_HEALTH_WAIT: '90' });
  const daemon = await startTestDaemon(stateDir, {
    PICCOLO_HEALTH_SOCKET: healthSocket,
    PICCOLO_HEALTH_INTERVAL_MS: '200',
    PICCOLO_DAEMON_INTERNAL_SOCKET: internalSocket,
    PICCOLO_PODMAN_SOCKET: path.join(dir, 'no-podman.sock'),
  });
  running.push(daemon.proc);
  daemonApi = daemon.api;
  const proxy = await startTestProxy(internalSocket, dir, { PICCOLO_HEALTH_SOCKET: healthSocket, PICCOLO_HEALTH_INTERVAL_MS: '200' });
  running.push(proxy.proc);
  const run = await waiting;
  assert.is(run.code, 0, run.stderr);
  assert.is((await readiness()).status, 200);
  for (const [variant, env] of VARIANTS) assert.is((await plugin('check', { PICCOLO_HEALTH_WAIT: '5', ...env() })).code, 0, variant);
});

test('a locked device (waiting for its password after a reboot) passes: locked is a note, not a failure', async () => {
  session = await setUpDevice(daemonApi, stateDir);
  assert.is((await session.call('POST', '/api/v1/crypto/lock', { confirm: true })).status, 200);
  const locked = await waitFor(async () => {
    const r = await readiness();
    return r.body.notes.some((n: string) => /locked/.test(n)) ? r : undefined;
  }, 5000, 'health notes the lock');
  assert.is(locked.status, 200, JSON.stringify(locked.body));
  for (const [variant, env] of VARIANTS) {
    const run = await plugin('check', { PICCOLO_HEALTH_WAIT: '5', ...env() });
    assert.is(run.code, 0, `${variant}: ${run.stderr}`);
  }
});

test('a fatal component: check fails (MicroOS then rolls back), naming it; passes again once it recovers', async () => {
  const unlock = await session.call('POST', '/api/v1/crypto/unlock', { password: TEST_PASSWORD });
  assert.is(unlock.status, 200, JSON.stringify(unlock.body));
  // The test build's fault switch: the vault reports its persistence fatal, as on a lost volume.
  const fault = await fetch(`${daemonApi}/api/v1/test/persistence-fault`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fault: 'volume control is not mounted' }) });
  assert.is(fault.status, 200);
  const failing = await waitFor(async () => {
    const r = await readiness();
    return r.status === 503 ? r : undefined;
  }, 10_000, 'health turns 503');
  assert.ok(failing.body.reasons.includes('daemon.persistence: fatal (volume control is not mounted)'), JSON.stringify(failing.body));
  for (const [variant, env] of VARIANTS) {
    const run = await plugin('check', { PICCOLO_HEALTH_WAIT: '4', ...env() });
    assert.is(run.code, 1, variant);
    assert.ok(run.ms >= 4000 && run.ms < 10_000, `${variant}: ${run.ms} ms`);
    assert.match(run.stderr, /daemon\.persistence: fatal \(volume control is not mounted\)/, variant);
  }
  // A fault that clears within the wait: check keeps trying and passes.
  const waiting = plugin('check', { PICCOLO_HEALTH_WAIT: '30' });
  await new Promise((r) => setTimeout(r, 1500));
  await fetch(`${daemonApi}/api/v1/test/persistence-fault`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fault: null }) });
  const run = await waiting;
  assert.is(run.code, 0, run.stderr);
  assert.ok(run.ms >= 1500, `passed after ${run.ms} ms, once the fault cleared`);
});

test('stop: stops all four Piccolo units, the doors first (systemctl faked for this call)', async () => {
  const fake = FakeSystem.create(path.join(dir, 'fake-os'));
  const run = await plugin('stop', { PATH: `${FAKE_BIN}:${process.env.PATH}`, PICCOLO_FAKE_OS_STATE: fake.dir });
  assert.is(run.code, 0, run.stderr);
  assert.equal(fake.calls(), ['systemctl stop piccolo-tunnel.service piccolo-proxy.service piccolo-daemon.service piccolo-health.service']);
  // A systemctl that fails makes stop fail too, so health-checker's log shows it.
  const broken = path.join(dir, 'bin-broken');
  mkdirSync(broken);
  symlinkSync('/bin/false', path.join(broken, 'systemctl'));
  assert.is.not((await plugin('stop', { PATH: `${broken}:${process.env.PATH}` })).code, 0);
  assert.is.not((await plugin('bogus')).code, 0, 'an unknown action is refused');
});

test.run();
