// The portal's Remote access screen as a person uses it: Debian's Chromium driven by playwright-core
// on a phone-sized window, against the real daemon, proxy and tunnel bundles, our relay on loopback
// and Debian's pebble as the ACME CA. Reach the screen from home; the API's 400 shows next to the
// field it names; the checks against a closed relay port fail with the reason; valid settings are
// saved and the tunnel's live status follows (connected, then the relay gone); the portal's
// certificate is issued over the tunnel and renewed with its button; disabling takes a
// confirmation. All along the page logs no error and breaks no rule of its strict CSP.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { APIRequestContext, Browser, Page } from 'playwright-core';
import { freePort } from '../../image/qemu.js';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import type { Relay } from '../../services/relay/relay.js';
import { launchChromium } from '../support/browser.js';
import { startPebble, type Pebble } from '../support/pebble.js';
import { removeTestDir, startTestDaemon, waitFor, type ServiceProcess } from '../support/processes.js';
import { remoteSockets, startProxyAndTunnel, startTestRelay } from '../support/remote-stack.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-portal-remote-'));
const stateDir = path.join(dir, 'state');
const sockets = remoteSockets(dir);
const SCREENSHOTS = process.env.PICCOLO_SCREENSHOTS; // a folder, to look at the pages
const PASSWORD = 'Portal-Remote-Pass-5';
const PHONE_WIDTH = 390;
const SETTINGS = { deviceSecret: 'portal-remote-test-secret-0123456789', portalHostname: 'portal.remote.test', appDomain: 'apps.remote.test' };
let relay: Relay;
let pebble: Pebble;
let daemon: ServiceProcess;
let proxy: ServiceProcess;
let tunnel: ServiceProcess;
let browser: Browser;
let page: Page;
let request: APIRequestContext;
let base = '';
let relayUrl = '';
let closedPort = 0; // nothing listens there
/** What the page said on its console as errors (CSP violations included), and uncaught exceptions. */
const consoleErrors: string[] = [];

async function snap(name: string): Promise<void> {
  if (SCREENSHOTS) await page.screenshot({ path: path.join(SCREENSHOTS, `remote-${name}.png`), fullPage: true });
}

async function api(method: 'GET' | 'POST', route: string, data?: unknown): Promise<{ status: number; body: any }> {
  const { csrfToken } = await (await request.get(base + '/api/v1/auth/session')).json();
  const res = await request.fetch(base + route, { method, data, headers: { 'x-csrf-token': csrfToken } });
  return { status: res.status(), body: await res.json() };
}

async function remoteStatus(): Promise<any> {
  const { status, body } = await api('GET', '/api/v1/remote/status');
  assert.is(status, 200);
  return body;
}

const screen = () => page.locator('[data-view="remote"]');
const field = (label: string) => screen().getByLabel(label, { exact: true });
/** The <dd> of a line in the status list. */
const fact = (term: string) => page.locator('#remote-status dt', { hasText: new RegExp(`^${term}$`) }).locator('xpath=following-sibling::dd[1]');
const certificateRow = () => page.locator(`#remote-certs tr[data-name="${SETTINGS.portalHostname}"]`);

async function fillSettings(url: string): Promise<void> {
  await field('Relay URL').fill(url);
  await field('Device secret').fill(SETTINGS.deviceSecret);
  await field('Portal hostname').fill(SETTINGS.portalHostname);
  await field('App domain').fill(SETTINGS.appDomain);
}

