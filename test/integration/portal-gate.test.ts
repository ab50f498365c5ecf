// The auth gate as a person meets it in Chromium: the real daemon and proxy bundles, the portal
// reached through the proxy's portal listener (as in `make run`, not on port 80), and a real app
// on Podman behind the gate on its own port. Signed out, the app's link leads to the portal's
// sign-in on the portal's port; signed out again, back, reload and a new visit show the sign-in,
// never the app's page from the browser's cache. A stopped app's page from the proxy says what is
// wrong and links to the portal, and holds to the accessibility bar (checkScreen), as does the
// page for a name no app answers at.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import type { ApiSession } from '../support/api-session.js';
import { checkScreen, launchChromium, startDeviceBehindProxy, TEST_PASSWORD } from '../support/portal.js';
import { removeTestDir, waitFor, type ServiceProcess } from '../support/processes.js';
import { startPodman, type TestPodman } from '../support/podman.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-portal-gate-'));
const stateDir = path.join(dir, 'state');
const APP_TEXT = 'the private page of the gated app';
let podman: TestPodman;
let daemon: ServiceProcess;
let proxy: ServiceProcess;
let api: ApiSession;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let portal = '';
let appUrl = '';
let app = '';

async function jobDone(job: { id: string }): Promise<void> {
  const done = await waitFor(async () => {
    const { body } = await api.call('GET', `/api/v1/jobs/${job.id}`);
    return body.status === 'running' ? undefined : body;
  }, 60_000, `job ${job.id}`);
  assert.is(done.status, 'succeeded', JSON.stringify(done));
}

/** Signs the browser in and out through the portal's API, with the browser's own cookie jar (the screens are another test's concern). */
async function signIn(): Promise<void> {
  const res = await context.request.post(`${portal}/api/v1/auth/login`, { data: { password: TEST_PASSWORD } });
  assert.is(res.status(), 200, await res.text());
}

async function signOut(): Promise<void> {
  const { csrfToken } = await (await context.request.get(`${portal}/api/v1/auth/session`)).json();
  const res = await context.request.post(`${portal}/api/v1/auth/logout`, { headers: { 'x-csrf-token': csrfToken } });
  assert.is(res.status(), 204);
  assert.not.ok((await context.cookies(portal)).some((c) => c.name === 'piccolo_session'), 'the session cookie is gone');
}

/** The page shows the portal's sign-in, sent there by the gate, with the way back to the app. */
async function atSignIn(): Promise<void> {
  const url = new URL(page.url());
  assert.is(url.origin, portal, `at ${page.url()}`);
  assert.is(url.searchParams.get('next'), appUrl);
  assert.not.match(await page.content(), APP_TEXT);
}

// uvu reports a failed before hook only as 0 passed: the reason is printed here.
test.before(() => setUp().catch((err) => (console.error('set-up failed:', err), Promise.reject(err))));

async function setUp(): Promise<void> {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  podman = await startPodman();
  app = `${podman.prefix}gated`;
  const image = await podman.buildHttpdImage('gate', `<!doctype html><html lang="en"><title>gated</title><h1>${APP_TEXT}</h1></html>`);
  // The portal through the proxy on a port that is not 80, and no PICCOLO_PROXY_LOGIN_URL: as `make run` has it.
  ({ daemon, proxy, portal, api } = await startDeviceBehindProxy(dir, stateDir, podman.socketPath));
  const install = await api.call('POST', '/api/v1/apps', { spec: [`name: ${app}`, `image: ${image}`, 'listeners:', '  - name: web', '    guest_port: 80', '    protocol: http'].join('\n') });
  assert.is(install.status, 202, JSON.stringify(install.body));
  await jobDone(install.body.job);
  const view = (await api.call('GET', `/api/v1/apps/${app}`)).body;
  assert.is(view.state, 'running');
  appUrl = `http://127.0.0.1:${view.services[0].publicPort}/`;
  // The route reaches the proxy by long poll; then the public port answers (behind the gate).
  await waitFor(async () => ((await fetch(appUrl, { redirect: 'manual' }).catch(() => undefined))?.status === 401 ? true : undefined), 20_000, 'the app port behind the gate');
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
}

test.after(async () => {
  await browser?.close();
  await proxy?.kill('SIGTERM');
  await daemon?.kill('SIGTERM');
  await podman?.stop();
  removeTestDir(dir);
});

test('signed out, the app link leads to the portal sign-in on the portal port, and that page loads', async () => {
  const res = await page.goto(appUrl);
  await atSignIn();
  assert.is(res!.status(), 200);
  assert.match(res!.headers()['content-type']!, /text\/html/);
  assert.match(await page.title(), /\S/, 'the portal page rendered');
});

test('signed in, the app page shows, and the proxy marks it private, no-store', async () => {
  await signIn();
  const res = await page.goto(appUrl);
  await page.getByRole('heading', { name: APP_TEXT }).waitFor();
  assert.is(res!.headers()['cache-control'], 'private, no-store');
  assert.match(res!.headers().vary!, /Cookie/);
});

test('after signing out, going back to the app page shows the sign-in, not the page from the cache', async () => {
  // Elsewhere, then back: about:blank rather than the portal, whose own screens add history entries as it signs out.
  await page.goto('about:blank');
  await signOut();
  await page.goBack();
  assert.is(new URL(page.url()).origin, portal, `back went to ${page.url()}`);
  await atSignIn();
});

test('after signing out on the app page, reload and a new visit show the sign-in', async () => {
  await signIn();
  await page.goto(appUrl);
  await page.getByRole('heading', { name: APP_TEXT }).waitFor();
  await signOut();
  await page.reload();
  await atSignIn();
  await page.goto(appUrl);
  await atSignIn();
});

test('a stopped app: the proxy page says it is not running and how to see why, links to the portal on its port, and is accessible', async () => {
  const stop = await api.call('POST', `/api/v1/apps/${app}/stop`, {});
  assert.is(stop.status, 202, JSON.stringify(stop.body));
  await jobDone(stop.body.job);
  await signIn();
  const res = await page.goto(appUrl);
  assert.is(res!.status(), 502, `${page.url()}: ${await page.locator('body').innerText()}`);
  assert.is(res!.headers()['cache-control'], 'no-store');
  await page.getByRole('heading', { name: `${app} is not running` }).waitFor();
  assert.match(await page.locator('main').innerText(), /Open the portal to see why/);
  const link = page.getByRole('link', { name: `Open ${app} in the portal` });
  assert.is(await link.getAttribute('href'), `${portal}/apps/${app}`);
  await checkScreen(page, 'proxy-app-not-running');
  await link.click();
  await page.waitForURL(`${portal}/apps/${app}`);
});

test('a name no app answers at: the proxy page says so, links to the apps in the portal, and is accessible', async () => {
  // *.localhost reaches this machine in Chromium; the device knows no app by this name.
  const port = new URL(portal).port;
  const res = await page.goto(`http://no-such-app.localhost:${port}/`);
  assert.is(res!.status(), 404);
  await page.getByRole('heading', { name: 'No app here' }).waitFor();
  const link = page.getByRole('link', { name: 'See the apps in the portal' });
  assert.is(await link.getAttribute('href'), `${portal}/apps`);
  await checkScreen(page, 'proxy-no-app-here');
  await link.click();
  await page.waitForURL(`${portal}/apps`);
});

test.run();
