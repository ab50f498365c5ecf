// The story a user lives, on the debian-qemu image under QEMU with a software TPM: boot to ready
// and read the claim code off the serial console; set the device up in Chromium through the
// forwarded portal port; install an app that the guest pulls from a registry on the host (QEMU's
// user network shows the host's loopback as 10.0.2.2); open it through the proxy; reboot; the TPM
// unlocks the device by itself and the app comes back with its data. Then no app port listens
// beyond loopback inside the guest (the guest reports its sockets on the serial port:
// piccolo-listen-report.timer, a test aid of the debian-qemu profile, as the registry's
// registries.conf.d entry is).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { findAptMirror } from '../../image/mirror.js';
import { buildImage, defaultBuildOptions, stageByCommand } from '../../image/build.js';
import { bootGuest, chooseAccel, freePort, httpStatus, waitFor, type Guest } from '../../image/qemu.js';
import { ApiSession } from '../support/api-session.js';
import { launchChromium } from '../support/browser.js';
import { rawGet } from '../support/http-get.js';
import { TEST_PASSWORD } from '../support/portal.js';
import { startRegistryService, type RegistryService } from '../support/registry.js';
import { buildScriptImage } from '../support/script-image.js';

const execFileAsync = promisify(execFile);
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Fixed: the image's registries.conf.d names 10.0.2.2:5000 as a plain-HTTP registry. */
const REGISTRY_PORT = 5000;
const GUEST_IMAGE = `10.0.2.2:${REGISTRY_PORT}/piccolo-e2e/notes:1`;
// TCG is slow: key derivation, TPM sealing and an image pull take tens of seconds in the guest.
const READY_TIMEOUT_MS = 10 * 60_000;
const STEP_TIMEOUT_MS = 3 * 60_000;

// The app keeps one token in its encrypted volume, made at its first start: the same token after
// the reboot means the data came back, not a fresh volume.
const NOTES_APP = [
  'name: notes',
  `image: ${GUEST_IMAGE}`,
  'listeners:',
  '  - name: web',
  '    guest_port: 80',
  '    protocol: http',
  '    public: true',
  'storage:',
  '  persistent:',
  '    data:',
  '      container: /data',
].join('\n');

test('first boot: set up in the browser, an app from a registry, a reboot with TPM unlock, the data back, no app port beyond loopback', async () => {
  const build = defaultBuildOptions(REPO_ROOT, stageByCommand(REPO_ROOT), () => findAptMirror());
  const image = await buildImage({ ...build, profile: 'debian-qemu' });
  const accel = await chooseAccel(image.file, build.cacheDir, console.log);
  const registryDir = await mkdtemp(path.join(tmpdir(), 'piccolo-e2e-registry-'));
  let registry: RegistryService | undefined;
  let guest: Guest | undefined;
  const browser = await launchChromium();
  try {
    registry = await startRegistryService({ dir: registryDir, port: REGISTRY_PORT });
    await buildScriptImage('localhost/piccolo-e2e-notes:1', {
      scripts: { '/entry.sh': '[ -f /data/token ] || cat /proc/sys/kernel/random/uuid > /data/token\nexec httpd -f -p 80 -h /data\n' },
      entrypoint: ['/entry.sh'],
    });
    await execFileAsync('podman', ['push', '-q', '--tls-verify=false', 'localhost/piccolo-e2e-notes:1', `127.0.0.1:${REGISTRY_PORT}/piccolo-e2e/notes:1`]);

    const portalPort = await freePort();
    guest = await bootGuest({ image: image.file, accel, portalPort, healthPort: await freePort(), workDir: path.join(build.workDir, 'qemu-first-boot') });
    const g = guest;
    const serial = () => readFile(g.serialLog, 'utf8');
    console.log(`booting ${image.file} under ${accel}; serial log ${g.serialLog}`);

    // 1. Ready, and the claim code on the console.
    await waitFor(async () => (await httpStatus(`${g.healthUrl}/health/ready`))?.status === 200, READY_TIMEOUT_MS, '/health/ready 200', 1000).catch(async (error) => {
      throw new Error(`${error.message}\n--- serial tail ---\n${(await serial()).slice(-3000)}`);
    });
    const bootToReadyS = (Date.now() - g.startedAt) / 1000;
    let claimCode: string | undefined;
    await waitFor(async () => !!(claimCode = /Piccolo OS setup claim code: ([A-Z2-9]{5}-[A-Z2-9]{5})/.exec(await serial())?.[1]), STEP_TIMEOUT_MS, 'the claim code on the serial console', 1000);

    // 2. The wizard, in Chromium, through the forwarded portal port.
    const base = g.portalUrl.replace(/\/$/, '');
    await waitFor(async () => (await httpStatus(g.portalUrl, 10_000))?.status === 200, 60_000, 'the portal through the proxy', 1000);
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    const heading = (name: string) => page.getByRole('heading', { name, level: 1 });
    await page.goto(base + '/');
    await heading('Welcome to Piccolo OS').waitFor();
    await page.getByRole('button', { name: 'Start setup' }).click();
    await page.getByLabel('Claim code', { exact: true }).fill(claimCode!);
    await page.getByRole('button', { name: 'Continue' }).click();
    await heading('Save your recovery key').waitFor();
    assert.is(await page.locator('#recovery-words li').count(), 24, 'the recovery key is 24 words');
    await page.getByLabel('I have saved the recovery key somewhere safe').check();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Admin password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByLabel('Repeat the password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Set up this device' }).click();
    await heading('Remote access (optional)').waitFor();
    await page.getByRole('button', { name: 'Set up later' }).click();
    await heading('Your device is ready').waitFor();
    const setUpAfterS = (Date.now() - g.startedAt) / 1000;

    // 3. An app, pulled by the guest from the host's registry.
    const api = await signIn(base);
    const install = await api.call('POST', '/api/v1/apps', { spec: NOTES_APP });
    assert.is(install.status, 202, `install: ${JSON.stringify(install.body)}`);
    const app = await appRunning(api);
    const firstBootToAppS = (Date.now() - g.startedAt) / 1000;

    // 4. The app through the proxy, by its name on the portal port.
    const host = `web-notes.piccolo.local`;
    const token = await appToken(portalPort, host);
    assert.match(token, /^[0-9a-f-]{36}$/, 'the app serves the token it made in its volume');

    // 5. Reboot: the TPM unlocks the device, the app comes back with the same data.
    await g.reboot();
    await waitFor(async () => (await serial()).split('PICCOLO-REPORT done').length - 1 >= 2, READY_TIMEOUT_MS, 'the second boot report', 2000);
    // Before anyone signs in (a password sign-in would unlock it too): the TPM alone unlocks it.
    let vault: { state?: string; tpm?: boolean } = {};
    await waitFor(async () => (vault = (await new ApiSession(base).call('GET', '/api/v1/setup/status').catch(() => ({ body: {} }))).body)?.state === 'unlocked', STEP_TIMEOUT_MS, 'unlocked by the TPM', 2000).catch((error) => {
      throw new Error(`${error.message}: ${JSON.stringify(vault)}`);
    });
    assert.is(vault.tpm, true, 'the guest has a TPM');
    const afterReboot = await signIn(base);
    const appAgain = await appRunning(afterReboot);
    assert.is(await appToken(portalPort, host), token, 'the same token: the data came back');

    // 6. No app port beyond loopback: a socket report taken after the app runs again.
    const reportsBefore = (await serial()).split('PICCOLO-LISTEN-END').length;
    await waitFor(async () => (await serial()).split('PICCOLO-LISTEN-END').length > reportsBefore, 60_000, 'a listener report after the reboot', 2000);
    const listeners = lastListenerReport(await serial());
    assert.ok(listeners.some((l) => l.port === 80), `the proxy's portal listener is in the report: ${JSON.stringify(listeners)}`);
    const appPorts = new Set((appAgain.services as { hostBindPort: number }[]).map((s) => s.hostBindPort));
    assert.ok(appPorts.size > 0 && (app.services as unknown[]).length === appPorts.size);
    const exposed = listeners.filter((l) => appPorts.has(l.port) && !isLoopback(l.address));
    assert.equal(exposed, [], 'app ports listen on loopback only');

    console.log(`FIGURE first boot: qemu start -> /health/ready 200: ${bootToReadyS.toFixed(1)} s (${accel})`);
    console.log(`FIGURE first boot: qemu start -> set up in the wizard: ${setUpAfterS.toFixed(1)} s`);
    console.log(`FIGURE first boot: qemu start -> app installed and running: ${firstBootToAppS.toFixed(1)} s`);
  } catch (error) {
    // The guest's own account of a unit that restarted (listen-report.sh), for the diagnosis.
    const journal = guest ? (await readFile(guest.serialLog, 'utf8')).split(/\r?\n/).filter((line) => line.includes('PICCOLO-JOURNAL')) : [];
    throw new Error(`${(error as Error).message}${journal.length ? `\n--- guest journal ---\n${journal.slice(-80).join('\n')}` : ''}`);
  } finally {
    await browser.close();
    await guest?.stop();
    await registry?.stop();
    await rm(registryDir, { recursive: true, force: true });
  }
});

