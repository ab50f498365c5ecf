// The dashboard, Services, System and Audit screens in Chromium, against the real daemon, proxy
// and health bundles and a real app on Podman. The dashboard shows what the health service says
// (each component) and metrics that change by the `system.metrics` event alone; an app's state
// changes live, with an Open link only while it runs. Services lists the listener with a Copy
// button that copies it. System changes the password (the new one signs in, the old one no
// longer), rotates the recovery key (the words shown are the ones that reset the password), shows
// the device CA's fingerprint and downloads the .crt the proxy handed over, renames the device,
// and locks it after a confirmation. The audit log shows the entries those actions wrote.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { ApiSession } from '../support/api-session.js';
import { jobDone } from '../support/jobs.js';
import { checkScreen, launchChromium, signedInPage, startDeviceBehindProxy, TEST_PASSWORD } from '../support/portal.js';
import { startPodman, type TestPodman } from '../support/podman.js';
import { ServiceProcess, removeTestDir, waitFor } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-portal-system-'));
const stateDir = path.join(dir, 'state');
const healthSocket = path.join(dir, 'health.sock');
const NEW_PASSWORD = 'Changed-System-Pass-42';
const NEW_NAME = 'atelier';
let podman: TestPodman;
let health: ServiceProcess;
let daemon: ServiceProcess;
let proxy: ServiceProcess;
let api: ApiSession;
let browser: Browser;
let page: Page;
let portal = '';
let healthUrl = '';
let app = '';
let recoveryKey = '';

const card = (id: string) => page.locator(`section.card#${id}`);

// uvu reports a failed before hook only as 0 passed: the reason is printed here.
test.before(() => setUp().catch((err) => (console.error('set-up failed:', err), Promise.reject(err))));

async function setUp(): Promise<void> {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  health = await ServiceProcess.start('health', { PICCOLO_HEALTH_SOCKET: healthSocket, PICCOLO_HEALTH_LISTEN: '127.0.0.1:0', PICCOLO_HEALTH_REQUIRED: 'daemon,proxy' }, TEST_BUNDLE_DIR);
  await health.notified('READY=1');
  healthUrl = `http://${await health.address('http')}`;
  podman = await startPodman();
  app = `${podman.prefix}site`;
  const image = await podman.buildHttpdImage('site', '<!doctype html><html lang="en"><title>site</title><h1>the site app</h1></html>');
  // The portal through the proxy, as a browser on the network reaches it: the apps' public ports
  // are then on the same host, and the proxy hands the device CA to the daemon.
  ({ daemon, proxy, portal, api } = await startDeviceBehindProxy(dir, stateDir, podman.socketPath, {
    daemon: { PICCOLO_HEALTH_SOCKET: healthSocket, PICCOLO_HEALTH_URL: healthUrl, PICCOLO_METRICS_INTERVAL_MS: '1000' },
    proxy: { PICCOLO_HEALTH_SOCKET: healthSocket },
  }));
  const install = await api.call('POST', '/api/v1/apps', { spec: [`name: ${app}`, `image: ${image}`, 'listeners:', '  - name: web', '    guest_port: 80', '    protocol: http'].join('\n') });
  assert.is(install.status, 202, JSON.stringify(install.body));
  await jobDone(api, install.body.job);
  browser = await launchChromium();
  page = await signedInPage(browser, portal, api);
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: portal });
}

test.after(async () => {
  await browser?.close();
  await proxy?.kill('SIGTERM');
  await daemon?.kill('SIGTERM');
  await health?.kill('SIGTERM');
  await podman?.stop();
  removeTestDir(dir);
});

