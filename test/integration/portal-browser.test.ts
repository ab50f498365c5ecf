// The portal as a person uses it: Debian's Chromium driven by playwright-core through first-boot
// setup, lock, unlock and sign-in, against the real daemon bundle with real gocryptfs volumes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { startTestDaemon, removeTestDir, type ServiceProcess } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-portal-'));
const stateDir = path.join(dir, 'state');
const SCREENSHOTS = process.env.PICCOLO_SCREENSHOTS; // a folder, to look at the pages
const PASSWORD = 'Portal-Test-Pass-9';
let daemon: ServiceProcess;
let browser: Browser;
let page: Page;
let base = '';

async function snap(name: string): Promise<void> {
  if (SCREENSHOTS) await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  ({ proc: daemon, api: base } = await startTestDaemon(stateDir));
  browser = await launchChromium();
  page = await browser.newPage();
  page.on('dialog', (dialog) => void dialog.accept());
});

test.after(async () => {
  await browser?.close();
  await daemon?.kill('SIGTERM');
  removeTestDir(dir);
});

test('first boot: a wrong claim code is refused with a message, the right one shows the recovery key', async () => {
  await page.goto(base + '/');
  await page.getByTestId('wizard-title').waitFor();
  await snap('1-claim');
  await page.getByLabel('Claim code').fill('WRONG-CODE1');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').innerText(), /wrong claim code/);
  const code = readFileSync(path.join(stateDir, 'claim-code'), 'utf8').trim();
  await page.getByLabel('Claim code').fill(code.toLowerCase());
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: 'Save your recovery key' }).waitFor();
  assert.is(await page.locator('#recovery-words li').count(), 24);
  await snap('2-recovery');
});

test('the password step is reachable only after confirming the key; rules update as one types', async () => {
  assert.ok(await page.locator('#recovery-next').isDisabled());
  await page.getByLabel('I have saved my recovery key').check();
  await page.locator('#recovery-next').click();
  await page.getByLabel('Password', { exact: true }).fill('short');
  assert.is(await page.locator('#password-rules li.ok').count(), 0);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Repeat it').fill(PASSWORD);
  assert.is(await page.locator('#password-rules li.ok').count(), 3);
  await snap('3-password');
  await page.getByRole('button', { name: 'Set up this device' }).click();
  await page.getByTestId('home-title').waitFor({ timeout: 20_000 });
  assert.is(await page.locator('#device-state').innerText(), 'Unlocked');
  await snap('4-home');
});

test('lock, then unlock with a wrong and the right password', async () => {
  await page.getByRole('button', { name: 'Lock device' }).click();
  await page.getByRole('heading', { name: 'This device is locked' }).waitFor();
  const unlock = page.locator('[data-view="unlock"]');
  await unlock.getByLabel('Admin password', { exact: true }).fill('Not-The-Password-1');
  await unlock.getByRole('button', { name: 'Unlock' }).click();
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').innerText(), /password/i);
  await snap('5-unlock-error');
  await unlock.getByLabel('Admin password', { exact: true }).fill(PASSWORD);
  await unlock.getByRole('button', { name: 'Unlock' }).click();
  await page.getByTestId('home-title').waitFor({ timeout: 20_000 });
});

test('sign out and back in; the session cookie is HttpOnly', async () => {
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'piccolo_session')!;
  assert.ok(session.httpOnly);
  assert.is(session.sameSite, 'Strict');
  assert.is(await page.evaluate(() => document.cookie), '', 'scripts cannot read it');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  const login = page.locator('[data-view="login"]');
  await login.getByLabel('Admin password', { exact: true }).fill(PASSWORD);
  await login.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('home-title').waitFor({ timeout: 20_000 });
});

test('after sign-in the portal returns to the app that sent the browser (?next=), never to another site', async () => {
  const signInWith = async (next: string) => {
    await page.goto(`${base}/?next=${encodeURIComponent(next)}`);
    await page.locator('[data-view="home"]:not([hidden]), [data-view="login"]:not([hidden])').waitFor();
    const logout = page.getByRole('button', { name: 'Sign out' });
    if (await logout.isVisible()) await logout.click();
    const login = page.locator('[data-view="login"]');
    await login.waitFor();
    await login.getByLabel('Admin password', { exact: true }).fill(PASSWORD);
    await login.getByRole('button', { name: 'Sign in' }).click();
  };
  const appUrl = `${base}/api/v1/version?from=app`;
  await signInWith(appUrl);
  await page.waitForURL(appUrl);
  await signInWith('http://evil.example/steal');
  await page.getByTestId('home-title').waitFor({ timeout: 20_000 });
  assert.match(page.url(), new RegExp(`^${base}/`));
});

test.run();
