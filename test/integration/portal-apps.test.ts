// The portal's Apps screens as a person uses them: Debian's Chromium (playwright-core) on the portal
// through the real proxy, against the real daemon bundle with real Podman and a real registry.
// The catalog with search and categories; install from a pasted app.yaml with the preview first,
// the job's progress with the image download in bytes (surviving a reload), running, Open (the
// app answers at the link); the live log tail with search; stop and start; update to a new
// revision and revert; uninstall where deleting the data needs the name typed; an app whose
// command exits shows as failed, with the reason and no Open link. checkScreen on every screen.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Browser, Locator, Page } from 'playwright-core';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import type { ApiSession } from '../support/api-session.js';
import { checkScreen, launchChromium, signedInPage, startDeviceBehindProxy } from '../support/portal.js';
import { removeTestDir, waitFor, type ServiceProcess } from '../support/processes.js';
import { startPodman, type TestPodman } from '../support/podman.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

const execFileAsync = promisify(execFile);
const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-portal-apps-'));
const stateDir = path.join(dir, 'state');
let registry: TestRegistry;
let podman: TestPodman;
let daemon: ServiceProcess;
let proxy: ServiceProcess;
let api: ApiSession;
let browser: Browser;
let page: Page;
let portal = '';
let app = '';
let pulledImage = '';
let secondImage = '';
let failingImage = '';
const stateEvents: string[] = [];

const specFor = (name: string, image: string) =>
  [`name: ${name}`, `image: ${image}`, 'listeners:', '  - name: web', '    guest_port: 80', '    protocol: http', 'storage:', '  persistent:', '    data:', '      container: /data'].join('\n');

const row = (name: string): Locator => page.locator(`li.app[data-app="${name}"]`);
const status = (): Locator => page.locator('#status');

/** The body the app serves at a link, fetched with the browser's own cookies (the link is behind the sign-in). */
async function served(href: string, text: string): Promise<string> {
  return waitFor(async () => {
    const res = await page.context().request.get(href, { failOnStatusCode: false }).catch(() => undefined);
    const body = res && res.ok() ? await res.text() : '';
    return body.includes(text) ? body : undefined;
  }, 30_000, `${text} at ${href}`);
}

/** On a timeout, the error also says what the page showed and what the API says of the apps. */
async function explain<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    const shown = await page.locator('main').innerText().catch(() => '(no page)');
    const apps = (await api.call('GET', '/api/v1/apps')).body.apps?.map((a: any) => `${a.name}: ${a.state} ${a.reason ?? ''}`);
    const jobs = (await api.call('GET', '/api/v1/jobs')).body.jobs?.map((j: any) => `${j.kind} ${j.app} ${j.status} ${j.updatedAt}`);
    await page.screenshot({ path: path.join(dir, 'failure.png'), fullPage: true }).catch(() => {});
    const logged = daemon.logs.filter((l) => l.level === 'warn' || l.level === 'error').slice(-10).map((l) => JSON.stringify(l));
    (err as Error).message += `\n  state events: ${stateEvents.slice(-8).join('\n    ')}`;
    (err as Error).message += `\n  the page showed: ${JSON.stringify(shown)}\n  apps: ${JSON.stringify(apps)}\n  jobs: ${JSON.stringify(jobs)}\n  daemon: ${logged.join('\n    ')}\n  at ${new Date().toISOString()}`;
    throw err;
  }
}

async function openHref(scope: Locator): Promise<string> {
  const link = scope.getByRole('link', { name: 'Open', exact: true });
  await link.waitFor({ timeout: 60_000 });
  return (await link.getAttribute('href'))!;
}