test.before(async () => {
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
    NODE_EXTRA_CA_CERTS: trust,
  }));
  ({ proxy, tunnel } = await startProxyAndTunnel(dir, sockets, trust));

  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: PHONE_WIDTH, height: 844 } });
  // Installed before any page script: Chromium reports a CSP violation as an event on the document.
  await context.addInitScript(() =>
    document.addEventListener('securitypolicyviolation', (event) => console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`)),
  );
  page = await context.newPage();
  request = context.request;
  page.on('console', (message) => {
    // Chromium logs every failed request. Expected here: the one 400 this test provokes, the apps
    // list on home (no Podman in this test: the page says so and retries) and the favicon the
    // daemon does not serve.
    const where = new URL(message.location().url || base).pathname;
    const status = /^Failed to load resource: the server responded with a status of (\d+)/.exec(message.text())?.[1];
    const expected = (where === '/api/v1/remote/configure' && status === '400') || (where === '/api/v1/apps' && status === '502') || (where === '/favicon.ico' && status === '404');
    if (message.type() === 'error' && !expected) consoleErrors.push(`${message.text()} (${where})`);
  });
  page.on('pageerror', (error) => consoleErrors.push(`uncaught: ${error.message}`));
});

test.after(async () => {
  await browser?.close();
  await tunnel?.kill('SIGTERM');
  await proxy?.kill('SIGTERM');
  await daemon?.kill('SIGTERM');
  await relay?.stop();
  await pebble?.stop();
  removeTestDir(dir);
});

test('set up the device, then reach Remote access from home: not set up yet', async () => {
  // Setup is portal-browser.test.ts's subject: here through the API, into the page's cookie jar.
  const claimCode = readFileSync(path.join(stateDir, 'claim-code'), 'utf8').trim();
  const claim = await api('POST', '/api/v1/setup/claim', { claimCode });
  assert.is(claim.status, 200);
  assert.is((await api('POST', '/api/v1/setup', { setupToken: claim.body.setupToken, password: PASSWORD, recoveryKeySaved: true })).status, 201);
  await page.goto(base + '/');
  await page.getByTestId('home-title').waitFor({ timeout: 20_000 });
  await page.getByRole('link', { name: 'Remote access' }).click();
  await page.getByRole('heading', { name: 'Remote access' }).waitFor();
  assert.ok(page.url().endsWith('#remote'));
  await fact('State').getByText('Not set up').waitFor();
  assert.is(await page.locator('#remote-certs-status').innerText(), 'No certificates yet. The device requests them once remote access is on.');
  assert.ok(await screen().getByRole('button', { name: 'Disable remote access…' }).isDisabled(), 'nothing to disable yet');
  await snap('1-empty');
});

test('a bad relay URL: the API says why, next to the field', async () => {
  const bad = `https://localhost:${relay.hubPort}/connect`;
  await fillSettings(bad);
  await screen().getByRole('button', { name: 'Save' }).click();
  const error = page.locator('#remote-relayUrl-error');
  await error.waitFor();
  // The API's own words for the same settings, at the field its 400 names.
  const refused = await api('POST', '/api/v1/remote/configure', { ...SETTINGS, relayUrl: bad });
  assert.is(refused.status, 400);
  assert.ok(refused.body.error.details.includes(`relayUrl: ${await error.innerText()}`), JSON.stringify(refused.body.error));
  assert.is(await field('Relay URL').getAttribute('aria-invalid'), 'true');
  assert.ok(await field('Relay URL').evaluate((input) => input === document.activeElement), 'the field has the focus');
  for (const other of ['Device secret', 'Portal hostname', 'App domain']) assert.is(await field(other).getAttribute('aria-invalid'), null, other);
  assert.ok(await page.locator('#remote-form-error').isHidden(), 'said once, at the field');
  assert.is((await remoteStatus()).configured, false, 'nothing was saved');
  await snap('2-bad-url');
});

test('Check against a closed relay port: a failed check that says what to do', async () => {
  await field('Relay URL').fill(`wss://127.0.0.1:${closedPort}/connect`);
  await screen().getByRole('button', { name: 'Check' }).click();
  const tcp = page.locator('#remote-checks li[data-check="relay-tcp"]');
  await tcp.waitFor({ timeout: 20_000 });
  assert.ok(await page.locator('#remote-relayUrl-error').isHidden(), 'the earlier field error is gone');
  assert.is(await field('Relay URL').getAttribute('aria-invalid'), null);
  assert.is(await tcp.getAttribute('class'), 'failed');
  const text = await tcp.innerText();
  assert.match(text, /^Failed: /);
  assert.match(text, new RegExp(`port ${closedPort}\\b`), text);
  assert.is(await page.locator('#remote-checks li[data-check="relay-url"]').getAttribute('class'), 'ok');
  const [failed, all] = [await page.locator('#remote-checks li.failed').count(), await page.locator('#remote-checks li').count()];
  assert.is(all, 6);
  assert.is(await page.locator('#remote-form-status').innerText(), `${failed} of ${all} checks failed.`);
  await snap('3-preflight');
});

