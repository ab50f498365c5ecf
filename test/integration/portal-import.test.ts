// Importing from the app stores in the portal, as a person does it: Chromium on the portal through
// the real proxy, the real daemon, Podman and a loopback registry. An Umbrel app folder chosen
// with the folder picker previews as one app of two containers, with what the store says and the
// password the device made for it, installs and runs with that password; a pasted CasaOS file asks
// for its device and media grants, with the app's name typed; a variable the file leaves without a
// value is named, and given in the .env field; a folder without a compose file says so.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import type { ApiSession } from '../support/api-session.js';
import { checkScreen, launchChromium, signedInPage, startDeviceBehindProxy } from '../support/portal.js';
import { removeTestDir, waitFor, type ServiceProcess } from '../support/processes.js';
import { startPodman, type TestPodman } from '../support/podman.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { casaosPlayer, umbrelNotes } from '../support/store-apps.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-portal-import-'));
const stateDir = path.join(dir, 'state');
let registry: TestRegistry;
let podman: TestPodman;
let daemon: ServiceProcess;
let proxy: ServiceProcess;
let api: ApiSession;
let browser: Browser;
let page: Page;
let portal = '';
let image = '';
let app = '';

/** An Umbrel app folder on disk, as a person has it from the app store's repository. */
function umbrelFolder(): string {
  const folder = path.join(dir, 'store', app);
  mkdirSync(path.join(folder, 'data'), { recursive: true });
  const { manifest, compose } = umbrelNotes(app, image);
  writeFileSync(path.join(folder, 'umbrel-app.yml'), manifest);
  writeFileSync(path.join(folder, 'docker-compose.yml'), compose);
  writeFileSync(path.join(folder, 'data', 'README.md'), 'not read');
  return folder;
}

async function open(): Promise<void> {
  await page.goto(`${portal}/apps/install`);
  await page.getByRole('heading', { name: 'Install an app' }).waitFor();
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  registry = await startRegistry();
  podman = await startPodman({ registriesConf: registry.registriesConf });
  app = `${podman.prefix}notes`;
  image = await registry.push(await podman.buildHttpdImage('notes', '<h1>notes</h1>'), `${podman.prefix}/notes:1`);
  ({ daemon, proxy, portal, api } = await startDeviceBehindProxy(dir, stateDir, podman.socketPath));
  browser = await launchChromium();
  page = await signedInPage(browser, portal, api);
});

test.after(async () => {
  await browser?.close();
  await proxy?.kill('SIGTERM');
  await daemon?.kill('SIGTERM');
  await podman?.stop();
  await registry?.stop();
  removeTestDir(dir);
});

test('an Umbrel app folder: chosen with the folder picker, previewed with its containers and password, installed and running with it', async () => {
  await open();
  await page.getByLabel('An app folder').check();
  await page.getByLabel('App folder', { exact: true }).setInputFiles(umbrelFolder());
  await page.getByText(`Read from ${app}: umbrel-app.yml, docker-compose.yml (an Umbrel app).`).waitFor();
  await checkScreen(page, 'apps-import-folder');
  await page.getByRole('button', { name: 'Preview' }).click();
  const about = page.getByTestId('about-app');
  await about.waitFor();
  assert.match(await about.innerText(), /Notes/);
  assert.match(await about.innerText(), /Write things down/);
  const password = (await about.locator('.secret-line .mono').innerText()).trim();
  assert.match(password, /^[0-9a-f]{32}$/);
  const containers = page.getByRole('list', { name: 'Containers' }).locator('li');
  assert.equal(await containers.evaluateAll((els) => els.map((el) => el.getAttribute('data-container'))), ['backend', 'web']);
  await checkScreen(page, 'apps-import-umbrel-preview');
  await page.getByRole('button', { name: `Install ${app}` }).click();
  await page.waitForURL(/\?job=/);
  const id = new URL(page.url()).searchParams.get('job')!;
  const job = await waitFor(async () => {
    const { body } = await api.call('GET', `/api/v1/jobs/${id}`);
    return body.status === 'running' ? undefined : body;
  }, 120_000, 'the install job');
  assert.is(job.status, 'succeeded', JSON.stringify(job));
  const info = await podman.docker.getContainer(`piccolo-${app}-web`).inspect();
  assert.ok(info.Config.Env.includes(`PASSWORD=${password}`), 'the container has the password the preview showed');
  await page.getByRole('link', { name: `Go to ${app}` }).waitFor();
  await page.getByRole('status').filter({ hasText: `${app} is running.` }).waitFor({ timeout: 60_000 });
  await checkScreen(page, 'apps-import-installed');
});

test('a pasted CasaOS file: a variable without a value is named, the .env field gives it, the grants wait for the typed name', async () => {
  const casa = casaosPlayer(`${app}casa`, image, '${WEB_PORT}');
  await open();
  await page.getByLabel('A compose file').check();
  await page.getByLabel('Compose file', { exact: true }).fill(casa);
  await page.getByRole('button', { name: 'Preview' }).click();
  const error = page.locator('.field-error');
  await error.waitFor();
  assert.match(await error.innerText(), /the variable WEB_PORT is not defined/);
  await page.getByLabel('Variables (.env)').fill('WEB_PORT=8097\n');
  assert.is(await error.count(), 0, 'editing clears the problem');
  await page.getByRole('button', { name: 'Preview' }).click();
  await page.getByTestId('about-app').waitFor();
  assert.match(await page.getByTestId('about-app').innerText(), /Player/);
  const install = page.getByRole('button', { name: `Install ${app}casa` });
  assert.ok(await install.isDisabled(), 'not before the grants');
  await page.locator('[data-grant="devices"] input').check();
  await page.locator('[data-grant="media"] input').check();
  assert.ok(await install.isDisabled(), 'not before the name is typed');
  await page.getByLabel(`Type ${app}casa to grant these permissions`).fill(`${app}casa`);
  assert.ok(await install.isEnabled());
  await checkScreen(page, 'apps-import-casaos-grants');
});

test('a folder without a compose file of its own is refused where it was chosen', async () => {
  const empty = path.join(dir, 'store-root');
  mkdirSync(path.join(empty, 'some-app'), { recursive: true });
  writeFileSync(path.join(empty, 'README.md'), '# apps');
  writeFileSync(path.join(empty, 'some-app', 'docker-compose.yml'), 'services: {}\n');
  await open();
  await page.getByLabel('An app folder').check();
  await page.getByLabel('App folder', { exact: true }).setInputFiles(empty);
  await page.getByText('Store-root has no docker-compose.yml of its own; choose the folder of one app, not a folder of apps').waitFor();
  assert.ok(await page.getByRole('button', { name: 'Preview' }).isDisabled(), 'nothing to preview');
  await checkScreen(page, 'apps-import-folder-refused');
});

test.run();
