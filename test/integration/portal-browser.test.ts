// The portal's first screens as a person uses them: Debian's Chromium driven by playwright-core
// through the setup wizard, sign-out and sign-in, a wrong password until the throttle makes it
// wait, lock and unlock, a daemon restart without a TPM, the password reset with the recovery key,
// ?next=, and the storage fault screen, against the real daemon bundle with real gocryptfs volumes.
// Every screen and state goes through checkScreen (axe, sideways scroll, screenshots).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { freePort } from '../../image/qemu.js';
import { checkScreen, launchChromium, TEST_PASSWORD } from '../support/portal.js';
import { removeTestDir, startTestDaemon, waitFor, type ServiceProcess } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-portal-'));
const stateDir = path.join(dir, 'state');
const NEW_PASSWORD = 'Reset-By-Recovery-7';
let port = 0;
let daemon: ServiceProcess | undefined;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let base = '';
let recoveryKey = '';
const problems: string[] = [];
/**
 * While the daemon restarts, and until the page's events socket has retried (its backoff reaches
 * 15 s), that socket may fail: its retries come back to a daemon that no longer knows the session.
 */
let restarting = false;
let restartedAt = -Infinity;

async function startDaemon(): Promise<void> {
  ({ proc: daemon, api: base } = await startTestDaemon(stateDir, { PICCOLO_DAEMON_LISTEN: `127.0.0.1:${port}` }));
  if (restarting) restartedAt = Date.now();
  restarting = false;
}

async function stopDaemon(): Promise<void> {
  restarting = true;
  await daemon?.kill('SIGTERM');
  daemon = undefined;
}

const heading = (name: string | RegExp) => page.getByRole('heading', { level: 1, name });
const header = () => page.locator('header.topbar');
const progress = () => page.evaluate(() => sessionStorage.getItem('piccolo.setup'));

async function signOut(): Promise<void> {
  const menu = page.getByRole('button', { name: 'Menu' });
  if (await menu.isVisible()) await menu.click();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await heading('Sign in').waitFor();
}

