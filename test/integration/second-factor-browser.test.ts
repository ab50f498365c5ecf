// Two-factor sign-in in Chromium against the real daemon bundle, at http://localhost:<port> (a
// secure context, so WebAuthn works): System → Security sets up an authenticator app (its code
// made with otpauth from the key the page shows), shows the recovery codes once, and adds a
// passkey held by Chromium's virtual authenticator (DevTools protocol). Then sign-in and unlock
// ask for the second step: a wrong code is refused beside the field, and a passkey, a recovery
// code and an app code each sign in. From an IP address the screen says why passkeys cannot be
// added there. Every screen and state goes through checkScreen.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Secret, TOTP } from 'otpauth';
import type { Browser, Page } from 'playwright-core';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import type { ApiSession } from '../support/api-session.js';
import { checkScreen, launchChromium, setUpDevice, signedInPage, TEST_PASSWORD } from '../support/portal.js';
import { removeTestDir, startTestDaemon, type ServiceProcess } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-second-factor-browser-'));
const stateDir = path.join(dir, 'state');
let daemon: ServiceProcess;
let browser: Browser;
let page: Page;
let api: ApiSession;
let base = '';
let port = 0;
let secret = '';
let recoveryCodes: string[] = [];

const codeIn = (aheadMs: number) => new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: Date.now() + aheadMs });

/** Signs the browser out through the API, as another tab would, and opens the portal again. */
async function signOut(): Promise<void> {
  const { csrfToken } = await (await page.request.get(`${base}/api/v1/auth/session`)).json();
  assert.is((await page.request.post(`${base}/api/v1/auth/logout`, { headers: { 'x-csrf-token': csrfToken } })).status(), 204);
}

/** The password step of /login (or /unlock); the second step takes its place. */
async function passwordStep(path: '/login' | '/unlock', button: 'Sign in' | 'Unlock'): Promise<void> {
  await page.goto(base + path);
  await page.getByLabel('Admin password').fill(TEST_PASSWORD);
  await page.getByRole('button', { name: button }).click();
  await page.getByText(/Enter the 6-digit code|Enter one of the recovery codes/).waitFor();
}

async function atDashboard(): Promise<void> {
  await page.waitForURL(`${base}/`);
  const session = await (await page.request.get(`${base}/api/v1/auth/session`)).json();
  assert.is(session.authenticated, true);
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  let url: string;
  ({ proc: daemon, api: url } = await startTestDaemon(stateDir));
  port = Number(url.split(':').pop());
  base = `http://localhost:${port}`;
  api = await setUpDevice(base, stateDir);
  browser = await launchChromium();
  page = await signedInPage(browser, base, api);
  // A platform authenticator with user verification, as a phone or a laptop with a fingerprint has.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  });
});

test.after(async () => {
  await browser?.close();
  await daemon?.kill();
  removeTestDir(dir);
});

test('security screen: nothing enrolled; from an IP address it says why passkeys cannot be added', async () => {
  await page.goto(`${base}/system/security`);
  await page.getByRole('heading', { name: 'Two-factor sign-in', level: 1 }).waitFor();
  await page.getByText('Sign-in asks only for the password').waitFor();
  assert.ok(await page.getByRole('button', { name: 'Add a passkey' }).isVisible());
  await checkScreen(page, 'security-off');

  const byIp = await signedInPage(browser, `http://127.0.0.1:${port}`, api);
  await byIp.goto(`http://127.0.0.1:${port}/system/security`);
  await byIp.getByText('Passkeys cannot be added from this address').waitFor();
  assert.match(await byIp.locator('#passkeys').innerText(), /not by an IP address/);
  assert.not.ok(await byIp.getByRole('button', { name: 'Add a passkey' }).count());
  await checkScreen(byIp, 'security-passkeys-ip-address');
  await byIp.context().close();
});

test('authenticator app: the password, the QR code, a wrong code, then the right one and the recovery codes', async () => {
  await page.getByLabel('Admin password').fill('Not-The-Password-1');
  await page.getByRole('button', { name: 'Set up the authenticator app' }).click();
  await page.locator('#totp .field-error').waitFor();
  assert.match(await page.locator('#totp .field-error').innerText(), /password is not right/);
  assert.ok(await page.getByRole('heading', { name: 'Two-factor sign-in' }).isVisible(), 'a wrong password does not sign the page out');
  await page.getByLabel('Admin password').fill(TEST_PASSWORD);
  await page.getByRole('button', { name: 'Set up the authenticator app' }).click();
  await page.getByRole('img', { name: 'QR code for the authenticator app' }).waitFor();
  secret = (await page.getByTestId('totp-secret').innerText()).replace(/\s/g, '');
  assert.match(secret, /^[A-Z2-7]{32}$/);
  await checkScreen(page, 'security-totp-setup');

  await page.getByLabel('Code from the app').fill(codeIn(0) === '000000' ? '111111' : '000000');
  await page.getByRole('button', { name: 'Turn on' }).click();
  await page.locator('#totp .field-error').waitFor();
  assert.match(await page.locator('#totp .field-error').innerText(), /not right/);
  await page.getByLabel('Code from the app').fill(codeIn(0));
  await page.getByRole('button', { name: 'Turn on' }).click();
  const list = page.getByRole('list', { name: 'Recovery codes' });
  await list.waitFor();
  recoveryCodes = (await list.getByRole('listitem').allInnerTexts()).map((t) => t.trim());
  assert.is(recoveryCodes.length, 10);
  assert.ok(await page.locator('#totp').getByText('On', { exact: true }).isVisible());
  await checkScreen(page, 'security-recovery-codes');
  await page.getByRole('button', { name: 'I saved them' }).click();
  assert.is(await list.count(), 0, 'shown once');
  assert.match(await page.locator('#recovery-codes').innerText(), /10 of 10 unused/);
});

