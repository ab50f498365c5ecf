// Backup and restore end to end: real daemon bundles, real Podman, gocryptfs volumes. Device A
// installs an app that writes into its volume, is backed up over the API (the app stopped for the
// copy, then running again), and loses the app. Device B, fresh, refuses a tampered, a truncated
// and a foreign-key archive, staying fresh each time, then restores the real one: the app comes
// back from the restored control store, running, serving the data it wrote on A.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { WebSocket } from 'ws';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { generateRecoveryPhrase } from '../../services/daemon/crypto/keyring.js';
import { LABELS } from '../../services/daemon/apps/container-spec.js';
import { ApiSession } from '../support/api-session.js';
import { jobDone } from '../support/jobs.js';
import { mountsUnder, removeTestDir, startTestDaemon, waitFor, type ServiceProcess } from '../support/processes.js';
import { startPodman, type TestPodman } from '../support/podman.js';

const execFileAsync = promisify(execFile);
const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-backup-'));
const stateA = path.join(dir, 'state-a');
const stateB = path.join(dir, 'state-b');
const archiveFile = path.join(dir, 'device.piccolo-backup');
const PASSWORD_A = 'Backup-Test-Pass-41';
const PASSWORD_B = 'Restored-Pass-Word-77';
const NOTE = `written on device A at ${new Date().toISOString()}`;
// PICCOLO_BACKUP_TEST_MB makes it larger, to measure (the default keeps the suite quick).
const BLOB = randomBytes(Math.round(Number(process.env.PICCOLO_BACKUP_TEST_MB ?? 0.6) * 1024 * 1024));
let podman: TestPodman;
let daemonA: ServiceProcess;
let daemonB: ServiceProcess;
let apiA: ApiSession;
let baseB = '';
let recoveryKey = '';
let app = '';
let kept = '';
let image = '';
const KEPT = 'data an uninstall kept';

/** Installs the notes app under `name`: busybox httpd serving /www, its volume's folder "notes" at /www/saved. */
async function install(api: ApiSession, name: string): Promise<void> {
  const spec = [`name: ${name}`, `image: ${image}`, 'stop_grace_period: 1s', 'listeners:', '  - name: web', '    guest_port: 80', '    protocol: http', 'storage:', '  persistent:', '    notes:', '      container: /www/saved'].join('\n');
  const answer = await api.call('POST', '/api/v1/apps', { spec });
  assert.is(answer.status, 202, JSON.stringify(answer.body));
  await jobDone(api, answer.body.job, 120_000);
}

/** Claims and sets up a device, keeping the recovery key it showed. */
async function claimAndSetUp(base: string, stateDir: string, password: string): Promise<{ api: ApiSession; recoveryKey: string }> {
  const api = new ApiSession(base);
  const claim = await api.call('POST', '/api/v1/setup/claim', { claimCode: readFileSync(path.join(stateDir, 'claim-code'), 'utf8').trim() });
  assert.is(claim.status, 200, JSON.stringify(claim.body));
  const setup = await api.call('POST', '/api/v1/setup', { setupToken: claim.body.setupToken, password, recoveryKeySaved: true });
  assert.is(setup.status, 201, JSON.stringify(setup.body));
  return { api, recoveryKey: claim.body.recoveryKey };
}

/** POST /api/v1/restore from a distinct loopback address (each refusal counts against its client in the throttle). */
function restore(body: Buffer | string, credentials: Record<string, string>, localAddress: string): Promise<{ status: number; body: any; cookie?: string }> {
  const url = new URL('/api/v1/restore', baseB);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        localAddress,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': typeof body === 'string' ? statSync(body).size : body.length,
          'x-restore-credentials': Buffer.from(JSON.stringify(credentials)).toString('base64url'),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null'), cookie: res.headers['set-cookie']?.[0]?.split(';')[0] }));
      },
    );
    req.on('error', reject);
    if (typeof body === 'string') createReadStream(body).pipe(req);
    else req.end(body);
  });
}

/** A daemon's last warnings and errors, for a failure's message. */
function warningsOf(daemon: ServiceProcess): unknown[] {
  return daemon.logs.filter((entry) => entry.level === 'error' || entry.level === 'warn').slice(-8);
}

async function containerOf(name: string): Promise<string> {
  const { stdout } = await execFileAsync('podman', ['ps', '-q', '--filter', `label=${LABELS.app}=${name}`]);
  return stdout.trim().split('\n')[0]!;
}

async function served(port: number, file: string): Promise<string | undefined> {
  const res = await fetch(`http://127.0.0.1:${port}/${file}`).catch(() => undefined);
  return res?.ok ? res.text() : undefined;
}