test('dashboard: each component as the health service reports it, the device ready', async () => {
  await page.goto(`${portal}/`);
  await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  // Both required components report within a few seconds of starting.
  const detail = await waitFor(async () => {
    const body = await (await fetch(`${healthUrl}/health/detail`)).json();
    return body.ready ? body : undefined;
  }, 20_000, 'the device ready');
  await page.reload();
  const healthCard = card('health');
  await healthCard.locator('.card-head .badge', { hasText: /^ready$/ }).waitFor();
  for (const component of detail.components as { component: string; state: string; reason?: string }[]) {
    const row = healthCard.locator(`li[data-component="${component.component}"]`);
    assert.is(await row.locator('.badge').innerText(), component.state, component.component);
    if (component.reason) assert.ok((await row.innerText()).includes(component.reason), component.component);
  }
  assert.ok(await healthCard.locator('li[data-component="proxy"]').count(), 'the proxy is among them');
  // This Debian machine has no transactional-update: the line says so and links to the Updates screen.
  await page.getByTestId('os-updates').getByText('not available on this image.').waitFor();
  assert.match(await page.getByTestId('os-updates').innerText(), /^OS updates: not available on this image\.$/);
  assert.is(await page.getByTestId('os-updates').getByRole('link', { name: 'OS updates' }).getAttribute('href'), '/system/updates');
  await card('remote').getByText('Not set up').waitFor();
});

test('dashboard: the metrics change by the event, without another request for the status', async () => {
  const statusRequests: string[] = [];
  page.on('request', (req) => req.url().includes('/api/v1/system/status') && statusRequests.push(req.url()));
  const measured = card('metrics').locator('time');
  const first = await measured.getAttribute('datetime');
  await waitFor(async () => ((await measured.getAttribute('datetime')) !== first ? true : undefined), 10_000, 'a new sample on the page');
  const second = await measured.getAttribute('datetime');
  await waitFor(async () => ((await measured.getAttribute('datetime')) !== second ? true : undefined), 10_000, 'another sample');
  assert.equal(statusRequests, [], 'the samples came as events');
  const status = (await api.call('GET', '/api/v1/system/status')).body;
  const temperature = await page.getByTestId('temperature').innerText();
  assert.is(temperature === 'no sensor', status.metrics.temperature === null, temperature);
  assert.match(await card('metrics').getByText(/^CPU$/).locator('xpath=..').innerText(), new RegExp(`of ${status.metrics.cpu.cores} cores?`));
  await checkScreen(page, 'dashboard');
});

test('dashboard: a running app has an Open link to its page; stopped, live, it has none', async () => {
  const row = card('apps').locator(`li[data-app="${app}"]`);
  await row.locator('.badge', { hasText: /^running$/ }).waitFor();
  const open = row.getByRole('link', { name: `Open ${app}` });
  const { services } = (await api.call('GET', `/api/v1/apps/${app}`)).body;
  const href = await open.getAttribute('href');
  assert.is(href, `http://127.0.0.1:${services[0].publicPort}/`);
  // The link leads to the app, through the proxy's auth gate with the portal's session.
  const res = await page.context().request.get(href!);
  assert.is(res.status(), 200);
  assert.match(await res.text(), /the site app/);

  const stop = await api.call('POST', `/api/v1/apps/${app}/stop`, {});
  assert.is(stop.status, 202, JSON.stringify(stop.body));
  await row.locator('.badge', { hasText: /^stopped$/ }).waitFor({ timeout: 30_000 });
  assert.is(await open.count(), 0, 'no link to a port that refuses');
  await jobDone(api, stop.body.job);
  await checkScreen(page, 'dashboard-app-stopped');
});

test('services: the listener with its local address, copied by its button; remote off says so', async () => {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Services' }).click();
  await page.getByRole('heading', { level: 1, name: 'Services' }).waitFor();
  const group = card(`app-${app}`);
  const row = group.locator('li[data-listener="web"]');
  await row.waitFor();
  const { services } = (await api.call('GET', `/api/v1/apps/${app}`)).body;
  const local = `http://127.0.0.1:${services[0].publicPort}/`;
  assert.is(await row.getByRole('link', { name: local }).getAttribute('href'), local);
  assert.match(await row.innerText(), /HTTP/);
  await row.getByRole('button', { name: 'Copy the local address of web' }).click();
  await row.getByText('Copied.').waitFor();
  assert.is(await page.evaluate(() => navigator.clipboard.readText()), local);
  assert.match(await row.innerText(), /not reachable: remote access is off/);
  await checkScreen(page, 'services');
});