test('passkey: added with the virtual authenticator, listed with its host name', async () => {
  await page.getByLabel('Name of the new passkey').fill('This browser');
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  const item = page.locator('#passkeys li', { hasText: 'This browser' });
  await item.waitFor();
  assert.match(await item.innerText(), /Works at localhost/);
  assert.match(await item.innerText(), /not used yet/);
  await checkScreen(page, 'security-on');
});

test('sign-in asks for the second step: a wrong code is refused, a passkey signs in', async () => {
  await signOut();
  await passwordStep('/login', 'Sign in');
  assert.ok(await page.getByLabel('Authentication code').isVisible());
  await checkScreen(page, 'login-second-factor');
  await page.getByLabel('Authentication code').fill('123456' === codeIn(0) ? '654321' : '123456');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('.field-error').waitFor();
  assert.match(await page.locator('.field-error').innerText(), /wrong or already used/i);
  assert.match(await page.locator('.field-error').innerText(), /^Wrong/, 'a sentence beside the field');
  await checkScreen(page, 'login-second-factor-wrong-code');
  // Three free failures, the fourth starts the wait: the next try shows the countdown.
  for (let i = 0; i < 4; i++) {
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign in' }).and(page.locator(':not([aria-busy])')).waitFor();
  }
  await page.getByTestId('countdown').waitFor();
  assert.ok(await page.getByRole('button', { name: 'Sign in' }).isDisabled(), 'no try while the wait runs');
  await checkScreen(page, 'login-second-factor-throttled');
  await page.getByText('You can try again now.').waitFor({ timeout: 10_000 });
  await page.getByRole('button', { name: 'Use a passkey' }).click();
  await atDashboard();
});

test('sign-in with a recovery code, then with the app code', async () => {
  await signOut();
  await passwordStep('/login', 'Sign in');
  await page.getByRole('button', { name: 'Use a recovery code' }).click();
  await page.getByLabel('Recovery code').fill(recoveryCodes[0]!.toLowerCase());
  await checkScreen(page, 'login-recovery-code');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await atDashboard();

  await signOut();
  await passwordStep('/login', 'Sign in');
  // One step after the code that turned the app on (the daemon accepts one step either side).
  await page.getByLabel('Authentication code').fill(codeIn(30_000));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await atDashboard();
});

test('unlock: the password opens the device, the passkey signs in', async () => {
  const { csrfToken } = await (await page.request.get(`${base}/api/v1/auth/session`)).json();
  assert.is((await page.request.post(`${base}/api/v1/crypto/lock`, { headers: { 'x-csrf-token': csrfToken }, data: { confirm: true } })).status(), 200);
  await passwordStep('/unlock', 'Unlock');
  await checkScreen(page, 'unlock-second-factor');
  await page.getByRole('button', { name: 'Use a passkey' }).click();
  await atDashboard();
  const state = await (await page.request.get(`${base}/api/v1/setup/status`)).json();
  assert.is(state.state, 'unlocked');
});

test('remove the passkey and turn the app off, each with the password', async () => {
  await page.goto(`${base}/system/security`);
  const item = page.locator('#passkeys li', { hasText: 'This browser' });
  assert.match(await item.innerText(), /last used/);
  await page.getByRole('button', { name: 'Remove This browser' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await checkScreen(page, 'security-remove-passkey');
  await dialog.getByLabel('Admin password').fill('Not-The-Password-1');
  await dialog.getByRole('button', { name: 'Remove' }).click();
  await dialog.locator('.field-error').waitFor();
  await dialog.getByLabel('Admin password').fill(TEST_PASSWORD);
  await dialog.getByRole('button', { name: 'Remove' }).click();
  await page.getByText('No passkey yet.').waitFor();

  await page.getByRole('button', { name: 'Turn off the authenticator app' }).click();
  await dialog.getByLabel('Admin password').fill(TEST_PASSWORD);
  await dialog.getByRole('button', { name: 'Turn off' }).click();
  await page.getByText('Sign-in asks only for the password').waitFor();
  assert.is(await page.locator('#recovery-codes').count(), 0, 'no factor, no recovery codes');
});

test.run();
