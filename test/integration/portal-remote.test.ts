// The portal's Remote access screen as a person uses it: Debian's Chromium driven by playwright-core
// against the real daemon, proxy and tunnel bundles, our relay on loopback and Debian's pebble as
// the ACME CA. Reach the screen from the dashboard (whose health card says the health service is
// unreachable: none runs here); the API's 400 shows next to the field it names; the checks against
// a closed relay port fail with the reason; valid settings are saved and the tunnel's live status
// follows (connected, then the relay gone); the portal's certificate is issued over the tunnel and
// renewed with its button; disabling takes a confirmation. All along the page logs no error and
// breaks no rule of its strict CSP, and each state passes checkScreen.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { freePort } from '../../image/qemu.js';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import type { Relay } from '../../services/relay/relay.js';
import type { ApiSession } from '../support/api-session.js';
import { startPebble, type Pebble } from '../support/pebble.js';
import { checkScreen, launchChromium, setUpDevice, signedInPage } from '../support/portal.js';
import { removeTestDir, startTestDaemon, waitFor, type ServiceProcess } from '../support/processes.js';
import { remoteSockets, startProxyAndTunnel, startTestRelay } from '../support/remote-stack.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-portal-remote-'));
const stateDir = path.join(dir, 'state');
const sockets = remoteSockets(dir);
const SETTINGS = { deviceSecret: 'portal-remote-test-secret-0123456789', portalHostname: 'portal.remote.test', appDomain: 'apps.remote.test' };
let relay: Relay;
let pebble: Pebble;
let daemon: ServiceProcess;
let proxy: ServiceProcess;
let tunnel: ServiceProcess;
let browser: Browser;
let page: Page;
let api: ApiSession;
let base = '';
let relayUrl = '';
let closedPort = 0; // nothing listens there
/** What the page said on its console as errors (CSP violations included), and uncaught exceptions. */
const consoleErrors: string[] = [];

async function remoteStatus(): Promise<any> {
  const { status, body } = await api.call('GET', '/api/v1/remote/status');
  assert.is(status, 200);
  return body;
}

const settings = () => page.locator('#remote-settings');
const field = (label: string) => settings().getByLabel(label, { exact: true });
/** The message shown beside a field. */
const fieldError = (label: string) => field(label).locator('xpath=..').locator('.field-error');
/** The <dd> of a line in the status list. */
const fact = (term: string) => page.locator('#remote-status dt', { hasText: new RegExp(`^${term}$`) }).locator('xpath=following-sibling::dd[1]');
const check = (id: string) => page.locator(`#remote-settings li[data-check="${id}"]`);
const certificateRow = () => page.locator(`#remote-certs tr[data-name="${SETTINGS.portalHostname}"]`);

async function fillSettings(url: string): Promise<void> {
  await field('Relay URL').fill(url);
  await field('Device secret').fill(SETTINGS.deviceSecret);
  await field('Portal hostname').fill(SETTINGS.portalHostname);
  await field('App domain').fill(SETTINGS.appDomain);
}

// uvu reports a failed before hook only as 0 passed: the reason is printed here.
test.before(() => setUp().catch((err) => (console.error('set-up failed:', err), Promise.reject(err))));