async function stateIs(scope: Locator, state: string): Promise<void> {
  await explain(scope.locator('.badge', { hasText: new RegExp(`^${state}$`) }).first().waitFor({ timeout: 90_000 }));
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  // A throttled registry, so that Podman has time to report bytes (about once a second).
  registry = await startRegistry({ bytesPerSecond: 3_000_000 });
  podman = await startPodman({ registriesConf: registry.registriesConf });
  app = `${podman.prefix}web`;
  // Random content does not compress: the layer stays ~12 MB, a pull of about 4 s.
  const local = await podman.buildHttpdImage('pulled', `<h1>hello from revision one</h1><!-- ${randomBytes(9_000_000).toString('base64')} -->`);
  pulledImage = await registry.push(local, `${podman.prefix}/web:1`);
  // Pulled for real: no layer of it may stay in the engine's store.
  await execFileAsync('podman', ['rmi', '-f', local]);
  secondImage = await podman.buildHttpdImage('second', '<h1>hello from revision two</h1>');
  // An image whose command exits at once: its container stops as soon as it starts.
  const maker = await podman.docker.createContainer({ Image: secondImage, Cmd: ['/bin/sh', '-c', 'echo giving up; exit 3'], name: `${podman.prefix}-maker` });
  failingImage = `localhost/${podman.prefix}-fails:1`;
  await maker.commit({ repo: `localhost/${podman.prefix}-fails`, tag: '1' });
  await maker.remove({ force: true });

  // Stats every 2 s instead of 30, so the charts have samples during the test.
  ({ daemon, proxy, portal, api } = await startDeviceBehindProxy(dir, stateDir, podman.socketPath, { daemon: { PICCOLO_STATS_INTERVAL_MS: '2000' } }));
  browser = await launchChromium();
  page = await signedInPage(browser, portal, api);
  // Requests that break off are worth knowing when a step times out (log streams end on purpose: not those).
  // The app state changes the page is told of, kept for the explanation of a timeout.
  page.on('websocket', (socket) =>
    socket.on('framereceived', ({ payload }) => {
      const text = String(payload);
      if (text.includes('"app.state"')) stateEvents.push(`${new Date().toISOString().slice(11, 23)} ${text.slice(0, 200)}`);
    }),
  );
  page.on('requestfailed', (request) => !request.url().includes('/logs?') && console.log(`  request failed: ${request.method()} ${request.url()}: ${request.failure()?.errorText}`));
});

test.after(async () => {
  await browser?.close();
  await proxy?.kill('SIGTERM');
  await daemon?.kill('SIGTERM');
  for (const image of [pulledImage, failingImage]) await podman?.docker.getImage(image).remove({ force: true }).catch(() => {});
  await podman?.stop();
  await registry?.stop();
  removeTestDir(dir);
});

test('no apps yet: the Apps screen says so and leads to the catalog and the install screen', async () => {
  await page.goto(`${portal}/apps`);
  await page.getByRole('heading', { name: 'No apps installed yet' }).waitFor({ timeout: 30_000 });
  assert.ok(await page.getByRole('link', { name: 'Install from a file' }).isVisible());
  await checkScreen(page, 'apps-empty');
});

test('the catalog: search by words, narrow by category, install leads to the preview', async () => {
  await page.getByRole('link', { name: 'Browse the catalog' }).first().click();
  await page.getByRole('heading', { name: 'App catalog' }).waitFor();
  const items = page.locator('li.catalog-item');
  await items.first().waitFor();
  const catalog: { name: string; category: string }[] = (await api.call('GET', '/api/v1/catalog')).body.apps;
  const names = () => items.evaluateAll((els) => els.map((el) => el.getAttribute('data-app')));
  assert.is(await items.count(), catalog.length);
  await page.getByText(`${catalog.length} apps`, { exact: true }).waitFor();
  await checkScreen(page, 'apps-catalog');
  await page.getByLabel('Search the catalog').fill('private notes');
  await page.getByText(`1 of ${catalog.length} apps match`).waitFor();
  assert.equal(await names(), ['notes']);
  await page.getByLabel('Search the catalog').fill('');
  await page.getByLabel('Category').selectOption('Productivity');
  assert.equal((await names()).sort(), catalog.filter((a) => a.category === 'Productivity').map((a) => a.name).sort());
  assert.ok((await names()).includes('dashboard'));
  await page.getByLabel('Category').selectOption('Network tools');
  assert.ok((await names()).includes('whoami'));
  assert.ok(!(await names()).includes('notes'));
  await checkScreen(page, 'apps-catalog-filtered');
  await page.getByRole('link', { name: 'Install whoami' }).click();
  await page.waitForURL(/\/apps\/install\?catalog=whoami$/);
  await page.getByRole('heading', { level: 1, name: 'Install an app' }).waitFor();
  assert.is(await page.getByLabel('Catalog app').inputValue(), 'whoami');
  assert.is(await page.getByRole('button', { name: 'Install whoami' }).count(), 0, 'no Install before the preview');
  await page.getByRole('button', { name: 'Preview' }).click();
  const preview = page.getByTestId('preview');
  await preview.waitFor();
  // whoami is public on purpose (remote access tests): the preview says so before anything happens.
  assert.match(await preview.innerText(), /reachable without signing in/);
  assert.ok(await page.locator('[data-permission="public-listener:echo"]').isVisible());
  await checkScreen(page, 'apps-install-catalog-preview');
  // Not installed: its image is on Docker Hub, which this machine cannot reach.
});

