// The web terminal in the portal, as a person uses it: Debian's Chromium (playwright-core) on the
// portal through the real proxy, the real daemon and Podman with a busybox app. The app page loads
// xterm.js only when the terminal is opened (its own chunk); a typed command's output shows in the
// terminal; xterm's styles apply under the strict CSP without a single refused inline style;
// closing and reconnecting work; Escape then Tab leaves the terminal. checkScreen on each state.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import type { ApiSession } from '../support/api-session.js';
import { checkScreen, launchChromium, signedInPage, startDeviceBehindProxy } from '../support/portal.js';
import { removeTestDir, waitFor, type ServiceProcess } from '../support/processes.js';
import { startPodman, type TestPodman } from '../support/podman.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-portal-terminal-'));
const stateDir = path.join(dir, 'state');
let podman: TestPodman;
let daemon: ServiceProcess;
let proxy: ServiceProcess;
let api: ApiSession;
let browser: Browser;
let page: Page;
let portal = '';
let app = '';
/** Console lines of the page: a refused inline style would show here. */
const consoleLines: string[] = [];
/** Script files the page loaded, in order. */
const scripts: string[] = [];

const screenText = () => page.locator('.terminal-screen .xterm-rows').innerText();

test.before(async () => {
  try {
    await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
    podman = await startPodman();
    app = `${podman.prefix}shell`;
    const image = await podman.buildHttpdImage('shell', '<h1>terminal test</h1>');
    ({ daemon, proxy, portal, api } = await startDeviceBehindProxy(dir, stateDir, podman.socketPath));
    const install = await api.call('POST', '/api/v1/apps', { spec: `name: ${app}\nimage: ${image}\nlisteners:\n  - name: web\n    guest_port: 80\n    protocol: http\n` });
    assert.is(install.status, 202, JSON.stringify(install.body));
    await waitFor(async () => ((await api.call('GET', `/api/v1/apps/${app}`)).body.state === 'running' ? true : undefined), 60_000, 'app running');
    browser = await launchChromium();
    page = await signedInPage(browser, portal, api);
    page.on('console', (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
    page.on('request', (request) => request.resourceType() === 'script' && scripts.push(new URL(request.url()).pathname));
  } catch (err) {
    // uvu 0.5 drops an error thrown in a before hook without a word.
    console.error('setup failed:', err);
    throw err;
  }
});

test.after(async () => {
  await browser?.close();
  await proxy?.kill('SIGTERM');
  await daemon?.kill('SIGTERM');
  await podman?.stop();
  removeTestDir(dir);
});

test('the app page offers the terminal without loading xterm.js', async () => {
  await page.goto(`${portal}/apps/${app}`);
  const open = page.getByRole('button', { name: 'Open terminal' });
  await open.waitFor({ timeout: 30_000 });
  assert.ok(await open.isEnabled());
  assert.not.ok(scripts.some((script) => script.includes('TerminalView')), `no terminal chunk yet: ${scripts.join(', ')}`);
  await page.locator('#terminal').scrollIntoViewIfNeeded();
  await checkScreen(page, 'apps-terminal-closed');
});

test('open the terminal, type a command, see its output', async () => {
  await page.getByRole('button', { name: 'Open terminal' }).click();
  await page.getByText(`Connected: /bin/sh in ${app}.`).waitFor({ timeout: 20_000 });
  assert.ok(scripts.some((script) => /\/assets\/TerminalView\.[A-Z0-9]+\.js$/.test(script)), `the terminal chunk loads on open: ${scripts.join(', ')}`);
  await waitFor(async () => ((await screenText()).includes('/ #') ? true : undefined), 10_000, 'the prompt');
  // The terminal has the focus once connected: typing goes to the shell.
  const n = Math.floor(Math.random() * 1e6);
  await page.keyboard.type(`echo portal-$((${n}+1))`);
  await page.keyboard.press('Enter');
  await waitFor(async () => ((await screenText()).split('\n').some((line) => line.trim() === `portal-${n + 1}`) ? true : undefined), 10_000, 'the command output');
  await checkScreen(page, 'apps-terminal-open');
});

test('xterm.js styles apply under the CSP: its sheet and its theme, no inline style refused', async () => {
  const applied = await page.evaluate(() => {
    const textarea = document.querySelector('.xterm-helper-textarea')!;
    const rows = document.querySelector('.xterm-rows')!;
    return {
      // From xterm.css (the static sheet): the input textarea is moved off screen.
      textareaPosition: getComputedStyle(textarea).position,
      // From the theme xterm writes at run time: rows keep their spaces.
      rowsWhiteSpace: getComputedStyle(rows).whiteSpace,
      styleElements: document.querySelectorAll('.xterm style').length,
      adopted: document.adoptedStyleSheets.length,
    };
  });
  assert.is(applied.textareaPosition, 'absolute');
  assert.is(applied.rowsWhiteSpace, 'pre');
  assert.is(applied.styleElements, 0, 'xterm made no <style> element');
  assert.ok(applied.adopted >= 3, `constructable sheets: ${applied.adopted}`);
  const refused = consoleLines.filter((line) => /Content Security Policy|Refused to/i.test(line));
  assert.equal(refused, [], 'the CSP refused nothing');
  const csp = (await page.context().request.get(`${portal}/apps/${app}`)).headers()['content-security-policy'];
  assert.match(csp!, /default-src 'self'/);
  assert.not.match(csp!, /unsafe-inline/);
});

test('Escape then Tab leaves the terminal; Tab alone goes to the shell', async () => {
  const focusedInTerminal = () => page.evaluate(() => document.activeElement?.classList.contains('xterm-helper-textarea') ?? false);
  await page.keyboard.press('Tab');
  assert.ok(await focusedInTerminal(), 'Tab stays in the terminal (completion in the shell)');
  await page.keyboard.press('Escape');
  await page.keyboard.press('Tab');
  assert.not.ok(await focusedInTerminal(), 'Escape, Tab moved the focus on');
});

test('the shell exits: the terminal says so and offers to reconnect; close hides it', async () => {
  await page.locator('.terminal-screen .xterm').click();
  // The previous test moved the focus out: type only once the click has given it back.
  await page.waitForFunction(() => document.activeElement?.classList.contains('xterm-helper-textarea') ?? false);
  await page.keyboard.type('exit 4');
  await page.keyboard.press('Enter');
  await page.getByText('The terminal closed: the shell exited (code 4).').waitFor({ timeout: 10_000 });
  await checkScreen(page, 'apps-terminal-exited');
  await page.getByRole('button', { name: 'Reconnect' }).click();
  await page.getByText(`Connected: /bin/sh in ${app}.`).waitFor({ timeout: 20_000 });
  await page.getByRole('button', { name: 'Close terminal' }).click();
  await page.getByRole('button', { name: 'Open terminal' }).waitFor();
  assert.is(await page.locator('.xterm').count(), 0);
});

test.run();