/** A fresh device is exactly that: unclaimed, no key ring, no volumes, nothing mounted, no staging left. */
async function assertStillFresh(what: string): Promise<void> {
  const status = await (await fetch(`${baseB}/api/v1/setup/status`)).json();
  assert.is(status.state, 'unclaimed', `${what}: state`);
  assert.is(existsSync(path.join(stateB, 'keyring.json')), false, `${what}: no key ring`);
  assert.is(existsSync(path.join(stateB, 'volumes')), false, `${what}: no volumes`);
  assert.is(existsSync(path.join(stateB, 'setup-staging')), false, `${what}: no staging left`);
  assert.equal(mountsUnder(stateB), [], `${what}: nothing mounted`);
}

test.before(async () => {
  await setUpDeviceA().catch((err) => {
    // uvu reports a failing hook as nothing at all: say it, and fail the run.
    console.error('setting up device A failed:', err);
    process.exitCode = 1;
    throw err;
  });
});

async function setUpDeviceA(): Promise<void> {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  podman = await startPodman();
  app = `${podman.prefix}notes`;
  image = await podman.buildHttpdImage('notes', '<p>notes</p>', ['sh', 'httpd', 'echo', 'mkdir', 'ln', 'chown', 'cat']);
  ({ proc: daemonA } = await startTestDaemon(stateA, { PICCOLO_PODMAN_SOCKET: podman.socketPath }));
  const baseA = `http://${await daemonA.address('http')}`;
  ({ api: apiA, recoveryKey } = await claimAndSetUp(baseA, stateA, PASSWORD_A));
  await waitFor(async () => ((await apiA.call('GET', '/api/v1/apps')).status === 200 ? true : undefined), 30_000, 'apps on A');
  await install(apiA, app);
  // A second app, uninstalled without purge: its data is kept, and goes into the backup too.
  kept = `${podman.prefix}kept`;
  await install(apiA, kept);
  writeFileSync(path.join(stateA, 'volumes', `app-${kept}`, 'mnt', 'notes', 'kept.txt'), KEPT);
  const uninstall = await apiA.call('DELETE', `/api/v1/apps/${kept}`, { confirm: kept, purge: false });
  assert.is(uninstall.status, 202, JSON.stringify(uninstall.body));
  await jobDone(apiA, uninstall.body.job, 120_000);
}

test.after(async () => {
  await daemonA?.kill('SIGTERM');
  await daemonB?.kill('SIGTERM');
  await podman?.stop();
  removeTestDir(dir);
});

