// A full state disk against the real bundles: the daemon (real gocryptfs volumes, real Podman) with
// its state folder on a 2 MiB tmpfs, the real health service it reports to, and Chromium on the
// portal. With the disk filled: an install, a device rename and a password change each answer
// 507 disk_full; the old password still works and the log says the change failed; daemon.store is
// degraded with "state disk full: N bytes free" (/health/ready stays 200, with that note: reads
// still work, and a full disk is no reason for the OS to roll back); the portal shows the banner
// with what uses the space on every signed-in screen, and removing an app still works (the disk
// reserve is given up for it). Then the filler is removed and, without a restart, lock or unlock,
// the banner goes, health is ok again, the reserve comes back and the same three writes succeed.
// Last, two restarts on a full disk: with the reserve the store opens on it; without one the
// unlock answers 507 and the device opens by itself once space is freed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { ApiSession } from '../support/api-session.js';
import { fillFileSystem, mountTmpfs } from '../support/full-disk.js';
import { jobDone } from '../support/jobs.js';
import { checkScreen, launchChromium, signedInPage, TEST_PASSWORD } from '../support/portal.js';
import { startPodman, type TestPodman } from '../support/podman.js';
import { ServiceProcess, mountsUnder, startTestDaemon, waitFor } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-full-disk-'));
const stateDir = path.join(dir, 'state');
const healthSocket = path.join(dir, 'health.sock');
const filler = path.join(stateDir, 'filler');
const NEW_PASSWORD = 'Full-Disk-New-Pass-77';
const RESERVE_BYTES = 256 * 1024;
const reserveFile = path.join(stateDir, 'disk-reserve');
const reserveSize = () => (existsSync(reserveFile) ? statSync(reserveFile).size : 0);
let podman: TestPodman;
let health: ServiceProcess | undefined;
let daemon: ServiceProcess | undefined;
let browser: Browser | undefined;
let page: Page;
let api = '';
let healthUrl = '';
let session: ApiSession;
let app = '';
/** Installed before the disk fills, removed while it is full. */
let kept = '';
let image = '';
let recoveryKey = '';

const spec = (name = app, storage: string[] = []) => [`name: ${name}`, `image: ${image}`, 'listeners:', '  - name: web', '    guest_port: 80', '    protocol: http', ...storage].join('\n');
const call = (method: string, route: string, body?: unknown) => session.call(method, route, body);
const logMessages = () => daemon!.logs.map((l) => l.msg as string);

async function healthComponent(name: string): Promise<{ state: string; reason?: string }> {
  const detail = await (await fetch(`${healthUrl}/health/detail`)).json();
  return detail.components.find((c: any) => c.component === name);
}

const fillDisk = () => fillFileSystem(filler);

async function startDaemon(): Promise<void> {
  ({ proc: daemon, api } = await startTestDaemon(stateDir, { PICCOLO_PODMAN_SOCKET: podman.socketPath, PICCOLO_HEALTH_SOCKET: healthSocket, PICCOLO_HEALTH_INTERVAL_MS: '300', PICCOLO_HEALTH_URL: healthUrl, PICCOLO_DISK_RESERVE_BYTES: String(RESERVE_BYTES) }));
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  mkdirSync(stateDir);
  mountTmpfs(stateDir, '2m');
  podman = await startPodman();
  app = `${podman.prefix}web`;
  kept = `${podman.prefix}kept`;
  image = await podman.buildHttpdImage('v1', '<h1>full disk</h1>');
  // Only the daemon is required: no proxy runs here, and readiness is what is looked at.
  health = await ServiceProcess.start('health', { PICCOLO_HEALTH_LISTEN: '127.0.0.1:0', PICCOLO_HEALTH_SOCKET: healthSocket, PICCOLO_HEALTH_REQUIRED: 'daemon' }, TEST_BUNDLE_DIR);
  await health.notified('READY=1');
  healthUrl = `http://${await health.address('http')}`;
  await startDaemon();
  // Set up as setUpDevice does, keeping the recovery key the claim hands out.
  session = new ApiSession(api);
  const claim = await call('POST', '/api/v1/setup/claim', { claimCode: readFileSync(path.join(stateDir, 'claim-code'), 'utf8').trim() });
  recoveryKey = claim.body.recoveryKey;
  assert.is((await call('POST', '/api/v1/setup', { setupToken: claim.body.setupToken, password: TEST_PASSWORD, recoveryKeySaved: true })).status, 201);
  await waitFor(async () => ((await call('GET', '/api/v1/apps')).status === 200 ? true : undefined), 30_000, 'apps available');
  await waitFor(async () => (await healthComponent('daemon.store'))?.state === 'ok', 10_000, 'daemon.store ok');
  const install = await call('POST', '/api/v1/apps', { spec: spec(kept, ['storage:', '  persistent:', '    data:', '      container: /data']) });
  assert.is(install.status, 202, JSON.stringify(install.body));
  await jobDone(session, install.body.job, 120_000);
  // The watch makes the reserve at its first reading with room for it.
  await waitFor(() => reserveSize() === RESERVE_BYTES, 15_000, 'the disk reserve');
});