test('a bad app.yaml is refused at the preview, each problem with its path beside the field', async () => {
  await page.goto(`${portal}/apps/install`);
  await page.getByLabel('An app.yaml').check();
  await page.getByLabel('app.yaml', { exact: true }).fill(`name: ${app}\nimage: ${pulledImage}\nlisteners:\n  - name: web\n    guest_port: 70000\n    protocl: http\n`);
  await page.getByRole('button', { name: 'Preview' }).click();
  const error = page.locator('.field-error');
  await error.waitFor();
  assert.match(await error.innerText(), /listeners\[0\]\.guest_port/);
  assert.match(await error.innerText(), /protocl/);
  assert.is(await page.getByLabel('app.yaml', { exact: true }).getAttribute('aria-invalid'), 'true');
  assert.is(await page.getByTestId('preview').count(), 0);
  await checkScreen(page, 'apps-install-invalid');
  await page.getByLabel('app.yaml', { exact: true }).press('End');
  await page.getByLabel('app.yaml', { exact: true }).pressSequentially('\n');
  assert.is(await error.count(), 0, 'editing clears the problems');
});

test('install from a pasted app.yaml: preview first, then the job with the download in bytes, surviving a reload; running; Open serves the app', async () => {
  await page.goto(`${portal}/apps/install`);
  await page.getByLabel('app.yaml', { exact: true }).fill(specFor(app, pulledImage));
  await page.getByRole('button', { name: 'Preview' }).click();
  const preview = page.getByTestId('preview');
  await preview.waitFor();
  const words = await preview.innerText();
  assert.match(words, new RegExp(pulledImage.replace(/[.]/g, '\\.')));
  assert.match(words, /behind the device sign-in/);
  assert.ok(await page.locator('[data-permission="storage:data"]').isVisible(), 'the volume is a permission');
  assert.ok(await page.locator('[data-permission="lan-listener:web"]').isVisible());
  assert.not.ok((await api.call('GET', '/api/v1/apps')).body.apps.some((a: { name: string }) => a.name === app), 'the preview installed nothing');
  await checkScreen(page, 'apps-install-preview');

  await page.getByRole('button', { name: `Install ${app}` }).click();
  await page.waitForURL(/\/apps\/install\?job=[0-9a-f-]+$/);
  // The download as it goes: a determinate bar and its bytes.
  const detail = page.locator('.job .progress-label .muted');
  const downloading = await explain(waitFor(async () => {
    const text = (await detail.innerText().catch(() => '')) ?? '';
    return /^Downloading .+: [\d.]+ (KB|MB) of [\d.]+ MB/.test(text) ? text : undefined;
  }, 30_000, 'the download in bytes'));
  assert.match(downloading, new RegExp(`Downloading ${pulledImage.replace(/[.]/g, '\\.')}`));
  assert.ok(await page.locator('.job progress[value]').count(), 'the bar has a value');
  await checkScreen(page, 'apps-install-progress');
  // Leaving and coming back: the job is read back by the id in the URL.
  await page.reload();
  await page.locator('.job').waitFor();
  await explain(page.getByText(`${app} is running.`).waitFor({ timeout: 90_000 }));
  assert.match(await detail.innerText(), /^Done, downloaded [\d.]+ MB/);
  await checkScreen(page, 'apps-install-done');
  const href = await openHref(page.locator('#install-job'));
  const port = Number(new URL(href).port);
  assert.ok(port >= 35000 && port <= 45000, `the proxy's public port, not the host-bind one: ${href}`);
  assert.match(await served(href, 'hello from revision one'), /hello from revision one/);

  await page.goto(`${portal}/apps`);
  await stateIs(row(app), 'running');
  assert.is(await openHref(row(app)), href);
  assert.ok(await row(app).getByRole('button', { name: 'Start', exact: true }).isDisabled());
  assert.ok(await row(app).getByRole('button', { name: 'Stop', exact: true }).isEnabled());
  await checkScreen(page, 'apps-list');
});