test('device A: the app writes into its volume, and the backup streams an archive with the app stopped for the copy', async () => {
  const container = await containerOf(app);
  // The app's own process writes: a file, an owner of its own, and an absolute symlink (as seen inside the container).
  await execFileAsync('podman', ['exec', container, 'sh', '-c', `echo "${NOTE}" > /www/saved/note.txt && mkdir -p /www/saved/sub && ln -s /www/saved/note.txt /www/saved/sub/link && echo owned > /www/saved/owned.txt && chown 1234:2345 /www/saved/owned.txt`]);
  const port = (await apiA.call('GET', `/api/v1/apps/${app}`)).body.services[0].hostBindPort as number;
  assert.is((await served(port, 'saved/note.txt'))?.trim(), NOTE);
  // Larger than a few chunks, so that damage lands in the middle of the archive.
  writeFileSync(path.join(stateA, 'volumes', `app-${app}`, 'mnt', 'notes', 'blob.bin'), BLOB);

  const wrong = await apiA.call('POST', '/api/v1/backup', { password: 'Not-The-Password-1' });
  assert.is(wrong.status, 401, JSON.stringify(wrong.body));
  assert.is((await new ApiSession(apiA.base).call('POST', '/api/v1/backup', { password: PASSWORD_A })).status, 401, 'no session, no backup');

  const events: { type: string; data: any }[] = [];
  const socket = new WebSocket(`${apiA.base.replace('http', 'ws')}/api/v1/events`, { headers: { cookie: apiA.cookie, origin: apiA.base } });
  socket.on('message', (data) => events.push(JSON.parse(data.toString())));
  await new Promise((resolve) => socket.once('open', resolve));
  const started = Date.now();
  const res = await fetch(`${apiA.base}/api/v1/backup`, {
    method: 'POST',
    headers: { cookie: apiA.cookie, 'x-csrf-token': apiA.csrf, 'content-type': 'application/json' },
    body: JSON.stringify({ password: PASSWORD_A }),
  });
  assert.is(res.status, 200);
  assert.match(res.headers.get('content-disposition') ?? '', /attachment; filename=".+\.piccolo-backup"/);
  // One at a time: a second backup while this one streams is refused.
  const second = await apiA.call('POST', '/api/v1/backup', { password: PASSWORD_A });
  assert.is(second.status, 409, JSON.stringify(second.body));
  assert.is(second.body.error.code, 'backup_busy');
  const archive = Buffer.from(await res.arrayBuffer());
  writeFileSync(archiveFile, archive);
  console.log(`  backup: ${archive.length} bytes in ${Date.now() - started} ms`);
  // Progress on the events stream: each volume as it is copied, then the end with every byte counted.
  const progress = await waitFor(() => {
    const seen = events.filter((event) => event.type === 'backup.progress').map((event) => event.data);
    return seen.some((p) => p.state === 'succeeded') ? seen : undefined;
  }, 10_000, 'the backup\'s last progress event');
  socket.close();
  const steps = progress.map((p) => p.step);
  assert.ok(steps.includes('bootstrap') && steps.includes(`app-${app}`), steps.join(', '));
  const last = progress.at(-1)!;
  assert.equal([last.state, last.bytes, last.apps], ['succeeded', archive.length, [app]]);
  assert.is(archive.subarray(0, 8).toString('ascii'), 'PICCOLOB');
  assert.is(archive.includes(Buffer.from(NOTE)), false, 'the note is not in the archive in the clear');
  assert.is(archive.includes(Buffer.from(app)), false, 'nor the app name');

  // Stopped for the copy (a new container start time), then running again with its data.
  await waitFor(async () => ((await apiA.call('GET', `/api/v1/apps/${app}`)).body.state === 'running' ? true : undefined), 60_000, 'the app running again after the backup');
  await waitFor(async () => ((await served(port, 'saved/note.txt'))?.trim() === NOTE ? true : undefined), 60_000, 'the note served again').catch((err) => {
    throw new Error(`${(err as Error).message}; daemon warnings ${JSON.stringify(warningsOf(daemonA))}`);
  });
  const { stdout } = await execFileAsync('podman', ['inspect', '--format', '{{.State.StartedAt}}', container]);
  assert.ok(new Date(stdout.trim().replace(/ \+0000 UTC.*$/, 'Z').replace(' ', 'T')).getTime() >= started - 2000, `restarted during the backup (started at ${stdout.trim()})`);

  const entries: { event: string; outcome: string }[] = (await apiA.call('GET', '/api/v1/system/audit')).body.entries;
  const outcomes = entries.filter((entry) => entry.event === 'backup').map((entry) => entry.outcome).sort();
  assert.equal(outcomes, ['denied', 'error', 'ok'], JSON.stringify(entries.slice(-5)));

  // The old device goes away: its app and data with it (B will take the same container name and port).
  const purge = await apiA.call('DELETE', `/api/v1/apps/${app}`, { confirm: app, purge: true });
  assert.is(purge.status, 202, JSON.stringify(purge.body));
  await jobDone(apiA, purge.body.job, 120_000);
  await daemonA.kill('SIGTERM');
});

test('device B (fresh): a tampered, a truncated and a foreign-key archive are refused, and B stays fresh', async () => {
  ({ proc: daemonB } = await startTestDaemon(stateB, { PICCOLO_PODMAN_SOCKET: podman.socketPath }));
  baseB = `http://${await daemonB.address('http')}`;
  const claim = await new ApiSession(baseB).call('POST', '/api/v1/setup/claim', { claimCode: readFileSync(path.join(stateB, 'claim-code'), 'utf8').trim() });
  assert.is(claim.status, 200);
  const archive = readFileSync(archiveFile);
  const credentials = { setupToken: claim.body.setupToken, recoveryKey, password: PASSWORD_B };

  const flipped = Buffer.from(archive);
  flipped[Math.floor(archive.length * 0.7)]! ^= 0x01;
  const tampered = await restore(flipped, credentials, '127.0.0.2');
  assert.is(tampered.status, 400, JSON.stringify(tampered.body));
  assert.is(tampered.body.error.code, 'backup_invalid');
  assert.is(tampered.body.error.details.problem, 'tampered');
  await assertStillFresh('after the tampered archive');

  const truncated = await restore(archive.subarray(0, archive.length - 100), credentials, '127.0.0.3');
  assert.is(truncated.status, 400, JSON.stringify(truncated.body));
  assert.is(truncated.body.error.details.problem, 'truncated');
  await assertStillFresh('after the truncated archive');

  const foreign = await restore(archive, { ...credentials, recoveryKey: generateRecoveryPhrase() }, '127.0.0.4');
  assert.is(foreign.status, 401, JSON.stringify(foreign.body));
  assert.is(foreign.body.error.code, 'wrong_recovery_key');
  await assertStillFresh('after a wrong recovery key');

  // An upload that breaks off halfway: nobody is left to answer, but the device must not be left half-restored.
  await new Promise<void>((resolve) => {
    const url = new URL('/api/v1/restore', baseB);
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', localAddress: '127.0.0.8', headers: { 'content-type': 'application/octet-stream', 'content-length': archive.length, 'x-restore-credentials': Buffer.from(JSON.stringify(credentials)).toString('base64url') } });
    req.on('error', () => resolve());
    req.write(archive.subarray(0, Math.floor(archive.length / 2)), () => setTimeout(() => (req.destroy(), resolve()), 500));
  });
  await waitFor(async () => ((await (await fetch(`${baseB}/api/v1/restore/status`)).json()).state === 'failed' ? true : undefined), 20_000, 'the broken-off restore to fail');
  await assertStillFresh('after an upload that broke off');

  const typo = await restore(archive, { ...credentials, recoveryKey: recoveryKey.replace(/^\S+/, 'notaword') }, '127.0.0.5');
  assert.is(typo.status, 400);
  assert.is(typo.body.error.code, 'invalid_recovery_phrase');
  const badToken = await restore(archive, { ...credentials, setupToken: 'not-the-token' }, '127.0.0.6');
  assert.is(badToken.status, 403);
  await assertStillFresh('after a typo and a bad setup token');
});

