// The portal's Apps section as a person uses it: Debian's Chromium driven by playwright-core
// against the real daemon and proxy bundles with real Podman. Set up the device, install an app
// from app.yaml, open its link, stop, start, see a change made elsewhere arrive live, uninstall.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { ServiceProcess, startTestDaemon, removeTestDir, waitFor } from '../support/processes.js';
import { startPodman, type TestPodman } from '../support/podman.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-portal-apps-'));
const stateDir = path.join(dir, 'state');
const SCREENSHOTS = process.env.PICCOLO_SCREENSHOTS; // a folder, to look at the pages
const PASSWORD = 'Portal-Apps-Pass-7';
let podman: TestPodman;
let daemon: ServiceProcess;
let proxy: ServiceProcess;
let browser: Browser;
let page: Page;
let base = '';
let app = '';
let image = '';

async function snap(name: string): Promise<void> {
  if (SCREENSHOTS) await page.screenshot({ path: path.join(SCREENSHOTS, `apps-${name}.png`), fullPage: true });
}

const card = (): Locator => page.locator(`li.app[data-app="${app}"]`);

async function stateIs(state: string): Promise<void> {
  await card().locator(`.app-state[data-state="${state}"]`).waitFor({ timeout: 60_000 });
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  podman = await startPodman();
  app = `${podman.prefix}web`;
  image = await podman.buildHttpdImage('portal', '<h1>hello from the portal app</h1>');
  const internalSocket = path.join(dir, 'internal.sock');
  ({ proc: daemon, api: base } = await startTestDaemon(stateDir, { PICCOLO_PODMAN_SOCKET: podman.socketPath, PICCOLO_DAEMON_INTERNAL_SOCKET: internalSocket }));
  // The proxy serves each app's public port (on loopback here) behind the portal's sign-in.
  proxy = await ServiceProcess.start(
    'proxy',
    {
      PICCOLO_PROXY_LISTEN: '127.0.0.1:0',
      PICCOLO_PROXY_BIND_HOST: '127.0.0.1',
      PICCOLO_PROXY_DAEMON_SOCKET: internalSocket,
      PICCOLO_PROXY_CERT_DIR: path.join(dir, 'certs'),
      PICCOLO_HEALTH_SOCKET: path.join(dir, 'no-health.sock'),
    },
    TEST_BUNDLE_DIR,
  );
  await proxy.notified('READY=1', 20_000);
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
});

test.after(async () => {
  await browser?.close();
  await proxy?.kill('SIGTERM');
  await daemon?.kill('SIGTERM');
  await podman?.stop();
  removeTestDir(dir);
});

test('set up the device; the home page lists no apps and offers the catalog', async () => {
  await page.goto(base + '/');
  await page.getByLabel('Claim code').fill(readFileSync(path.join(stateDir, 'claim-code'), 'utf8').trim());
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByLabel('I have saved my recovery key').check();
  await page.locator('#recovery-next').click();
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Repeat it').fill(PASSWORD);
  await page.getByRole('button', { name: 'Set up this device' }).click();
  await page.getByTestId('home-title').waitFor({ timeout: 20_000 });
  // Apps start a moment after the unlock; the page says so and tries again.
  await page.getByText('No apps installed yet').waitFor({ timeout: 30_000 });
  assert.ok((await page.locator('#catalog li').count()) >= 3);
  assert.ok(await page.getByRole('button', { name: 'Install whoami' }).isEnabled());
  await snap('1-empty');
});

test('a bad app.yaml is refused with each problem next to the form', async () => {
  await page.getByText('Install from app.yaml').click();
  const form = page.locator('#install-form');
  await form.getByLabel('app.yaml').fill(`name: ${app}\nimage: ${image}\nlisteners:\n  - name: web\n    guest_port: 70000\n    protocl: http\n`);
  await form.getByRole('button', { name: 'Install' }).click();
  const error = form.getByRole('alert');
  await error.waitFor();
  assert.match(await error.innerText(), /listeners\[0\]\.guest_port/);
  assert.match(await error.innerText(), /did you mean protocol/);
  assert.is(await page.locator('li.app').count(), 0);
  await snap('2-bad-spec');
});