test('the app page: state, charts that fill live, and the log tail: a request shows up live, search filters it', async () => {
  await row(app).getByRole('link', { name: app }).click();
  await page.getByRole('heading', { level: 1, name: app }).waitFor();
  await stateIs(status(), 'running');
  // Samples every 2 s here: the count in the summary grows without a reload.
  const summary = page.locator('figure[data-chart="cpu"] .offscreen');
  const count = async () => Number(/\((\d+) samples\)/.exec((await summary.innerText().catch(() => '')) ?? '')?.[1] ?? 0);
  const first = await waitFor(count, 30_000, 'a CPU sample');
  await waitFor(async () => (await count()) > first, 30_000, 'more samples, live');
  assert.match(await page.locator('figure[data-chart="memory"] .offscreen').innerText(), /^Memory: now [\d.]+ (B|KB|MB)/);
  assert.ok(await page.locator('figure[data-chart="cpu"] svg polyline').count(), 'a line is drawn');
  await checkScreen(page, 'app-running');

  const log = page.getByRole('log', { name: `Log of ${app}` });
  await page.getByText('Following live.').waitFor({ timeout: 20_000 });
  const notFound = log.locator('.log-line', { hasText: 'response:404' });
  assert.is(await notFound.count(), 0, 'nothing was missing yet');
  const href = await openHref(status());
  const res = await page.context().request.get(new URL('/no-such-page', href).href, { failOnStatusCode: false });
  assert.is(res.status(), 404);
  await notFound.first().waitFor({ timeout: 20_000 });
  const lines = await log.locator('.log-line').count();
  assert.ok(lines >= 2, `the earlier requests are in the tail too (${lines})`);
  await page.getByLabel('Search the log').fill('response:404');
  await page.getByText(`1 of ${lines} lines match.`).waitFor();
  assert.is(await log.locator('.log-line').count(), 1);
  assert.is(await log.locator('mark').innerText(), 'response:404');
  // Paused, a new line waits; resumed, it shows.
  await page.getByRole('button', { name: 'Pause' }).click();
  await page.context().request.get(new URL('/another-missing-page', href).href, { failOnStatusCode: false });
  await page.getByText(/^Paused: 1 new line since\./).waitFor({ timeout: 20_000 });
  assert.is(await log.locator('.log-line').count(), 1);
  await checkScreen(page, 'app-logs');
  await page.getByRole('button', { name: 'Resume' }).click();
  await page.getByText(/^Following live\. 2 of \d+ lines match\./).waitFor();
  await page.getByLabel('Search the log').fill('');
});

test('stop and start from the app page: stopped, it has no Open link and only Start; started, it serves again', async () => {
  await status().getByRole('button', { name: 'Stop', exact: true }).click();
  await stateIs(status(), 'stopped');
  assert.is(await status().getByRole('link', { name: 'Open' }).count(), 0);
  assert.match(await status().innerText(), /No Open link while the app is stopped/);
  assert.ok(await status().getByRole('button', { name: 'Start', exact: true }).isEnabled());
  assert.ok(await status().getByRole('button', { name: 'Stop', exact: true }).isDisabled());
  assert.ok(await status().getByRole('button', { name: 'Restart', exact: true }).isDisabled());
  assert.match(await page.locator('.job').last().innerText(), new RegExp(`Stopped ${app}`));
  await checkScreen(page, 'app-stopped');
  await status().getByRole('button', { name: 'Start', exact: true }).click();
  await stateIs(status(), 'running');
  await served(await openHref(status()), 'hello from revision one');
});

test('update to a new revision with the diff first, then revert to the old one after confirming', async () => {
  const update = page.locator('#update');
  await update.getByLabel('New app.yaml').fill(specFor(app, secondImage));
  await update.getByRole('button', { name: 'Preview the update' }).click();
  const changes = update.locator('table.changes');
  await changes.waitFor();
  const imageRow = changes.locator('tr', { hasText: /^services\.app\.image/ });
  assert.match(await imageRow.innerText(), new RegExp(`${pulledImage.replace(/[.]/g, '\\.')}\\s+${secondImage.replace(/[.]/g, '\\.')}`));
  await checkScreen(page, 'app-update-preview');
  await update.getByRole('button', { name: 'Update to revision 2' }).click();
  await page.locator('#status dd', { hasText: /^2$/ }).waitFor({ timeout: 90_000 });
  await stateIs(status(), 'running');
  await served(await openHref(status()), 'hello from revision two');

  const history = page.locator('#history');
  await history.locator('tr[data-revision="1"]').waitFor();
  assert.match(await history.locator('tr[data-revision="2"]').innerText(), /2 \(current\)/);
  await checkScreen(page, 'app-history');
  await history.getByRole('button', { name: 'Revert to revision 1' }).click();
  const dialog = page.getByRole('dialog', { name: `Revert ${app} to revision 1?` });
  await dialog.waitFor();
  await checkScreen(page, 'app-revert-dialog');
  await dialog.getByRole('button', { name: 'Revert to revision 1' }).click();
  await dialog.waitFor({ state: 'detached' });
  await page.locator('#status dd', { hasText: /^3$/ }).waitFor({ timeout: 90_000 });
  await stateIs(status(), 'running');
  await served(await openHref(status()), 'hello from revision one');
  assert.match(await history.locator('tr[data-revision="3"]').innerText(), new RegExp(pulledImage.replace(/[.]/g, '\\.')));
});