test('device B: the real archive restores; the app comes back running with the data it wrote on A', async () => {
  const claim = await new ApiSession(baseB).call('POST', '/api/v1/setup/claim', { claimCode: readFileSync(path.join(stateB, 'claim-code'), 'utf8').trim() });
  const started = Date.now();
  const restored = await restore(archiveFile, { setupToken: claim.body.setupToken, recoveryKey, password: PASSWORD_B }, '127.0.0.1');
  assert.is(restored.status, 201, JSON.stringify(restored.body));
  assert.equal(restored.body.apps, [app]);
  console.log(`  restore: ${statSync(archiveFile).size} bytes in ${Date.now() - started} ms`);
  const apiB = new ApiSession(baseB);
  apiB.cookie = restored.cookie!;
  apiB.csrf = restored.body.csrfToken;
  const status = await (await fetch(`${baseB}/api/v1/restore/status`)).json();
  assert.is(status.state, 'succeeded');
  assert.is(status.bytes, statSync(archiveFile).size);

  let last: unknown;
  const view = await waitFor(async () => {
    const { status: code, body } = await apiB.call('GET', `/api/v1/apps/${app}`);
    last = body;
    return code === 200 && body.state === 'running' ? body : undefined;
  }, 120_000, 'the restored app running on B').catch((err) => {
    throw new Error(`${(err as Error).message}; last answer ${JSON.stringify(last)}; daemon warnings ${JSON.stringify(warningsOf(daemonB))}`);
  });
  const port = view.services[0].hostBindPort as number;
  assert.is((await waitFor(() => served(port, 'saved/note.txt'), 30_000, 'the note on B'))!.trim(), NOTE);
  const mount = path.join(stateB, 'volumes', `app-${app}`, 'mnt', 'notes');
  assert.is(readlinkSync(path.join(mount, 'sub', 'link')), '/www/saved/note.txt', 'the absolute symlink is kept as it was');
  const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
  assert.is(sha(readFileSync(path.join(mount, 'blob.bin'))), sha(BLOB), 'the large file, byte for byte');
  const owned = statSync(path.join(mount, 'owned.txt'));
  assert.equal([owned.uid, owned.gid], [1234, 2345], 'owners kept');

  // The new password signs in; the old one does not; the same recovery key still opens the device.
  const login = await new ApiSession(baseB).call('POST', '/api/v1/auth/login', { password: PASSWORD_B });
  assert.is(login.status, 200);
  assert.is((await new ApiSession(baseB).call('POST', '/api/v1/auth/login', { password: PASSWORD_A })).status, 401);
  const keyring = JSON.parse(readFileSync(path.join(stateB, 'keyring.json'), 'utf8'));
  assert.equal(keyring.recovery, JSON.parse(readFileSync(path.join(stateA, 'keyring.json'), 'utf8')).recovery, 'the same recovery wrap');
  // The kept data came along: installing that app again finds it.
  await install(apiB, kept);
  const keptPort = (await apiB.call('GET', `/api/v1/apps/${kept}`)).body.services[0].hostBindPort as number;
  assert.is(await waitFor(() => served(keptPort, 'saved/kept.txt'), 30_000, 'the kept data on B'), KEPT);
  // A device that is set up refuses a second restore.
  const again = await restore(archiveFile, { setupToken: 'x', recoveryKey, password: PASSWORD_B }, '127.0.0.7');
  assert.is(again.status, 409);
});

test.run();
