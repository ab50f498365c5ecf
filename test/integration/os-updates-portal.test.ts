// The portal's OS updates screen in Chromium, against the real daemon bundle with the OS update
// fakes (test/fixtures/os-update-fake/, since only MicroOS has transactional-update): the status,
// an update with its progress bar (still there after leaving the page and coming back), a reboot
// after a confirmation, a rollback to a chosen snapshot after typing its number, then "the last
// update was rolled back" on the screen and on the dashboard; and the screen on an image without
// transactional-update. Every state goes through checkScreen.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { FAKE_BIN, FakeSystem } from '../fixtures/os-update-fake/fake-system.js';
import { checkScreen, launchChromium, setUpDevice, signedInPage } from '../support/portal.js';
import { removeTestDir, startTestDaemon, waitFor, type ServiceProcess } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-os-updates-portal-'));
// The test holds the run (dup.paused) while it looks, so the bar is seen in each phase.
const fake = FakeSystem.create(path.join(dir, 'fake-os'), { dup: { mode: 'update', packages: 6, stepMs: 300 } });
const hold = (paused: boolean) => fake.change((s) => void (s.dup.paused = paused));
const running: ServiceProcess[] = [];
let browser: Browser;
let page: Page;
let base = '';

const card = (id: string) => page.locator(`section.card#${id}`);
const fact = async (term: string) => (await card('os-status').locator('div', { has: page.locator('dt', { hasText: term }) }).locator('dd').innerText()).trim();

test.before(() => setUp().catch((err) => (console.error('set-up failed:', err), Promise.reject(err))));

async function setUp(): Promise<void> {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  const stateDir = path.join(dir, 'state');
  const daemon = await startTestDaemon(stateDir, {
    PICCOLO_OS_UPDATE_PATH: `${FAKE_BIN}:${process.env.PATH}`,
    PICCOLO_FAKE_OS_STATE: fake.dir,
    PICCOLO_PODMAN_SOCKET: path.join(dir, 'no-podman.sock'),
  });
  running.push(daemon.proc);
  base = daemon.api;
  const api = await setUpDevice(base, stateDir);
  browser = await launchChromium();
  page = await signedInPage(browser, base, api);
}

test.after(async () => {
  await browser?.close();
  await Promise.all(running.map((p) => p.kill('SIGKILL')));
  removeTestDir(dir);
});

test('the Updates screen: what runs now and next, the snapshots, no update yet', async () => {
  await page.goto(`${base}/system/updates`);
  await page.getByRole('heading', { level: 1, name: 'OS updates' }).waitFor();
  await card('os-status').waitFor();
  assert.is(await fact('Running snapshot'), '2');
  assert.is(await fact('Next boot starts'), 'snapshot 2 (the same)');
  assert.is(await fact('Root file system'), 'btrfs, read-only');
  assert.is(await fact('transactional-update'), '4.8.3');
  assert.is(await fact('Last update'), 'No update has been run from here yet.');
  assert.equal(await page.locator('tr[data-testid^="snapshot-"] td[data-label="Snapshot"]').allInnerTexts(), ['2', '1'], 'newest first');
  assert.is(await page.getByRole('button', { name: 'Roll back to 2' }).count(), 0, 'no rollback to the snapshot that starts next');
  await checkScreen(page, 'updates-status');
});

test('apply: a progress bar that moves, kept after leaving the page, then a snapshot waiting for a reboot', async () => {
  await page.getByRole('button', { name: 'Check for updates and apply' }).click();
  const bar = page.locator('#os-apply progress');
  await bar.waitFor();
  await page.locator('#os-apply .progress-label', { hasText: 'Downloading packages' }).waitFor();
  hold(true);
  const first = Number(await bar.getAttribute('value'));
  await checkScreen(page, 'updates-applying');
  // Leave and come back: the run is read back from the API and the events.
  await page.goto(`${base}/`);
  await page.getByTestId('os-updates').getByText('an update is being applied.').waitFor();
  await page.goto(`${base}/system/updates`);
  await page.locator('#os-apply progress').waitFor();
  hold(false);
  const later = await waitFor(async () => {
    const value = Number(await page.locator('#os-apply progress').getAttribute('value').catch(() => '0'));
    return value > first ? value : undefined;
  }, 20_000, `the bar to move on from ${first}`);
  assert.ok(later > first && later <= 100, `the bar moved: ${first} -> ${later}`);
  await page.locator('#os-apply .progress-label', { hasText: 'Installing into a new snapshot' }).waitFor({ timeout: 20_000 }).catch(async (err) => {
    throw new Error(`${err.message}\n#os-apply: ${await page.locator('#os-apply').innerText()}`);
  });
  hold(true);
  assert.ok(await page.getByRole('button', { name: 'Reboot…' }).isDisabled(), 'no reboot while the update runs');
  fake.change((s) => void ((s.dup.stepMs = 50), (s.dup.paused = false))); // seen enough: the rest quickly
  await page.getByTestId('os-reboot-pending').waitFor({ timeout: 30_000 });
  assert.is(await page.getByTestId('os-reboot-pending').innerText(), 'Snapshot 3 is ready: reboot to start it.');
  assert.match(await fact('Last update'), /^updated\b/);
  assert.is(await fact('Next boot starts'), 'snapshot 3 (after a reboot)');
  assert.ok((await page.locator('pre.journal').innerText()).includes('New default snapshot is #3'));
  await checkScreen(page, 'updates-reboot-pending');
});