test('system: a wrong current password is said at its field; the new one then signs in, the old one no longer', async () => {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'System' }).click();
  await page.getByRole('heading', { level: 1, name: 'System' }).waitFor();
  await card('ca').getByTestId('ca-fingerprint').waitFor();
  await checkScreen(page, 'system');
  const form = card('password');
  const submit = form.getByRole('button', { name: 'Change password' });
  await form.getByLabel('Current password').fill('Not-The-Password-1');
  await form.getByLabel('New password').fill('short');
  assert.ok(await submit.isDisabled(), 'disabled while a rule fails');
  assert.ok((await form.locator('.rules li:not(.ok)').count()) > 0);
  await form.getByLabel('New password').fill(NEW_PASSWORD);
  assert.is(await form.locator('.rules li:not(.ok)').count(), 0, 'every rule ticked');
  assert.ok(await submit.isDisabled(), 'disabled until the password is repeated');
  await form.getByLabel('Repeat the password').fill(NEW_PASSWORD);
  await submit.click();
  await form.getByText('This is not the current password.').waitFor();
  assert.is(await form.getByLabel('Current password').getAttribute('aria-invalid'), 'true');

  await form.getByLabel('Current password').fill(TEST_PASSWORD);
  await submit.click();
  await form.getByText('Password changed.', { exact: false }).waitFor();
  const fresh = new ApiSession(portal);
  assert.is((await fresh.call('POST', '/api/v1/auth/login', { password: TEST_PASSWORD })).status, 401, 'the old password');
  assert.is((await fresh.call('POST', '/api/v1/auth/login', { password: NEW_PASSWORD })).status, 200, 'the new password');
  api = fresh; // the setup session ended with the change
});

test('system: a new recovery key, shown once with Copy and Download, dismissed only once saved', async () => {
  const recovery = card('recovery');
  await recovery.getByLabel('Password').fill(NEW_PASSWORD);
  // The page goes on with the session the password change handed it.
  await recovery.getByRole('button', { name: 'Make a new recovery key' }).click();
  const words = recovery.getByTestId('recovery-words').locator('li');
  await words.first().waitFor();
  assert.is(await words.count(), 24);
  recoveryKey = (await words.allInnerTexts()).join(' ');
  await checkScreen(page, 'system-rotate-key');
  const [download] = await Promise.all([page.waitForEvent('download'), recovery.getByRole('button', { name: 'Download' }).click()]);
  assert.is(download.suggestedFilename(), 'piccolo-recovery-key.txt');
  assert.ok(readFileSync((await download.path())!, 'utf8').includes(recoveryKey));
  await recovery.getByRole('button', { name: 'Copy the recovery key' }).click();
  assert.is(await page.evaluate(() => navigator.clipboard.readText()), recoveryKey);
  const done = recovery.getByRole('button', { name: 'Done' });
  assert.ok(await done.isDisabled());
  await recovery.getByLabel('I saved the new recovery key').check();
  await done.click();
  await recovery.getByText('The new recovery key is in use.').waitFor();
  assert.is(await recovery.getByTestId('recovery-words').count(), 0, 'the words are gone from the page');
});

test("system: the device CA's fingerprint is the downloaded certificate's, which the proxy handed over", async () => {
  const ca = card('ca');
  const [download] = await Promise.all([page.waitForEvent('download'), ca.getByRole('link', { name: 'Download the certificate' }).click()]);
  assert.is(download.suggestedFilename(), 'piccolo-ca.crt');
  const cert = new X509Certificate(readFileSync((await download.path())!));
  assert.ok(cert.ca);
  assert.is(await ca.getByTestId('ca-fingerprint').innerText(), cert.fingerprint256);
  for (const system of ['Windows', 'macOS', 'iOS and iPadOS', 'Android', 'Linux', 'Firefox (any system)']) {
    const summary = ca.locator('summary', { hasText: system });
    await summary.click();
    assert.ok(await summary.locator('xpath=..').evaluate((details: HTMLDetailsElement) => details.open), system);
  }
});