test.after(async () => {
  await browser?.close();
  await daemon?.kill('SIGTERM');
  await health?.kill('SIGTERM');
  await podman?.stop();
  try {
    // The gocryptfs mounts inside the tmpfs first (volumes outlive the daemon), then the tmpfs.
    for (const mountpoint of mountsUnder(stateDir).filter((m) => m !== stateDir)) execFileSync('fusermount', ['-u', '-z', mountpoint]);
    execFileSync('umount', ['-l', stateDir]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('disk full: install, rename and password change each answer 507 disk_full; the old password still works and the log says the change failed', async () => {
  await fillDisk();
  const fs = await statfs(stateDir);
  assert.is(fs.bfree, 0, 'the tmpfs is full');

  const install = await call('POST', '/api/v1/apps', { spec: spec() });
  assert.is(install.status, 507, JSON.stringify(install.body));
  assert.is(install.body.error.code, 'disk_full');
  assert.match(install.body.error.message, /^state disk full/);

  const rename = await call('PUT', '/api/v1/system/device', { name: 'fulldisk' });
  assert.is(rename.status, 507, JSON.stringify(rename.body));
  assert.is(rename.body.error.code, 'disk_full');
  assert.is((await call('GET', '/api/v1/system/device')).body.name, 'piccolo');

  const logsBefore = daemon!.logs.length;
  const change = await call('POST', '/api/v1/auth/password', { currentPassword: TEST_PASSWORD, newPassword: NEW_PASSWORD });
  assert.is(change.status, 507, JSON.stringify(change.body));
  assert.is(change.body.error.code, 'disk_full');
  assert.match(change.body.error.message, /the password was not changed, the old one still works/);
  const messages = daemon!.logs.slice(logsBefore).map((l) => l.msg);
  assert.ok(messages.includes('admin passphrase change failed; the old passphrase still works'), messages.join(' | '));
  assert.not.ok(messages.includes('admin passphrase changed'));
  // A reset with the recovery key is refused the same way, all or nothing.
  const reset = await call('POST', '/api/v1/crypto/reset-password', { recoveryKey, newPassword: NEW_PASSWORD });
  assert.is(reset.status, 507, JSON.stringify(reset.body));
  assert.is(reset.body.error.code, 'disk_full');
  assert.not.ok(daemon!.logs.slice(logsBefore).some((l) => l.msg === 'admin passphrase changed'));
  // The session survived (nothing changed), and the old password is the one that signs in.
  assert.is((await call('GET', '/api/v1/apps')).status, 200);
  assert.is((await call('POST', '/api/v1/auth/login', { password: NEW_PASSWORD })).status, 401);
  assert.is((await call('POST', '/api/v1/auth/login', { password: TEST_PASSWORD })).status, 200);
  const names = (await call('GET', '/api/v1/apps')).body.apps.map((a: any) => a.name);
  assert.equal(names, [kept]);
});

test('disk full: daemon.store is degraded with the free bytes, readiness stays 200 with that note, and the disk API says what uses the space', async () => {
  const store = await waitFor(async () => {
    const c = await healthComponent('daemon.store');
    return c?.state === 'degraded' ? c : undefined;
  }, 5000, 'daemon.store degraded');
  const free = (await statfs(stateDir)).bfree * (await statfs(stateDir)).bsize;
  assert.is(store.reason, `state disk full: ${free} bytes free`);
  const ready = await fetch(`${healthUrl}/health/ready`);
  assert.is(ready.status, 200);
  assert.ok((await ready.json()).notes.includes(`daemon.store: degraded (${store.reason})`));

  const disk = await call('GET', '/api/v1/system/disk');
  assert.is(disk.status, 200);
  assert.is(disk.body.full, true);
  assert.is(disk.body.reason, store.reason);
  assert.is(disk.body.freeBytes, free);
  assert.is(disk.body.totalBytes, 2 * 1024 * 1024);
  const usage = Object.fromEntries(disk.body.usage.map((u: any) => [u.name, u]));
  assert.ok(usage.store.bytes > 0, JSON.stringify(disk.body.usage));
  assert.ok(usage.apps.bytes > 0, JSON.stringify(usage.apps)); // the kept app's volume
  assert.is(usage.reserve.bytes, RESERVE_BYTES);
  // Podman keeps its images outside this tmpfs: they are listed, marked as on another disk.
  assert.ok(usage.images.bytes > 0, JSON.stringify(usage.images));
  assert.is(usage.images.onStateDisk, false);
  // The filler is none of the known folders: it is in "other", which is what is left to account for.
  assert.ok(usage.other.bytes >= statSync(filler).blocks * 512, JSON.stringify(usage.other));
  assert.ok(usage.other.bytes + usage.store.bytes <= disk.body.totalBytes);
  // Reads still work while full: the audit log (whose own appends failed) is read back whole.
  const audit = await call('GET', '/api/v1/system/audit');
  assert.is(audit.status, 200);
});

test('disk full: the portal shows the banner with what uses the space on every signed-in screen', async () => {
  browser = await launchChromium();
  page = await signedInPage(browser, api, session);
  await page.goto(`${api}/`);
  const banner = page.getByRole('alert').filter({ hasText: "The device's disk is full" });
  await banner.waitFor({ timeout: 15_000 });
  const text = await banner.innerText();
  assert.match(text, /Only 0 B of 2\.0 MB is free/);
  assert.match(text, /Device settings and keys \(the store\)/);
  assert.match(text, /App images \d+(\.\d)? (KB|MB|GB) \(on another disk\)/);
  // Most of this disk is the filler, which is none of Piccolo's own folders: the advice says so.
  assert.match(text, /Most of the space is used by files that are not Piccolo's own data/);
  // The dashboard's health card shows the same named state.
  const storeRow = page.locator('li[data-component="daemon.store"]');
  await storeRow.waitFor();
  assert.match(await storeRow.innerText(), /daemon\.store\s+degraded\s+state disk full: 0 bytes free/);
  await checkScreen(page, 'disk-full-banner');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Apps' }).click();
  await page.getByRole('heading', { level: 1, name: 'Apps' }).waitFor();
  await banner.waitFor();
});

test('disk full: an app can still be removed with its data, since the reserve is given up for it', async () => {
  assert.ok(existsSync(path.join(stateDir, 'volumes', `app-${kept}`)));
  const logsBefore = daemon!.logs.length;
  const remove = await call('DELETE', `/api/v1/apps/${kept}`, { confirm: kept, purge: true });
  assert.is(remove.status, 202, JSON.stringify(remove.body));
  await jobDone(session, remove.body.job, 120_000);
  assert.is(reserveSize(), 0);
  const released = daemon!.logs.slice(logsBefore).find((l) => l.msg === 'released the disk reserve');
  assert.equal([released?.why, released?.bytes], [`to uninstall ${kept}`, RESERVE_BYTES]);
  assert.equal((await call('GET', '/api/v1/apps')).body.apps, []);
  assert.not.ok(existsSync(path.join(stateDir, 'volumes', `app-${kept}`)));
});

test('space freed: without a restart the banner goes, daemon.store is ok, and the same install, rename and password change succeed', async () => {
  await rm(filler);
  // The watch polls every second while full; the page hears system.disk and drops the banner.
  await page.getByRole('alert').filter({ hasText: "The device's disk is full" }).waitFor({ state: 'detached', timeout: 10_000 });
  assert.is((await call('GET', '/api/v1/system/disk')).body.full, false);
  await waitFor(async () => (await healthComponent('daemon.store'))?.state === 'ok', 5000, 'daemon.store ok again');
  assert.ok(logMessages().includes('state disk has room again: writes resume'));
  // Room for it twice over again: the reserve is made anew.
  await waitFor(() => reserveSize() === RESERVE_BYTES, 15_000, 'the disk reserve made again');

  const rename = await call('PUT', '/api/v1/system/device', { name: 'fulldisk' });
  assert.is(rename.status, 200, JSON.stringify(rename.body));
  assert.is(rename.body.name, 'fulldisk');

  const logsBefore = daemon!.logs.length;
  const change = await call('POST', '/api/v1/auth/password', { currentPassword: TEST_PASSWORD, newPassword: NEW_PASSWORD });
  assert.is(change.status, 200, JSON.stringify(change.body));
  assert.ok(daemon!.logs.slice(logsBefore).some((l) => l.msg === 'admin passphrase changed'));
  assert.is((await call('POST', '/api/v1/auth/login', { password: TEST_PASSWORD })).status, 401);
  assert.is((await call('POST', '/api/v1/auth/login', { password: NEW_PASSWORD })).status, 200);

  const install = await call('POST', '/api/v1/apps', { spec: spec() });
  assert.is(install.status, 202, JSON.stringify(install.body));
  await jobDone(session, install.body.job, 120_000);
  // The audit log's appends failed while full; none left half a line behind.
  const lines = readFileSync(path.join(stateDir, 'audit.log'), 'utf8').trimEnd().split('\n');
  for (const line of lines) assert.type(JSON.parse(line).event, 'string', line);
  const events = (await call('GET', '/api/v1/system/audit?limit=200')).body.entries.map((e: any) => e.event);
  assert.ok(events.includes('auth.password-change'), events.join(' '));
  assert.ok(logMessages().filter((m) => m === 'vault start failed' || m === 'fatal persistence fault').length === 0);
});

test('a restart on a full disk with the reserve in place: the store opens on the reserve', async () => {
  await browser?.close();
  browser = undefined;
  // Filled after the stop: stopping releases the store's lock file, which frees a page.
  await daemon!.kill('SIGTERM');
  await fillDisk();
  assert.is((await statfs(stateDir)).bfree, 0);
  await startDaemon();
  session = new ApiSession(api);
  const unlock = await call('POST', '/api/v1/crypto/unlock', { password: NEW_PASSWORD });
  assert.is(unlock.status, 200, JSON.stringify(unlock.body));
  assert.is(unlock.body.state, 'unlocked');
  const released = daemon!.logs.find((l) => l.msg === 'released the disk reserve');
  assert.is(released?.why, 'to open the control store');
  assert.is(reserveSize(), 0);
});

test('a restart on a full disk: the unlock answers 507 disk_full and the device waits, daemon.store degraded (not a readiness reason); freeing space opens it by itself, without another restart', async () => {
  // No reserve left this time (the last start used it, and there has been no room to make it again).
  await daemon!.kill('SIGTERM');
  await rm(filler);
  await fillDisk();
  assert.is(reserveSize(), 0);
  await startDaemon();
  session = new ApiSession(api);
  assert.is((await call('GET', '/api/v1/setup/status')).body.state, 'locked');
  // Opening the store takes its writer lock, a small file the full disk refuses.
  const unlock = await call('POST', '/api/v1/crypto/unlock', { password: NEW_PASSWORD });
  assert.is(unlock.status, 507, JSON.stringify(unlock.body));
  assert.is(unlock.body.error.code, 'disk_full');
  const waiting = (await call('GET', '/api/v1/setup/status')).body;
  assert.is(waiting.state, 'failed');
  assert.is(waiting.reason, 'control store unusable: state disk full; it opens by itself once space is freed');
  const store = await waitFor(async () => {
    const c = await healthComponent('daemon.store');
    return c?.state === 'degraded' ? c : undefined;
  }, 5000, 'daemon.store degraded after the restart');
  assert.match(store.reason!, /^(control store unusable: state disk full; it opens by itself once space is freed|state disk full: \d+ bytes free)$/);
  // Not a readiness reason (so no OS rollback for it), only a note. (daemon.apps, reported by the
  // daemon before the restart, may still be down here: apps only report once they run.)
  const ready = await (await fetch(`${healthUrl}/health/ready`)).json();
  assert.not.ok(ready.reasons.some((r: string) => r.startsWith('daemon.store')), JSON.stringify(ready));
  assert.ok(ready.notes.includes(`daemon.store: degraded (${store.reason})`), JSON.stringify(ready));

  await rm(filler);
  await waitFor(async () => ((await call('GET', '/api/v1/setup/status')).body.state === 'unlocked' ? true : undefined), 10_000, 'the store opened by itself');
  assert.ok(logMessages().includes('control store opened: the state disk has room again'));
  await waitFor(async () => (await healthComponent('daemon.store'))?.state === 'ok', 5000, 'daemon.store ok');
  assert.is((await call('POST', '/api/v1/auth/login', { password: NEW_PASSWORD })).status, 200);
  // What was committed before the restart is there: the new name and the installed app.
  assert.is((await call('GET', '/api/v1/system/device')).body.name, 'fulldisk');
  const apps = await waitFor(async () => {
    const answer = await call('GET', '/api/v1/apps');
    return answer.status === 200 ? answer.body : undefined;
  }, 90_000, 'apps available after the store opened');
  assert.equal(apps.apps.map((a: any) => a.name), [app]);
});

test.run();