test('install from app.yaml: the app turns up running with a link that serves it', async () => {
  const form = page.locator('#install-form');
  const spec = [`name: ${app}`, `image: ${image}`, 'listeners:', '  - name: web', '    guest_port: 80', '    protocol: http', 'storage:', '  persistent:', '    data:', '      container: /data'];
  await form.getByLabel('app.yaml').fill(spec.join('\n'));
  await form.getByRole('button', { name: 'Install' }).click();
  await card().waitFor();
  assert.ok(await form.getByRole('alert').isHidden(), 'the earlier error is gone');
  assert.is(await form.getByLabel('app.yaml').inputValue(), '', 'the form is emptied');
  await stateIs('running');
  const link = card().locator('.app-links a');
  const href = (await link.getAttribute('href'))!;
  assert.match(href, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const port = Number(new URL(href).port);
  assert.ok(port >= 35000 && port <= 45000, `the public port, not the host-bind one: ${href}`);
  await snap('3-running');
  // The link is behind the device's sign-in; the browser's session cookie gets through.
  const body = await waitFor(async () => {
    const res = await page.context().request.get(href, { failOnStatusCode: false }).catch(() => undefined);
    const text = res && res.ok() ? await res.text() : '';
    return text.includes('hello') ? text : undefined;
  }, 20_000, 'the app served at its link');
  assert.match(body, /hello from the portal app/);
  const [tab] = await Promise.all([page.waitForEvent('popup'), link.click()]);
  await tab.getByText('hello from the portal app').waitFor();
  await tab.close();
});

test('stop and start with the buttons', async () => {
  await card().getByRole('button', { name: 'Stop', exact: true }).click();
  await stateIs('stopped');
  assert.ok(await card().getByRole('button', { name: 'Stop', exact: true }).isDisabled());
  assert.ok(await card().getByRole('button', { name: 'Start', exact: true }).isEnabled());
  await snap('4-stopped');
  await card().getByRole('button', { name: 'Start', exact: true }).click();
  await stateIs('running');
  assert.ok(await card().getByRole('button', { name: 'Start', exact: true }).isDisabled());
});

test('a change made elsewhere arrives live over the events stream', async () => {
  const { csrfToken } = await (await page.context().request.get(base + '/api/v1/auth/session')).json();
  const res = await page.context().request.post(`${base}/api/v1/apps/${app}/stop`, { headers: { 'x-csrf-token': csrfToken } });
  assert.is(res.status(), 202);
  await stateIs('stopped');
});

test('uninstall needs the app name typed; the data can go too', async () => {
  await card().getByRole('button', { name: 'Uninstall…' }).click();
  const confirm = card().getByRole('button', { name: `Uninstall ${app}` });
  assert.ok(await confirm.isDisabled());
  await card().getByLabel("type the app's name").fill('yes');
  assert.ok(await confirm.isDisabled(), 'anything but the name keeps it disabled');
  await card().getByLabel("type the app's name").fill(app);
  await card().getByLabel('Also delete its data permanently').check();
  await snap('5-uninstall');
  await confirm.click();
  await card().waitFor({ state: 'detached', timeout: 60_000 });
  await page.getByText('No apps installed yet').waitFor();
  const apps = await (await page.context().request.get(base + '/api/v1/apps')).json();
  assert.equal(apps.apps, []);
  assert.match(readFileSync(path.join(stateDir, 'audit.log'), 'utf8'), /"event":"app.purge"/);
  await snap('6-uninstalled');
});

test('an app that cannot run shows as failed with the reason; uninstall keeps its data by default', async () => {
  const broken = `${podman.prefix}broken`;
  const form = page.locator('#install-form');
  await form.getByLabel('app.yaml').fill(`name: ${broken}\nimage: localhost/${podman.prefix}-missing:1\nlisteners:\n  - name: web\n    guest_port: 80\n`);
  await form.getByRole('button', { name: 'Install' }).click();
  const brokenCard = page.locator(`li.app[data-app="${broken}"]`);
  await brokenCard.locator('.app-state[data-state="failed"]').waitFor({ timeout: 60_000 });
  assert.match(await brokenCard.locator('.app-reason').innerText(), /^Failed: .+/);
  await snap('7-failed');
  await brokenCard.getByRole('button', { name: 'Uninstall…' }).click();
  await brokenCard.getByLabel("type the app's name").fill(broken);
  await brokenCard.getByRole('button', { name: `Uninstall ${broken}` }).click();
  await brokenCard.waitFor({ state: 'detached', timeout: 60_000 });
  assert.match(readFileSync(path.join(stateDir, 'audit.log'), 'utf8'), new RegExp(`"event":"app.uninstall".*${broken}`));
});

test.run();