test('Save valid settings: the tunnel connects and the status says so; the settings come back on reload, the secret never', async () => {
  await field('Relay URL').fill(relayUrl);
  await screen().getByRole('button', { name: 'Save' }).click();
  await page.locator('#remote-form-status').getByText('Saved.').waitFor();
  assert.is(await field('Device secret').inputValue(), '', 'the secret is not left in the page');
  await fact('State').getByText('Connected').waitFor({ timeout: 20_000 });
  assert.is(await fact('Relay').innerText(), relayUrl);
  assert.match(await fact('Streams').innerText(), /^\d+$/);
  assert.match(await fact('Traffic').innerText(), /^\d+(\.\d)? [kMG]?B in, \d+(\.\d)? [kMG]?B out$/);
  assert.is(await fact('Names').innerText(), SETTINGS.portalHostname);
  const status = await remoteStatus();
  assert.is(status.tunnel.status.state, 'connected');
  assert.is(status.deviceSecretSet, true);
  await snap('4-connected');

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
    throw new Error(`${err.message}\nthe API's certificates: ${JSON.stringify((await api('GET', '/api/v1/remote/certificates')).body.certificates)}`);
  });
  const [issued] = (await api('GET', '/api/v1/remote/certificates')).body.certificates;
  assert.is(await row.locator('td[data-label="Issuer"]').innerText(), issued.issuer);
  assert.match(issued.issuer, /pebble/i);
  assert.match(await row.locator('td[data-label="Expires"]').innerText(), new RegExp(`^${issued.notAfter.slice(0, 10)} \\(in \\d+ days?\\)$`));
  await snap('5-certificate');
  const renew = row.getByRole('button', { name: `Renew ${SETTINGS.portalHostname}` });
  await renew.click();
  // The request answers once the new certificate is stored; the button is busy until then.
  await waitFor(async () => ((await renew.isEnabled()) && (await api('GET', '/api/v1/remote/certificates')).body.certificates[0].notBefore !== issued.notBefore) || undefined, 60_000, 'a renewed certificate');
  assert.ok(await page.locator('#remote-certs-error').isHidden(), await page.locator('#remote-certs-error').innerText());
  assert.is(await row.locator('td[data-label="State"]').innerText(), 'valid');
});

test('the live status follows the tunnel without a reload: the relay goes away', async () => {
  await relay.stop();
  await fact('State').getByText(/Waiting to reconnect|Connecting…/).waitFor({ timeout: 15_000 });
  await fact('Last error').waitFor({ timeout: 15_000 });
  const { tunnel: view } = await remoteStatus();
  assert.ok(view.status.lastError, 'the API has a last error too');
  await snap('6-relay-gone');
});

test('Disable needs a confirmation step: Cancel keeps it on, Yes turns it off and keeps the settings', async () => {
  const toggle = screen().getByRole('button', { name: 'Disable remote access…' });
  await toggle.click();
  assert.is(await toggle.getAttribute('aria-expanded'), 'true');
  const yes = screen().getByRole('button', { name: 'Yes, disable remote access' });
  await yes.waitFor();
  assert.ok(await yes.evaluate((button) => button === document.activeElement), 'the confirmation has the focus');
  assert.is((await remoteStatus()).enabled, true, 'one click disables nothing');
  await snap('7-confirm');
  await screen().getByRole('button', { name: 'Cancel' }).click();
  assert.ok(await yes.isHidden());
  assert.is(await toggle.getAttribute('aria-expanded'), 'false');
  assert.is((await remoteStatus()).enabled, true);

  await toggle.click();
  await yes.click();
  await fact('State').getByText('Off').waitFor();
  assert.ok(await yes.isHidden());
  assert.ok(await toggle.isDisabled());
  const status = await remoteStatus();
  assert.is(status.enabled, false);
  assert.is(status.relayUrl, relayUrl, 'the settings are kept');
  await snap('8-disabled');
});

test('usable at 390 px: nothing wider than the window; no console errors, no CSP violations', async () => {
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= PHONE_WIDTH, `the page is ${width} px wide`);
  assert.equal(consoleErrors, []);
});

test.run();