async function setUp(): Promise<void> {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  // The relay's certificate is self-signed, as a private relay's would be: trusted by NODE_EXTRA_CA_CERTS.
  let hubCert: string;
  ({ relay, hubCert } = await startTestRelay(SETTINGS.deviceSecret));
  relayUrl = `wss://localhost:${relay.hubPort}/connect`;
  closedPort = await freePort();
  // Pebble validates HTTP-01 on the relay's plain-HTTP port: relay → tunnel → proxy → daemon.
  pebble = await startPebble({ httpPort: relay.relayPorts[1] });
  await pebble.resolve(SETTINGS.portalHostname, '127.0.0.1');
  const trust = path.join(dir, 'trust.pem');
  writeFileSync(trust, hubCert + pebble.apiCa);

  ({ proc: daemon, api: base } = await startTestDaemon(stateDir, {
    PICCOLO_DAEMON_INTERNAL_SOCKET: sockets.internal,
    PICCOLO_DAEMON_PORTAL_SOCKET: sockets.portal,
    PICCOLO_ACME_DIRECTORY_URL: pebble.directoryUrl,
    // No health service in this test: the dashboard must say so.
    PICCOLO_HEALTH_URL: `http://127.0.0.1:${await freePort()}`,
    NODE_EXTRA_CA_CERTS: trust,
  }));
  ({ proxy, tunnel } = await startProxyAndTunnel(dir, sockets, trust));
  // Setup is the wizard test's subject: here through the API, its session given to the browser.
  api = await setUpDevice(base, stateDir);

  browser = await launchChromium();
  page = await signedInPage(browser, base, api);
  // Installed before any page script: Chromium reports a CSP violation as an event on the document.
  await page.context().addInitScript(() =>
    document.addEventListener('securitypolicyviolation', (event) => console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`)),
  );
  page.on('console', (message) => {
    // Chromium logs every failed request. Expected here: the one 400 this test provokes, the apps
    // list on the dashboard (no Podman in this test: the page says so) and the favicon.
    const where = new URL(message.location().url || base).pathname;
    const status = /^Failed to load resource: the server responded with a status of (\d+)/.exec(message.text())?.[1];
    const expected = (where === '/api/v1/remote/configure' && status === '400') || (where === '/api/v1/apps' && /^5\d\d$/.test(status ?? '')) || (where === '/favicon.ico' && status === '404');
    if (message.type() === 'error' && !expected) consoleErrors.push(`${message.text()} (${where})`);
  });
  page.on('pageerror', (error) => consoleErrors.push(`uncaught: ${error.message}`));
}

test.after(async () => {
  await browser?.close();
  await tunnel?.kill('SIGTERM');
  await proxy?.kill('SIGTERM');
  await daemon?.kill('SIGTERM');
  await relay?.stop();
  await pebble?.stop();
  removeTestDir(dir);
});

test('the dashboard says the health service is unreachable, and why', async () => {
  await page.goto(base + '/');
  const health = page.locator('#health');
  await health.getByText('The health service is unreachable').waitFor({ timeout: 20_000 });
  const { body } = await api.call('GET', '/api/v1/system/status');
  assert.is(body.health.reachable, false);
  assert.ok((await health.innerText()).includes(body.health.reasons[0]), 'the reason, in the API’s words');
  assert.is(await health.locator('.card-head .badge').innerText(), 'unknown');
  await page.locator('#remote').getByText('Not set up').waitFor();
  await checkScreen(page, 'dashboard-health-unreachable');
});

test('reach Remote access from the navigation: not set up yet, nothing to disable, two-factor suggested', async () => {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Remote access' }).click();
  await page.getByRole('heading', { level: 1, name: 'Remote access' }).waitFor();
  assert.ok(page.url().endsWith('/remote'));
  await fact('State').getByText('Not set up').waitFor();
  await page.locator('#remote-certs').getByText('No certificates yet. The device requests them once remote access is on.').waitFor();
  assert.ok(await page.getByRole('button', { name: 'Disable remote access…' }).isDisabled(), 'nothing to disable yet');
  const suggestion = page.getByRole('status').filter({ hasText: 'Turn on two-factor sign-in' });
  assert.is(await suggestion.getByRole('link', { name: 'Set up two-factor sign-in' }).getAttribute('href'), '/system/security');
  await checkScreen(page, 'remote-empty');
});

test('a bad relay URL: the API says why, next to the field, which gets the focus', async () => {
  const bad = `https://localhost:${relay.hubPort}/connect`;
  await fillSettings(bad);
  await settings().getByRole('button', { name: 'Save' }).click();
  const error = fieldError('Relay URL');
  await error.waitFor();
  // The API's own words for the same settings, at the field its 400 names.
  const refused = await api.call('POST', '/api/v1/remote/configure', { ...SETTINGS, relayUrl: bad });
  assert.is(refused.status, 400);
  // The field shows it as a sentence (first letter capitalised).
  const shown = await error.innerText();
  assert.ok(refused.body.error.details.includes(`relayUrl: ${shown.charAt(0).toLowerCase()}${shown.slice(1)}`), `${shown} / ${JSON.stringify(refused.body.error)}`);
  assert.is(await field('Relay URL').getAttribute('aria-invalid'), 'true');
  assert.ok(await field('Relay URL').evaluate((input) => input === document.activeElement), 'the field has the focus');
  for (const other of ['Device secret', 'Portal hostname', 'App domain']) assert.is(await field(other).getAttribute('aria-invalid'), null, other);
  assert.is(await settings().locator('.alert.error').count(), 0, 'said once, at the field');
  assert.is((await remoteStatus()).configured, false, 'nothing was saved');
  await checkScreen(page, 'remote-bad-url');
});

test('Check against a closed relay port: a failed check that says what to do', async () => {
  await field('Relay URL').fill(`wss://127.0.0.1:${closedPort}/connect`);
  await settings().getByRole('button', { name: 'Check' }).click();
  const tcp = check('relay-tcp');
  await tcp.waitFor({ timeout: 20_000 });
  assert.is(await fieldError('Relay URL').count(), 0, 'the earlier field error is gone');
  assert.is(await field('Relay URL').getAttribute('aria-invalid'), null);
  assert.is(await tcp.getAttribute('class'), 'failed');
  const text = await tcp.innerText();
  assert.match(text, /^Failed: /);
  assert.match(text, new RegExp(`port ${closedPort}\\b`), text);
  assert.is(await check('relay-url').getAttribute('class'), 'ok');
  const items = settings().locator('li[data-check]');
  const [failed, all] = [await settings().locator('li[data-check].failed').count(), await items.count()];
  assert.is(all, 6);
  assert.ok(failed > 0);
  await settings().getByText(`${failed} of ${all} checks failed.`).waitFor();
  await checkScreen(page, 'remote-preflight');
});

test('Save valid settings: the tunnel connects and the status says so; the settings come back on reload, the secret never', async () => {
  await field('Relay URL').fill(relayUrl);
  await settings().getByRole('button', { name: 'Save' }).click();
  await settings().getByText('Saved. The device connects to the relay now.').waitFor();
  assert.is(await field('Device secret').inputValue(), '', 'the secret is not left in the page');
  await fact('State').getByText('Connected').waitFor({ timeout: 20_000 });
  assert.is(await fact('Relay').innerText(), relayUrl);
  assert.match(await fact('Streams').innerText(), /^\d+$/);
  assert.match(await fact('Traffic').innerText(), /^\d+(\.\d)? [kMG]?B in, \d+(\.\d)? [kMG]?B out$/);
  assert.is(await fact('Names').innerText(), SETTINGS.portalHostname);
  const status = await remoteStatus();
  assert.is(status.tunnel.status.state, 'connected');
  assert.is(status.deviceSecretSet, true);
  await checkScreen(page, 'remote-configured');

  await page.reload();
  await fact('State').getByText('Connected').waitFor();
  assert.is(await field('Relay URL').inputValue(), relayUrl);
  assert.is(await field('Portal hostname').inputValue(), SETTINGS.portalHostname);
  assert.is(await field('App domain').inputValue(), SETTINGS.appDomain);
  assert.is(await field('Device secret').inputValue(), '');
  assert.match((await field('Device secret').getAttribute('placeholder'))!, /^Saved/);
  assert.not.ok((await page.content()).includes(SETTINGS.deviceSecret), 'the secret never reaches the page');
});

test("the portal's certificate, issued over the tunnel, is listed; Renew gets a new one", async () => {
  const row = certificateRow();
  await row.locator('td[data-label="State"]', { hasText: /^valid$/ }).waitFor({ timeout: 90_000 }).catch(async (err: Error) => {
    throw new Error(`${err.message}\nthe API's certificates: ${JSON.stringify((await api.call('GET', '/api/v1/remote/certificates')).body.certificates)}`);
  });
  const [issued] = (await api.call('GET', '/api/v1/remote/certificates')).body.certificates;
  assert.is(await row.locator('td[data-label="Issuer"]').innerText(), issued.issuer);
  assert.match(issued.issuer, /pebble/i);
  assert.match(await row.locator('td[data-label="Expires"]').innerText(), new RegExp(`^${issued.notAfter.slice(0, 10)} \\(in \\d+ days?\\)$`));
  await checkScreen(page, 'remote-certificate');
  const renew = row.getByRole('button', { name: `Renew ${SETTINGS.portalHostname}` });
  await renew.click();
  // The request answers once the new certificate is stored; the button is busy until then.
  await waitFor(async () => ((await renew.isEnabled()) && (await api.call('GET', '/api/v1/remote/certificates')).body.certificates[0].notBefore !== issued.notBefore) || undefined, 60_000, 'a renewed certificate');
  assert.is(await page.locator('#remote-certs .alert.error').count(), 0, await page.locator('#remote-certs').innerText());
  assert.is(await row.locator('td[data-label="State"]').innerText(), 'valid');
});

test('the dashboard shows remote access connected, with the portal address', async () => {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Dashboard' }).click();
  const remote = page.locator('#remote');
  await remote.getByText('Connected').waitFor();
  await remote.getByText(`https://${SETTINGS.portalHostname}/`).waitFor();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Remote access' }).click();
  await fact('State').getByText('Connected').waitFor();
});

test('the live status follows the tunnel without a reload: the relay goes away', async () => {
  await relay.stop();
  await fact('State').getByText(/Waiting to reconnect|Connecting…/).waitFor({ timeout: 15_000 });
  await fact('Last error').waitFor({ timeout: 15_000 });
  const { tunnel: view } = await remoteStatus();
  assert.ok(view.status.lastError, 'the API has a last error too');
  await checkScreen(page, 'remote-relay-gone');
});

test('Disable needs a confirmation: Cancel keeps it on, confirming turns it off and keeps the settings', async () => {
  const open = page.getByRole('button', { name: 'Disable remote access…' });
  await open.click();
  const dialog = page.getByRole('dialog', { name: 'Disable remote access?' });
  const yes = dialog.getByRole('button', { name: 'Yes, disable remote access' });
  await yes.waitFor();
  assert.ok(await dialog.evaluate((element) => element.contains(document.activeElement)), 'the dialog has the focus');
  assert.is((await remoteStatus()).enabled, true, 'one click disables nothing');
  await checkScreen(page, 'remote-confirm-disable');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'detached' });
  assert.is((await remoteStatus()).enabled, true);

  await open.click();
  await yes.click();
  await fact('State').getByText('Off').waitFor();
  // The event may say Off before the request answers; the dialog closes with the answer.
  await dialog.waitFor({ state: 'detached' });
  await page.getByText('Remote access is off.').waitFor();
  assert.ok(await open.isDisabled());
  const status = await remoteStatus();
  assert.is(status.enabled, false);
  assert.is(status.relayUrl, relayUrl, 'the settings are kept');
  await checkScreen(page, 'remote-disabled');
});

test('no console errors, no CSP violations', async () => {
  assert.equal(consoleErrors, []);
});

test.run();