test('uninstall: deleting the data needs the app name typed; afterwards the page says it is gone', async () => {
  await page.locator('#uninstall').getByRole('button', { name: 'Uninstall…' }).click();
  const dialog = page.getByRole('dialog', { name: `Uninstall ${app}?` });
  await dialog.waitFor();
  assert.ok(await dialog.getByRole('button', { name: `Uninstall ${app}`, exact: true }).isEnabled(), 'keeping the data needs no typing');
  await dialog.getByLabel('Also delete its data permanently').check();
  const confirm = dialog.getByRole('button', { name: 'Uninstall and delete data' });
  assert.ok(await confirm.isDisabled());
  await dialog.getByLabel(/^Type .+ to confirm$/).fill('yes');
  assert.ok(await confirm.isDisabled(), 'anything but the name keeps it disabled');
  await dialog.getByLabel(/^Type .+ to confirm$/).fill(app);
  assert.ok(await confirm.isEnabled());
  await checkScreen(page, 'app-uninstall-dialog');
  await confirm.click();
  await explain(page.getByText(`${app} was uninstalled.`).waitFor({ timeout: 180_000 }));
  assert.equal((await api.call('GET', '/api/v1/apps')).body.apps, []);
  assert.match(readFileSync(path.join(stateDir, 'audit.log'), 'utf8'), new RegExp(`"event":"app.purge".*${app}`));
  await checkScreen(page, 'app-uninstalled');
});

test('an app whose command exits: failed with the reason, no Open link, only the actions that make sense', async () => {
  const broken = `${podman.prefix}broken`;
  await page.goto(`${portal}/apps/install`);
  await page.getByLabel('app.yaml', { exact: true }).fill(specFor(broken, failingImage));
  await page.getByRole('button', { name: 'Preview' }).click();
  await page.getByRole('button', { name: `Install ${broken}` }).click();
  await page.waitForURL(/\?job=/);
  await page.goto(`${portal}/apps`);
  await stateIs(row(broken), 'failed');
  assert.match(await row(broken).locator('.app-reason.failed').innerText(), /^Failed: the container exited with code 3/);
  assert.is(await row(broken).getByRole('link', { name: 'Open' }).count(), 0);
  assert.match(await row(broken).innerText(), /No Open link while the app is failed/);
  assert.ok(await row(broken).getByRole('button', { name: 'Start', exact: true }).isEnabled(), 'start tries again');
  assert.ok(await row(broken).getByRole('button', { name: 'Restart', exact: true }).isDisabled());
  await checkScreen(page, 'apps-failed');
  await row(broken).getByRole('link', { name: broken }).click();
  await stateIs(status(), 'failed');
  assert.is(await status().getByRole('link', { name: 'Open' }).count(), 0);
  // Its output says why: the line its command wrote before exiting.
  await page.getByRole('log').locator('.log-line', { hasText: 'giving up' }).first().waitFor({ timeout: 20_000 });
  await checkScreen(page, 'app-failed');
});