/** A session of its own (the browser's stays in the browser); retried while the guest comes up. */
async function signIn(base: string): Promise<ApiSession> {
  const api = new ApiSession(base);
  let last = '';
  await waitFor(async () => {
    const answer = await api.call('POST', '/api/v1/auth/login', { password: TEST_PASSWORD }).catch((error: Error) => ({ status: 0, body: error.message }));
    last = `${answer.status} ${JSON.stringify(answer.body)}`;
    return answer.status === 200;
  }, STEP_TIMEOUT_MS, 'sign-in', 2000).catch((error) => {
    throw new Error(`${error.message}: ${last}`);
  });
  return api;
}

async function appRunning(api: ApiSession): Promise<Record<string, any>> {
  let view: Record<string, any> = {};
  await waitFor(async () => {
    view = (await api.call('GET', '/api/v1/apps/notes')).body;
    return view?.state === 'running';
  }, STEP_TIMEOUT_MS, 'the app running', 2000).catch((error) => {
    throw new Error(`${error.message}: ${JSON.stringify(view).slice(0, 600)}`);
  });
  return view;
}

async function appToken(portalPort: number, host: string): Promise<string> {
  let answer = { status: 0, body: '' };
  await waitFor(async () => (answer = await rawGet(portalPort, { host }, '/token').catch(() => ({ status: 0, body: '' }))).status === 200, 60_000, 'the app through the proxy', 1000).catch((error) => {
    throw new Error(`${error.message}: ${answer.status} ${answer.body.slice(0, 300)}`);
  });
  return answer.body.trim();
}

interface Listener {
  proto: string;
  address: string;
  port: number;
  process: string;
}

function lastListenerReport(serial: string): Listener[] {
  const ends = [...serial.matchAll(/PICCOLO-LISTEN-END (\S+)/g)];
  const run = ends.at(-1)?.[1];
  const listeners: Listener[] = [];
  for (const match of serial.matchAll(/PICCOLO-LISTEN (\S+) (\S+) (\S+):(\d+) ?(.*)/g)) {
    if (match[1] === run) listeners.push({ proto: match[2]!, address: match[3]!, port: Number(match[4]), process: match[5]!.trim() });
  }
  return listeners;
}

function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === '[::1]';
}

test.run();
