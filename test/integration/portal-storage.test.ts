// Storage in the portal, in Chromium against the real daemon and proxy bundles and real apps on
// Podman: an app's page shows each volume with its limit and what it stores (the app wrote 5 MiB
// into an 8 MiB volume), its temporary volume and the shared folder it mounts; System's Shared
// folders card names the folder and the apps that have it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import type { ApiSession } from '../support/api-session.js';
import { jobDone } from '../support/jobs.js';
import { checkScreen, launchChromium, signedInPage, startDeviceBehindProxy } from '../support/portal.js';
import { startPodman, type TestPodman } from '../support/podman.js';
import { removeTestDir, waitFor, type ServiceProcess } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-portal-storage-'));
const stateDir = path.join(dir, 'state');
let podman: TestPodman;
let daemon: ServiceProcess;
let proxy: ServiceProcess;
let api: ApiSession;
let browser: Browser;
let page: Page;
let portal = '';
let app = '';

test.before(() => setUp().catch((err) => (console.error('set-up failed:', err), Promise.reject(err))));

async function setUp(): Promise<void> {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  podman = await startPodman();
  app = `${podman.prefix}library`;
  const image = await podman.buildBusyboxImage('library', {
    applets: ['sh', 'httpd', 'dd'],
    files: {
      '/www/index.html': '<!doctype html><html lang="en"><title>library</title><h1>library</h1></html>',
      '/start.sh': { mode: 0o755, content: '#!/bin/sh\ndd if=/dev/zero of=/data/five bs=1048576 count=5 2>/dev/null\nexec httpd -f -p 80 -h /www\n' },
    },
    cmd: ['/start.sh'],
  });
  ({ daemon, proxy, portal, api } = await startDeviceBehindProxy(dir, stateDir, podman.socketPath));
  const spec = [
    `name: ${app}`,
    'services:',
    '  web:',
    `    image: ${image}`,
    '    mounts:',
    '      - data:/data',
    '      - cache:/cache',
    '      - { media: Media, subpath: Books, container: /books, read_only: true }',
    'listeners:',
    '  - { name: web, guest_port: 80, protocol: http }',
    'storage:',
    '  persistent:',
    '    data: { size_limit: 8Mi }',
    '  temporary:',
    '    cache: { size_limit: 2Mi }',
  ].join('\n');
  const install = await api.call('POST', '/api/v1/apps', { spec, grants: ['media'], confirm: app });
  assert.is(install.status, 202, JSON.stringify(install.body));
  await jobDone(api, install.body.job, 180_000);
  // The app has written its 5 MiB once its volume says so.
  await waitFor(async () => {
    const { body } = await api.call('GET', `/api/v1/apps/${app}/storage`);
    return body.volumes?.[0]?.usedBytes >= 5 * 2 ** 20 ? true : undefined;
  }, 30_000, 'the app writes into its volume');
  browser = await launchChromium();
  page = await signedInPage(browser, portal, api);
}

test.after(async () => {
  await browser?.close();
  await proxy?.kill('SIGTERM');
  await daemon?.kill('SIGTERM');
  await podman?.stop();
  removeTestDir(dir);
});

test("app page: the Storage card shows each volume's limit and use, and the shared folder it mounts", async () => {
  await page.goto(`${portal}/apps/${app}`);
  const card = page.locator('section.card#storage');
  const data = card.locator('li[data-volume="data"]');
  await data.waitFor();
  const detail = await data.locator('.progress-label .muted').textContent();
  assert.match(detail ?? '', /^5\.\d MB of 8\.0 MB$/);
  const bar = data.locator('progress');
  assert.is(await bar.getAttribute('max'), String(8 * 2 ** 20));
  assert.ok(Number(await bar.getAttribute('value')) >= 5 * 2 ** 20);
  assert.match((await card.locator('li[data-volume="cache"]').textContent()) ?? '', /temporary, in memory, emptied when the app restarts; up to 2\.0 MB/);
  assert.is((await card.locator('li[data-media="Media"]').textContent())?.trim(), 'Media/Books at /books, read only');
  await checkScreen(page, 'app-storage');
});

test('System: the Shared folders card names each folder and the apps that have it', async () => {
  await page.goto(`${portal}/system`);
  const card = page.locator('section.card#shared-folders');
  const media = card.locator('li[data-folder="Media"]');
  await media.waitFor();
  assert.is((await media.textContent())?.trim(), `Media: ${app} (read only)`);
  assert.is(await media.getByRole('link', { name: app }).getAttribute('href'), `/apps/${app}#storage`);
  await checkScreen(page, 'system-shared-folders');
});

test.run();