test('system: a bad name is refused at its field; a rename shows the new address and a link to it', async () => {
  const form = card('device-name');
  const field = form.getByLabel('Name', { exact: true });
  await field.fill('Not A Name');
  await form.getByRole('button', { name: 'Rename' }).click();
  await form.locator('.field-error').waitFor();
  assert.is(await field.getAttribute('aria-invalid'), 'true');
  assert.is((await api.call('GET', '/api/v1/system/device')).body.name, 'piccolo', 'nothing changed');
  await field.fill(NEW_NAME);
  await form.getByRole('button', { name: 'Rename' }).click();
  const link = form.getByRole('link', { name: `Open the portal at ${NEW_NAME}.local` });
  await link.waitFor();
  assert.is(await link.getAttribute('href'), `http://${NEW_NAME}.local:${new URL(portal).port}/system`);
  assert.match(await form.innerText(), new RegExp(`now answers at ${NEW_NAME}\\.local; piccolo\\.local no longer leads here`));
  assert.is((await api.call('GET', '/api/v1/system/device')).body.hostname, `${NEW_NAME}.local`);
  await form.getByText(`On your network this device is ${NEW_NAME}.local`, { exact: false }).waitFor();
  await checkScreen(page, 'system-renamed');
});

test('audit: the entries those actions wrote, newest first, and the filter', async () => {
  await card('more').getByRole('link', { name: 'Audit log' }).click();
  await page.getByRole('heading', { level: 1, name: 'Audit log' }).waitFor();
  const rows = page.locator('table.audit tbody tr');
  await rows.first().waitFor();
  const events = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-event')));
  const { entries } = (await api.call('GET', '/api/v1/system/audit?limit=500')).body;
  assert.equal(events, entries.map((e: { event: string }) => e.event), 'as the API has them, newest first');
  assert.is(events[0], 'system.device-name', 'the rename is the newest');
  for (const event of ['system.device-name', 'crypto.recovery-rotate', 'auth.password-change', 'setup']) assert.ok(events.includes(event), event);
  assert.ok(events.indexOf('system.device-name') < events.indexOf('crypto.recovery-rotate'));
  const denied = rows.filter({ has: page.locator('td[data-label="Event"]', { hasText: /^auth\.password-change$/ }) }).filter({ hasText: 'denied' });
  assert.is(await denied.count(), 1, 'the wrong current password, refused');
  const renamed = page.locator('tr[data-event="system.device-name"]');
  assert.match(await renamed.locator('td[data-label="Detail"]').innerText(), new RegExp(`piccolo -> ${NEW_NAME}`));
  assert.match(await renamed.locator('td[data-label="Client"]').innerText(), /127\.0\.0\.1/);
  await checkScreen(page, 'audit');

  await page.getByLabel('Filter').fill('device-name');
  assert.is(await rows.count(), 1);
  assert.match(await page.getByTestId('audit-count').innerText(), new RegExp(`^1 of ${entries.length} entries match\\.$`));
  await checkScreen(page, 'audit-filtered');
  await page.getByLabel('Filter').fill('');
  assert.is(await rows.count(), entries.length);
});

test('system: Lock asks first; locked, the page shows the unlock screen, and the new recovery key is the one that works', async () => {
  await page.goto(`${portal}/system`);
  const lock = card('lock').getByRole('button', { name: 'Lock device…' });
  await lock.click();
  const dialog = page.getByRole('dialog', { name: 'Lock the device?' });
  await dialog.waitFor();
  await checkScreen(page, 'system-lock-confirm');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  assert.is((await api.call('GET', '/api/v1/setup/status')).body.state, 'unlocked', 'Cancel locks nothing');
  await lock.click();
  await dialog.getByRole('button', { name: 'Lock device' }).click();
  await page.waitForURL(/\/unlock$/, { timeout: 60_000 });
  assert.is((await api.call('GET', '/api/v1/setup/status')).body.state, 'locked');
  // The words the page showed reset the password (and unlock): they are the device's key now.
  const owner = new ApiSession(portal);
  const reset = await owner.call('POST', '/api/v1/crypto/reset-password', { recoveryKey, newPassword: 'After-Reset-Pass-77' });
  assert.is(reset.status, 200, JSON.stringify(reset.body));
  const { entries } = (await owner.call('GET', '/api/v1/system/audit?limit=5')).body;
  assert.equal(entries.slice(0, 2).map((e: { event: string }) => e.event), ['crypto.password-reset', 'crypto.lock']);
});

test.run();