test('a compose file: the whole stack is one app with a container per service; a named service narrows it; an unknown one is refused; installed, each container shows with its own log', async () => {
  const stack = `${podman.prefix}stack`;
  await page.goto(`${portal}/apps/install`);
  await page.getByLabel('A compose file').check();
  const compose = `services:\n  ${stack}:\n    image: ${secondImage}\n    ports: ["8080:80"]\n  other:\n    image: ${secondImage}\n`;
  await page.getByLabel('Compose file', { exact: true }).fill(compose);
  await page.getByRole('button', { name: 'Preview' }).click();
  const preview = page.getByTestId('preview');
  await preview.waitFor();
  const containers = page.getByRole('list', { name: 'Containers' }).locator('li');
  assert.equal(await containers.evaluateAll((els) => els.map((el) => el.getAttribute('data-container'))), [stack, 'other']);
  await checkScreen(page, 'apps-install-compose-preview');
  const service = page.getByLabel('Service', { exact: true });
  await service.fill('nope');
  assert.is(await preview.count(), 0, 'an edit drops the preview');
  await page.getByRole('button', { name: 'Preview' }).click();
  const error = page.locator('.field-error');
  await error.waitFor();
  const problem = await error.innerText();
  assert.match(problem, /^1 problem:\nservices: there is no service nope/, problem);
  await service.fill(stack);
  assert.is(await error.count(), 0, 'editing clears the problem');
  await page.getByRole('button', { name: 'Preview' }).click();
  await preview.waitFor();
  assert.is(await page.getByRole('list', { name: 'Containers' }).count(), 0, 'one container: no list of them');

  await service.fill('');
  await page.getByRole('button', { name: 'Preview' }).click();
  await page.getByRole('button', { name: `Install ${stack}` }).click();
  await explain(page.getByText(`${stack} is running.`).waitFor({ timeout: 90_000 }));
  await page.getByRole('link', { name: `Go to ${stack}` }).click();
  const listed = status().getByRole('list', { name: 'Containers' }).locator('li');
  await listed.first().waitFor();
  assert.equal(await listed.evaluateAll((els) => els.map((el) => el.getAttribute('data-container'))), [stack, 'other']);
  await waitFor(async () => ((await listed.locator('.badge', { hasText: /^running$/ }).count()) === 2 ? true : undefined), 30_000, 'both containers running');
  await page.getByLabel('Container', { exact: true }).selectOption('other');
  // Its own log (it has written nothing yet: Podman answers a silent container's log only once it writes).
  await page.getByRole('log', { name: `Log of ${stack}/other` }).waitFor();
  await checkScreen(page, 'app-stack');
  const removed = await api.call('DELETE', `/api/v1/apps/${stack}`, { confirm: stack, purge: true });
  assert.is(removed.status, 202, JSON.stringify(removed.body));
  await explain(page.getByText(`${stack} was uninstalled.`).waitFor({ timeout: 180_000 }));
  await page.goto(`${portal}/apps/install`);
});

test('an app that asks for a permission: Install waits until it is granted and the name typed; the daemon takes the grant', async () => {
  const privileged = `${podman.prefix}priv`;
  await page.getByLabel('app.yaml', { exact: true }).fill(`${specFor(privileged, secondImage)}\nprivileged: true\n`);
  await page.getByRole('button', { name: 'Preview' }).click();
  const install = page.getByRole('button', { name: `Install ${privileged}` });
  await install.waitFor();
  assert.ok(await install.isDisabled(), 'not before the grant');
  await page.getByLabel('Full control of the device (privileged)').check();
  assert.ok(await install.isDisabled(), 'not before the name is typed');
  await page.getByLabel(`Type ${privileged} to grant these permissions`).fill('yes');
  assert.ok(await install.isDisabled());
  await page.getByLabel(`Type ${privileged} to grant these permissions`).fill(privileged);
  assert.ok(await install.isEnabled());
  await checkScreen(page, 'apps-install-grants');
  await install.click();
  await page.waitForURL(/\?job=/);
  const id = new URL(page.url()).searchParams.get('job')!;
  await waitFor(async () => ((await api.call('GET', `/api/v1/jobs/${id}`)).body.status !== 'running' ? true : undefined), 180_000, 'the install job');
  assert.equal((await api.call('GET', `/api/v1/apps/${privileged}`)).body.granted, ['privileged']);
  assert.match(readFileSync(path.join(stateDir, 'audit.log'), 'utf8'), new RegExp(`"event":"app.grant".*${privileged}: privileged`));
  const removed = await api.call('DELETE', `/api/v1/apps/${privileged}`, { confirm: privileged, purge: true });
  assert.is(removed.status, 202, JSON.stringify(removed.body));
  await waitFor(async () => ((await api.call('GET', `/api/v1/jobs/${removed.body.job.id}`)).body.status !== 'running' ? true : undefined), 180_000, 'the uninstall job');
});

test.run();