test('reboot after a confirmation; the new snapshot runs', async () => {
  await page.getByRole('button', { name: 'Reboot…' }).click();
  const dialog = page.getByRole('dialog', { name: 'Reboot the device?' });
  await dialog.waitFor();
  await checkScreen(page, 'updates-reboot-confirm');
  await dialog.getByRole('button', { name: 'Reboot' }).click();
  await page.getByText('The device is rebooting').waitFor();
  assert.ok(fake.calls().includes('systemctl reboot'));
  // The fake's reboot has "booted" the default snapshot; the daemon is the same process.
  await page.reload();
  await card('os-status').waitFor();
  assert.is(await fact('Running snapshot'), '3');
  assert.is(await page.getByTestId('os-reboot-pending').count(), 0);
});

test('rollback to a chosen snapshot: typed number, then "the last update was rolled back" here and on the dashboard', async () => {
  await page.getByRole('button', { name: 'Roll back to 2' }).click();
  const dialog = page.getByRole('dialog', { name: 'Roll back to snapshot 2?' });
  await dialog.waitFor();
  const confirm = dialog.getByRole('button', { name: 'Roll back' });
  assert.ok(await confirm.isDisabled(), 'disabled until the number is typed');
  await dialog.getByLabel('Type 2 to confirm').fill('3');
  assert.ok(await confirm.isDisabled(), 'the wrong number does not do');
  await dialog.getByLabel('Type 2 to confirm').fill('2');
  await checkScreen(page, 'updates-rollback-confirm');
  await confirm.click();
  const notice = page.getByRole('status').filter({ hasText: 'The last update was rolled back' });
  await notice.waitFor();
  assert.match(await notice.innerText(), /snapshot 3 is no longer used\. You rolled it back\. The device runs snapshot 3\. It starts snapshot 2 at the next reboot\./);
  assert.ok(fake.calls().includes('transactional-update rollback 2'));
  assert.is(await page.getByTestId('os-reboot-pending').innerText(), 'Reboot to go back to snapshot 2.');
  assert.match(await fact('Last update'), /^rolled back\b.*snapshot 3 was rolled back$/s);
  await checkScreen(page, 'updates-rolled-back');
  await page.goto(`${base}/`);
  const line = page.getByTestId('os-updates');
  await line.getByText('the last update was rolled back.').waitFor();
  await line.getByRole('link', { name: 'OS updates' }).click();
  await page.waitForURL(`${base}/system/updates`);
  await page.getByRole('heading', { level: 1, name: 'OS updates' }).waitFor();
});

test('an image without transactional-update: the screen says "not available on this image"', async () => {
  const emptyDir = path.join(dir, 'no-tools');
  mkdirSync(emptyDir);
  const stateDir = path.join(dir, 'debian-state');
  const debian = await startTestDaemon(stateDir, {
    PICCOLO_OS_UPDATE_PATH: `${emptyDir}:/usr/sbin:/usr/bin:/sbin:/bin`,
    PICCOLO_PODMAN_SOCKET: path.join(dir, 'no-podman.sock'),
    PICCOLO_DAEMON_INTERNAL_SOCKET: path.join(dir, 'debian-internal.sock'),
  });
  running.push(debian.proc);
  const api = await setUpDevice(debian.api, stateDir);
  const other = await signedInPage(browser, debian.api, api);
  await other.goto(`${debian.api}/system/updates`);
  await other.getByText('Not available on this image', { exact: true }).waitFor();
  assert.ok((await other.getByRole('status').filter({ hasText: 'Not available on this image' }).innerText()).includes('it has no transactional-update'));
  assert.is(await other.getByRole('button', { name: 'Check for updates and apply' }).count(), 0, 'nothing to press');
  await checkScreen(other, 'updates-not-available');
  await other.goto(`${debian.api}/`);
  await waitFor(async () => ((await other.getByTestId('os-updates').innerText()) === 'OS updates: not available on this image.' ? true : undefined), 10_000, 'the dashboard line');
  await other.context().close();
});

test.run();
