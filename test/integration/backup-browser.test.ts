// Backup and restore as a person does it, in Debian's Chromium: on device A, System, Backup and
// restore, the password, and the file downloads; on device B, fresh, the wizard's "Restore from
// backup": the claim code, then a damaged copy of the file (refused, saying so, the device still
// fresh), then the real one, ending signed in on the done step. Every screen and state through
// checkScreen. Real daemon bundles and gocryptfs; no apps here (backup-restore.test.ts has them).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { ApiSession } from '../support/api-session.js';
import { checkScreen, launchChromium, signedInPage } from '../support/portal.js';
import { removeTestDir, startTestDaemon, type ServiceProcess } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-backup-browser-'));
const stateA = path.join(dir, 'state-a');
const stateB = path.join(dir, 'state-b');
const PASSWORD_A = 'Browser-Backup-Pass-3';
const PASSWORD_B = 'Browser-Restored-Pass-8';
// No engine: the backup carries the device's settings; apps are the API test's.
const NO_ENGINE = { PICCOLO_PODMAN_SOCKET: path.join(dir, 'no-podman.sock') };
let daemonA: ServiceProcess;
let daemonB: ServiceProcess;
let browser: Browser;
let recoveryKey = '';
let archiveFile = '';
const problems: string[] = [];

function watch(page: Page): Page {
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  return page;
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  browser = await launchChromium();
});

test.after(async () => {
  await browser?.close();
  await daemonA?.kill('SIGTERM');
  await daemonB?.kill('SIGTERM');
  removeTestDir(dir);
});

test('System, Backup and restore: the password, then the file downloads', async () => {
  const started = await startTestDaemon(stateA, NO_ENGINE);
  daemonA = started.proc;
  const api = new ApiSession(started.api);
  const claim = await api.call('POST', '/api/v1/setup/claim', { claimCode: readFileSync(path.join(stateA, 'claim-code'), 'utf8').trim() });
  recoveryKey = claim.body.recoveryKey;
  assert.is((await api.call('POST', '/api/v1/setup', { setupToken: claim.body.setupToken, password: PASSWORD_A, recoveryKeySaved: true })).status, 201);
  // A name to find on device B: it travels in the control store.
  assert.is((await api.call('PUT', '/api/v1/system/device', { name: 'moved-device' })).status, 200);

  const page = watch(await signedInPage(browser, started.api, api));
  await page.goto(`${started.api}/system#backup`);
  const card = page.locator('#backup');
  await card.getByRole('heading', { name: 'Backup and restore' }).waitFor();
  await checkScreen(page, 'system-backup');
  await card.getByLabel('Password').fill('Not-The-Password-0');
  await card.getByRole('button', { name: 'Download a backup' }).click();
  await card.getByText('This is not the password.').waitFor();
  await checkScreen(page, 'system-backup-wrong-password');
  await card.getByLabel('Password').fill(PASSWORD_A);
  const [download] = await Promise.all([page.waitForEvent('download'), card.getByRole('button', { name: 'Download a backup' }).click()]);
  assert.match(download.suggestedFilename(), /^piccolo-\d{4}-\d\d-\d\d\.piccolo-backup$/);
  archiveFile = path.join(dir, download.suggestedFilename());
  await download.saveAs(archiveFile);
  await card.getByText(/The backup is saved/).waitFor();
  await checkScreen(page, 'system-backup-saved');
  assert.is(readFileSync(archiveFile).subarray(0, 8).toString('ascii'), 'PICCOLOB');
  await page.context().close();
  await daemonA.kill('SIGTERM');
});

test('the wizard restores a fresh device: a damaged file refused (device still fresh), then the real one', async () => {
  const started = await startTestDaemon(stateB, NO_ENGINE);
  daemonB = started.proc;
  const base = started.api;
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = watch(await context.newPage());
  await page.goto(`${base}/`);
  await page.getByRole('heading', { level: 1, name: 'Welcome to Piccolo OS' }).waitFor();
  await page.getByRole('button', { name: 'Restore from backup' }).click();
  await page.getByRole('heading', { level: 1, name: 'Enter the claim code' }).waitFor();
  await page.getByRole('textbox', { name: 'Claim code' }).fill(readFileSync(path.join(stateB, 'claim-code'), 'utf8').trim());
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { level: 1, name: 'Restore from a backup' }).waitFor();
  await page.locator('header.topbar').getByText('Step 3 of 4', { exact: true }).waitFor();
  await checkScreen(page, 'setup-restore');

  const damaged = Buffer.from(readFileSync(archiveFile));
  damaged[Math.floor(damaged.length / 2)]! ^= 0x40;
  const damagedFile = path.join(dir, 'damaged.piccolo-backup');
  writeFileSync(damagedFile, damaged);
  await page.getByLabel('Backup file', { exact: true }).setInputFiles(damagedFile);
  await page.getByRole('textbox', { name: 'Recovery key' }).fill(recoveryKey);
  await page.getByLabel('New admin password', { exact: true }).fill(PASSWORD_B);
  await page.getByLabel('Repeat the password', { exact: true }).fill(PASSWORD_B);
  await page.getByRole('button', { name: 'Restore this device' }).click();
  await page.getByText(/changed or damaged since it was made/).waitFor();
  await checkScreen(page, 'setup-restore-damaged');
  const fresh = await (await fetch(`${base}/api/v1/setup/status`)).json();
  assert.is(fresh.state, 'unclaimed', 'the damaged file left the device fresh');

  await page.getByLabel('Backup file', { exact: true }).setInputFiles(archiveFile);
  await page.getByRole('button', { name: 'Restore this device' }).click();
  await page.getByRole('heading', { level: 1, name: 'Your device is ready' }).waitFor({ timeout: 60_000 });
  await page.getByText(/Restored from the backup: the settings/).waitFor();
  await page.locator('header.topbar').getByText('Step 4 of 4', { exact: true }).waitFor();
  await checkScreen(page, 'setup-restore-done');
  const status = await (await fetch(`${base}/api/v1/restore/status`)).json();
  assert.equal([status.state, status.bytes], ['succeeded', statSync(archiveFile).size]);
  // Signed in by the restore, on a device that carries A's name.
  await page.getByRole('button', { name: 'Go to the dashboard' }).click();
  await page.waitForURL(`${base}/`);
  const device = await page.evaluate(async () => (await (await fetch('/api/v1/system/device')).json()).name);
  assert.is(device, 'moved-device');
  await context.close();
  assert.equal(problems, []);
});

test.run();