async function signIn(password = TEST_PASSWORD): Promise<void> {
  await page.getByLabel('Admin password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** The vault as the daemon reports it (no session needed). */
async function vaultState(): Promise<string> {
  return page.evaluate(async () => (await (await fetch('/api/v1/setup/status')).json()).state);
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  port = await freePort();
  await startDaemon();
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  page = await context.newPage();
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  // Expected here: failed API calls (401, 429...), which Chromium logs as "Failed to load resource",
  // and, only around a daemon restart, the events socket's retries: answered 503 while it is
  // stopping, reset if the connection was still in the listen queue when the listener closed,
  // refused while it is down, 401 once it is back without the sessions it had.
  const inRestart = () => restarting || Date.now() - restartedAt < 20_000;
  const expected = (text: string) =>
    text.startsWith('Failed to load resource') ||
    (inRestart() &&
      /^WebSocket connection to '[^']*\/api\/v1\/events' failed: .*(net::ERR_CONNECTION_REFUSED|net::ERR_CONNECTION_RESET|Unexpected response code: 503|HTTP Authentication failed; no valid credentials available)$/.test(text));
  page.on('console', (msg) => msg.type() === 'error' && !expected(msg.text()) && problems.push(`console: ${msg.text()}`));
});

test.after(async () => {
  await browser?.close();
  await stopDaemon();
  removeTestDir(dir);
});

test('wizard step 1: the welcome says where the claim code is; the header shows the step, not a state', async () => {
  await page.goto(base + '/');
  await heading('Welcome to Piccolo OS').waitFor();
  assert.is(new URL(page.url()).pathname, '/setup');
  assert.match(await page.locator('main').innerText(), /serial console[\s\S]*QEMU[\s\S]*serial log/);
  await header().getByText('Step 1 of 6', { exact: true }).waitFor();
  assert.is(await header().innerText(), 'Piccolo OS\nStep 1 of 6', 'a step, no state such as "Not set up"');
  await checkScreen(page, 'wizard-1-welcome');
  await page.getByRole('button', { name: 'Start setup' }).click();
  await heading('Enter the claim code').waitFor();
  await header().getByText('Step 2 of 6', { exact: true }).waitFor();
  await checkScreen(page, 'wizard-2-claim');
});

test('wizard step 2: an empty and a wrong claim code are named beside the field', async () => {
  const field = page.getByLabel('Claim code', { exact: true });
  await page.getByRole('button', { name: 'Continue' }).click();
  assert.is(await field.getAttribute('aria-invalid'), 'true');
  assert.match(await page.locator('.field-error').innerText(), /Enter the claim code/);
  await field.fill('WRONG-CODE1');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByText("That is not this device's claim code").waitFor();
  // Beside the field: it is the field's description, and the field has the focus back.
  const described = await field.getAttribute('aria-describedby');
  assert.match(await page.locator(`[id="${described!.split(' ').pop()}"]`).innerText(), /not this device's claim code/);
  assert.ok(await field.evaluate((el) => el === document.activeElement));
  await checkScreen(page, 'wizard-2-claim-error');
  await field.fill('');
  assert.is(await page.locator('.field-error').count(), 0, 'typing clears the stale error');
});

test('wizard step 3: the right code shows 24 words, kept across a reload; Continue needs "I saved it"', async () => {
  const code = readFileSync(path.join(stateDir, 'claim-code'), 'utf8').trim();
  await page.getByLabel('Claim code', { exact: true }).fill(`${code.slice(0, 5).toLowerCase()} - ${code.slice(5)}`);
  await page.getByRole('button', { name: 'Continue' }).click();
  await heading('Save your recovery key').waitFor();
  const words = await page.locator('#recovery-words li').allInnerTexts();
  assert.is(words.length, 24);
  recoveryKey = words.join(' ');
  await header().getByText('Step 3 of 6', { exact: true }).waitFor();

  await page.reload();
  await heading('Save your recovery key').waitFor();
  assert.equal(await page.locator('#recovery-words li').allInnerTexts(), words, 'the same key after a reload');

  await page.getByRole('button', { name: 'Copy the words' }).click();
  await page.getByText('Copied.').waitFor();
  assert.is(await page.evaluate(() => navigator.clipboard.readText()), recoveryKey);
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download as a file' }).click()]);
  assert.is(download.suggestedFilename(), 'piccolo-recovery-key.txt');
  const file = readFileSync((await download.path())!, 'utf8');
  assert.ok(words.every((word, i) => file.includes(`${i + 1}. ${word}\n`)), file);

  const next = page.getByRole('button', { name: 'Continue' });
  assert.ok(await next.isDisabled());
  await checkScreen(page, 'wizard-3-recovery');
  await page.getByLabel('I have saved the recovery key somewhere safe').check();
  assert.ok(await next.isEnabled());
  await next.click();
  await heading('Choose the admin password').waitFor();
});

test('wizard step 4: the rules turn green as one types, the button waits for all of them and a match', async () => {
  await header().getByText('Step 4 of 6', { exact: true }).waitFor();
  const submit = page.getByRole('button', { name: 'Set up this device' });
  const password = page.getByLabel('Admin password', { exact: true });
  const repeat = page.getByLabel('Repeat the password');
  const met = () => page.locator('#password-rules li.ok').allTextContents();
  assert.ok(await submit.isDisabled());
  await password.fill('short');
  assert.equal(await met(), ['No common word such as "password" or "admin" (met)', 'Not one character repeated (met)']);
  await password.fill('shortpassword');
  assert.equal(await met(), ['At least 12 characters (met)', 'Not one character repeated (met)'], 'long enough now, but lower case only and a common word');
  await password.fill(TEST_PASSWORD);
  assert.is((await met()).length, 4);
  assert.ok(await submit.isDisabled(), 'the repeat is still empty');
  await repeat.fill(TEST_PASSWORD + 'x');
  await page.getByText('The two passwords are not the same yet.').waitFor();
  assert.ok(await submit.isDisabled());
  await repeat.fill(TEST_PASSWORD);
  assert.ok(await submit.isEnabled());
  assert.is(await page.getByText(/too weak/).count(), 0, 'no stale "too weak" once the rules pass');
  await checkScreen(page, 'wizard-4-password');

  await page.reload();
  await heading('Choose the admin password').waitFor();
  assert.ok(JSON.parse((await progress())!).setupToken, 'the token survives the reload');
});

/** Claims again after the setup session ended: a new recovery key, then on to the password. */
async function claimAgain(): Promise<void> {
  await heading('Enter the claim code').waitFor();
  assert.match(await page.getByRole('status').filter({ hasText: 'setup session ended' }).innerText(), /lasts 30 minutes[\s\S]*new recovery key/);
  await page.getByLabel('Claim code', { exact: true }).fill(readFileSync(path.join(stateDir, 'claim-code'), 'utf8').trim());
  await page.getByRole('button', { name: 'Continue' }).click();
  await heading('Save your recovery key').waitFor();
  const words = (await page.locator('#recovery-words li').allInnerTexts()).join(' ');
  assert.is.not(words, recoveryKey, 'a new claim, a new key');
  recoveryKey = words;
  await page.getByLabel('I have saved the recovery key somewhere safe').check();
  await page.getByRole('button', { name: 'Continue' }).click();
  await heading('Choose the admin password').waitFor();
}

test('wizard: an ended setup session (daemon restart, or 30 minutes gone) goes back to the claim code and says why', async () => {
  await stopDaemon();
  await startDaemon();
  await page.getByLabel('Admin password', { exact: true }).fill(TEST_PASSWORD);
  await page.getByLabel('Repeat the password').fill(TEST_PASSWORD);
  await page.getByRole('button', { name: 'Set up this device' }).click();
  await heading('Enter the claim code').waitFor();
  await checkScreen(page, 'wizard-2-claim-expired');
  await claimAgain();
  // The browser knows when the token runs out: a reload after that time does not even try it.
  await page.evaluate(() => {
    const saved = JSON.parse(sessionStorage.getItem('piccolo.setup')!);
    sessionStorage.setItem('piccolo.setup', JSON.stringify({ ...saved, expiresAt: Date.now() - 1000 }));
  });
  await page.reload();
  await claimAgain();
});

test('wizard step 4, submitted: the device is set up and the browser signed in', async () => {
  await page.getByLabel('Admin password', { exact: true }).fill(TEST_PASSWORD);
  await page.getByLabel('Repeat the password').fill(TEST_PASSWORD);
  await page.getByRole('button', { name: 'Set up this device' }).click();
  await heading('Remote access (optional)').waitFor({ timeout: 30_000 });
  assert.equal(JSON.parse((await progress())!), { step: 'remote' }, 'once set up, only the step is kept');
  assert.is(await vaultState(), 'unlocked');
});

test('wizard step 5: remote access explains itself, names a bad field, survives a reload and can wait', async () => {
  await header().getByText('Step 5 of 6', { exact: true }).waitFor();
  assert.match(await page.locator('main').innerText(), /set it up later/);
  await page.getByLabel('Relay URL').fill('https://relay.example.com/connect');
  await page.getByLabel('Device secret').fill('a-device-secret-of-some-length');
  await page.getByLabel('Portal hostname').fill('portal.example.com');
  await page.getByLabel('App domain').fill('apps.example.com');
  await page.getByRole('button', { name: 'Save' }).click();
  const relay = page.getByLabel('Relay URL');
  await waitFor(async () => ((await relay.getAttribute('aria-invalid')) === 'true' ? true : undefined), 10_000, 'relay URL error');
  const described = (await relay.getAttribute('aria-describedby'))!.split(' ').pop();
  assert.match(await page.locator(`[id="${described}"]`).innerText(), /Must start with wss:\/\//);
  await checkScreen(page, 'wizard-5-remote');

  await page.reload();
  await heading('Remote access (optional)').waitFor();
  await page.getByRole('button', { name: 'Set up later' }).click();
  await heading('Your device is ready').waitFor();
  await header().getByText('Step 6 of 6', { exact: true }).waitFor();
  await page.getByText('Remote access is off').waitFor();
  await checkScreen(page, 'wizard-7-done');
  await page.getByRole('button', { name: 'Go to the dashboard' }).click();
  await waitFor(async () => (new URL(page.url()).pathname === '/' ? true : undefined), 5000, 'dashboard');
  assert.is(await progress(), null, 'the wizard forgot its progress');
  await page.goto(base + '/setup');
  await waitFor(async () => (new URL(page.url()).pathname === '/' ? true : undefined), 5000, '/setup is over');
});

test('sign out, then sign in; the header never states the device state', async () => {
  await signOut();
  assert.is(await header().innerText(), 'Piccolo OS');
  await checkScreen(page, 'login');
  await signIn('Not-The-Password-1');
  await page.getByText('The password is not correct').waitFor();
  await checkScreen(page, 'login-error');
  // From the keyboard: Enter in the field submits.
  await page.getByLabel('Admin password', { exact: true }).fill(TEST_PASSWORD);
  await page.getByLabel('Admin password', { exact: true }).press('Enter');
  await waitFor(async () => (new URL(page.url()).pathname === '/' ? true : undefined), 10_000, 'signed in');
});

test('locked from elsewhere, the open page turns into the unlock screen and says why', async () => {
  await page.evaluate(async () => {
    const { csrfToken } = await (await fetch('/api/v1/auth/session')).json();
    const res = await fetch('/api/v1/crypto/lock', { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': csrfToken }, body: '{"confirm":true}' });
    if (!res.ok) throw new Error(`lock: ${res.status}`);
  });
  await heading('This device is locked').waitFor({ timeout: 10_000 });
  assert.is(new URL(page.url()).pathname, '/unlock');
  assert.match(await page.getByTestId('locked-reason').innerText(), /no security chip \(TPM\)[\s\S]*locked it from this portal/);
  assert.is(await header().innerText(), 'Piccolo OS');
  await checkScreen(page, 'unlock');
});

test('wrong passwords: a message beside the field, then the throttle counts down with the button disabled', async () => {
  const button = page.getByRole('button', { name: 'Unlock' });
  const countdown = page.getByTestId('countdown');
  await page.getByLabel('Admin password', { exact: true }).fill('Not-The-Password-1');
  await button.click();
  await page.getByText('The password is not correct').waitFor();
  await checkScreen(page, 'unlock-error');
  // 3 free failures, then waits of 1, 2, 4, 8 s: keep failing until a wait long enough to watch.
  let seconds = 0;
  for (let i = 0; i < 14 && seconds < 8; i++) {
    const [reply] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/api/v1/crypto/unlock')), button.click()]);
    if (reply.status() === 401) {
      await page.getByText('The password is not correct').waitFor();
      continue;
    }
    assert.is(reply.status(), 429);
    const text = await waitFor(async () => ((await countdown.count()) && /^Try again/.test(await countdown.innerText()) ? countdown.innerText() : undefined), 5000, 'the countdown');
    seconds = Number(/^Try again in (\d+) s\.$/.exec(text)?.[1] ?? 0);
    assert.ok(seconds > 0, text);
    assert.ok(await button.isDisabled(), 'disabled while it counts down');
    if (seconds < 8) await waitFor(async () => ((await button.isEnabled()) ? true : undefined), 10_000, 'the wait ends');
  }
  assert.ok(seconds >= 8, 'the wait doubled up to 8 s');
  assert.ok(await button.isDisabled(), 'disabled while it counts down');
  assert.match(await page.getByRole('alert').innerText(), /Too many failed attempts\. Try again in \d s\./);
  await checkScreen(page, 'unlock-throttled');
  const later = await waitFor(async () => {
    const now = Number(/(\d+) s/.exec(await countdown.innerText())?.[1] ?? 99);
    return now < seconds - 1 ? now : undefined;
  }, 5000, 'counting down');
  assert.ok(later < seconds);
  await waitFor(async () => ((await countdown.innerText()) === 'You can try again now.' ? true : undefined), 12_000, 'the end of the wait');
  assert.ok(await button.isEnabled(), 'the button is back');
  await page.getByLabel('Admin password', { exact: true }).fill(TEST_PASSWORD);
  await button.click();
  await waitFor(async () => (new URL(page.url()).pathname === '/' ? true : undefined), 20_000, 'unlocked');
  assert.is(await vaultState(), 'unlocked');
});

test('the unlock screen after a restart without the TPM', async () => {
  await stopDaemon();
  await startDaemon();
  await page.reload();
  await heading('This device is locked').waitFor({ timeout: 10_000 });
  assert.match(await page.getByTestId('locked-reason').innerText(), /starts locked after every restart/);
  await checkScreen(page, 'unlock-after-restart');
  await page.getByLabel('Admin password', { exact: true }).fill(TEST_PASSWORD);
  await page.getByRole('button', { name: 'Unlock' }).click();
  await waitFor(async () => (new URL(page.url()).pathname === '/' ? true : undefined), 20_000, 'unlocked');
  assert.is(await vaultState(), 'unlocked');
});

test('reset with the recovery key, pasted in capitals, numbered and over several lines', async () => {
  await signOut();
  await page.getByRole('link', { name: 'Forgot the password? Use the recovery key' }).click();
  await heading('Reset the admin password').waitFor();
  assert.match(await page.locator('main').innerText(), /removes two-factor sign-in/);
  await checkScreen(page, 'reset');
  const key = page.getByLabel('Recovery key', { exact: true });
  const submit = page.getByRole('button', { name: 'Reset the password' });
  const words = recoveryKey.split(' ');
  await key.fill(words.slice(0, 23).join(' ') + ' zzzz');
  await page.getByLabel('New admin password', { exact: true }).fill(NEW_PASSWORD);
  await page.getByLabel('Repeat the password').fill(NEW_PASSWORD);
  await page.getByText('24 of 24 words so far').waitFor();
  await submit.click();
  await page.getByText(/word 24 "zzzz" is not in the BIP39/i).waitFor();
  assert.is(await key.getAttribute('aria-invalid'), 'true');
  await checkScreen(page, 'reset-error');
  const messy = words.map((w, i) => `${i + 1}. ${w.toUpperCase()}${i % 6 === 5 ? '\n' : '  '}`).join('');
  await key.fill(messy);
  assert.ok(await submit.isEnabled());
  await submit.click();
  await waitFor(async () => (new URL(page.url()).pathname === '/' ? true : undefined), 20_000, 'signed in after the reset');
  await signOut();
  await signIn(NEW_PASSWORD);
  await waitFor(async () => (new URL(page.url()).pathname === '/' ? true : undefined), 10_000, 'the new password works');
});

test('after sign-in the portal goes to ?next= on this device, never to another site', async () => {
  const appUrl = `${base}/api/v1/version?from=app`;
  await signOut();
  await page.goto(`${base}/?next=${encodeURIComponent(appUrl)}`);
  await heading('Sign in').waitFor();
  assert.match(await page.locator('main').innerText(), new RegExp(`continue to 127\\.0\\.0\\.1:${port}`));
  await signIn(NEW_PASSWORD);
  await page.waitForURL(appUrl);
  await page.goto(base + '/');
  await signOut();
  await page.goto(`${base}/login?next=${encodeURIComponent('http://evil.example/steal')}`);
  await heading('Sign in').waitFor();
  assert.not.match(await page.locator('main').innerText(), /evil/);
  await signIn(NEW_PASSWORD);
  await waitFor(async () => (new URL(page.url()).pathname === '/' ? true : undefined), 10_000, 'stayed on the device');
  assert.match(page.url(), new RegExp(`^${base}/`));
});

test('a storage fault (an unreadable key file) shows its reason and what to do', async () => {
  await stopDaemon();
  writeFileSync(path.join(stateDir, 'keyring.json'), '{ not json');
  await startDaemon();
  await page.goto(base + '/');
  await heading("The device's storage has a problem").waitFor({ timeout: 10_000 });
  assert.is(new URL(page.url()).pathname, '/fault');
  assert.match(await page.getByTestId('fault-reason').innerText(), /^broken key file/);
  assert.match(await page.locator('main').innerText(), /Restart the device/);
  await checkScreen(page, 'fault');
  await page.getByRole('button', { name: 'Check again' }).click();
  await heading("The device's storage has a problem").waitFor();
});

test('no page errors, console errors or CSP violations on the way', () => {
  assert.equal(problems, []);
});

test.run();
