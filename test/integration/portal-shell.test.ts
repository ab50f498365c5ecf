// The portal's delivery, against the real daemon bundle: the shell for every page path, hashed
// assets compressed and cached for good, the shell revalidated, the CSP, the first-load size goal;
// and the screen checker itself, shown to fail on a page that breaks its rules.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { Browser } from 'playwright-core';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { FIRST_LOAD_GZIP_GOAL_BYTES, buildPortal } from '../../image/portal-build.js';
import { launchChromium, screenProblems } from '../support/portal.js';
import { removeTestDir, startTestDaemon, type ServiceProcess } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-shell-'));
let daemon: ServiceProcess;
let base = '';
let browser: Browser;

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  ({ proc: daemon, api: base } = await startTestDaemon(path.join(dir, 'state')));
  browser = await launchChromium();
});

test.after(async () => {
  await browser?.close();
  await daemon?.kill('SIGTERM');
  removeTestDir(dir);
});

/** node:http, not fetch, which would decompress on its own: these checks need the bytes as sent. */
function get(route: string, headers: Record<string, string> = {}): Promise<{ status: number; header: (name: string) => string | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http.get(base + route, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, header: (name) => res.headers[name] as string | undefined, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

const raw = (encoding: string) => ({ 'accept-encoding': encoding });

test('every page path gets the shell, revalidated, with the strict CSP; the API and assets keep their 404s', async () => {
  for (const route of ['/', '/apps', '/apps/some-app', '/system/audit']) {
    const res = await get(route, raw('identity'));
    assert.is(res.status, 200, route);
    assert.match(res.header('content-type')!, /text\/html/);
    assert.is(res.header('cache-control'), 'no-cache');
    assert.match(res.header('content-security-policy')!, /default-src 'self'/);
    assert.not.match(res.header('content-security-policy')!, /unsafe-inline/);
    assert.match(res.body.toString(), /<script type="module" src="\/assets\/main\.[A-Z0-9]+\.js">/);
  }
  const api = await get('/api/v1/no-such-thing');
  assert.is(api.status, 404);
  assert.match(api.header('content-type')!, /json/);
  assert.is((await get('/assets/main.NOTAHASH.js')).status, 404);
  assert.is((await get('/favicon.ico')).status, 404, 'a file name is never a page path');
});

test('assets are sent brotli, gzip or plain as accepted, cached immutably, and answer 304 to their ETag', async () => {
  const shell = (await get('/', raw('identity'))).body.toString();
  const script = /src="(\/assets\/main\.[A-Z0-9]+\.js)"/.exec(shell)![1]!;
  const plain = await get(script, raw('identity'));
  assert.is(plain.header('content-encoding'), undefined);
  assert.match(plain.header('cache-control')!, /immutable/);
  assert.match(plain.header('content-type')!, /javascript/);
  const br = await get(script, raw('gzip, deflate, br'));
  assert.is(br.header('content-encoding'), 'br');
  assert.ok(brotliDecompressSync(br.body).equals(plain.body));
  assert.ok(br.body.length < plain.body.length / 2, 'brotli at least halves the script');
  const gzip = await get(script, raw('gzip, br;q=0'));
  assert.is(gzip.header('content-encoding'), 'gzip');
  assert.ok(gunzipSync(gzip.body).equals(plain.body));
  assert.is(gzip.header('vary'), 'accept-encoding');
  const etag = plain.header('etag')!;
  const again = await get(script, { 'if-none-match': etag });
  assert.is(again.status, 304);
  assert.is(again.body.length, 0);
  const shellAgain = await get('/', { 'if-none-match': (await get('/')).header('etag')! });
  assert.is(shellAgain.status, 304, 'the shell revalidates cheaply');
});

test(`the first load (main script, its static imports, the style sheet) stays under ${FIRST_LOAD_GZIP_GOAL_BYTES / 1024} KB gzip`, async () => {
  const { firstLoadGzipBytes, assets } = await buildPortal();
  console.log(`portal first load: ${(firstLoadGzipBytes / 1024).toFixed(1)} KB gzip; all ${assets.length} files ${(assets.reduce((n, a) => n + Buffer.from(a.gzip, 'base64').length, 0) / 1024).toFixed(1)} KB gzip`);
  assert.ok(firstLoadGzipBytes > 0);
  assert.ok(firstLoadGzipBytes <= FIRST_LOAD_GZIP_GOAL_BYTES, `${firstLoadGzipBytes} bytes`);
});

test('the screen checker finds sideways scroll and low contrast on a page that has them, and passes the clean shell', async () => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(base + '/');
  await page.getByRole('heading', { level: 1 }).waitFor();
  const clean = await screenProblems(page, 'shell-check-clean');
  assert.equal(clean, { axe: [], overflow: [] });
  await page.evaluate(() => {
    const wide = document.createElement('div');
    wide.id = 'too-wide';
    wide.textContent = 'wide';
    wide.style.width = '2000px';
    const faint = document.createElement('p');
    faint.textContent = 'faint text nobody can read';
    faint.style.color = '#bbbbbb';
    faint.style.background = '#ffffff';
    document.querySelector('main')!.append(wide, faint);
  });
  const broken = await screenProblems(page, 'shell-check-broken');
  assert.ok(broken.overflow.some((line) => line.startsWith('360 px') && line.includes('div#too-wide')), broken.overflow.join('\n'));
  assert.ok(broken.axe.some((line) => line.includes('color-contrast')), broken.axe.join('\n'));
  await page.context().close();
});

test.run();
