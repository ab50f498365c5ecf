// Shared media folders over the API, end to end: a compose bind mount of /DATA/Media and a spec's
// media mount are the same named device folder, inside the encrypted `media` volume; two apps
// granted it see each other's files, an app without the grant is refused; a lock closes the
// shared volume, the app volumes and their size-limited folders, an unlock reopens them. Real
// daemon bundle, real Podman, real gocryptfs (size limits themselves: apps-storage-limits.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import type { ApiSession } from '../support/api-session.js';
import { jobDone } from '../support/jobs.js';
import { startPodman, type TestPodman } from '../support/podman.js';
import { startAppsDaemon, TEST_PASSWORD } from '../support/portal.js';
import { removeTestDir, waitFor, type ServiceProcess } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-apps-storage-'));
const stateDir = path.join(dir, 'state');
let podman: TestPodman;
let daemon: ServiceProcess;
let api: ApiSession;
let image = '';
let writer = '';
let reader = '';
/** Written by the writer app into the shared folder; a word no file system holds by chance. */
const SECRET_LINE = `shared-by-writer-${Date.now().toString(36)}`;

/** The writer: a spec with a media mount; it writes its line into Media/notes/, then serves. */
const writerSpec = () =>
  [
    `name: ${writer}`,
    'services:',
    '  web:',
    `    image: ${image}`,
    `    command: [sh, -c, "echo ${SECRET_LINE} > /shared/notes/from-writer.txt && echo ${SECRET_LINE} > /state/mark && exec httpd -f -p 80 -h /www"]`,
    '    mounts:',
    '      - { media: Media, container: /shared }',
    '      - { media: Media, subpath: notes, container: /shared/notes }',
    '      - state:/state',
    'listeners:',
    '  - { name: web, guest_port: 80, protocol: http }',
    // A size-limited volume of its own: the lock must close it before the app's volume.
    'storage: { persistent: { state: { size_limit: 4Mi } } }',
  ].join('\n');

/** The reader: a compose file whose /DATA/Media bind mount is the same folder, served read only. */
const readerCompose = () => ['services:', '  web:', `    image: ${image}`, '    ports: ["8080:80"]', '    volumes:', '      - /DATA/Media:/www:ro'].join('\n');

async function hostPort(app: string): Promise<number> {
  return (await api.call('GET', `/api/v1/apps/${app}`)).body.services[0].hostBindPort;
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  podman = await startPodman();
  writer = `${podman.prefix}mwriter`;
  reader = `${podman.prefix}mreader`;
  image = await podman.buildHttpdImage('media', '<h1>media</h1>');
  ({ daemon, api } = await startAppsDaemon(stateDir, podman.socketPath));
});

test.after(async () => {
  await daemon?.kill('SIGTERM');
  await podman?.stop();
  removeTestDir(dir);
});

test('a media mount without the grant: 403 permission_required naming the folder; nothing installed', async () => {
  const refused = await api.call('POST', '/api/v1/apps', { compose: readerCompose(), name: reader });
  assert.is(refused.status, 403, JSON.stringify(refused.body));
  assert.is(refused.body.error.code, 'permission_required');
  assert.equal(refused.body.error.details.map((p: any) => [p.id, p.items]), [['media', ['Media']]]);
  assert.is((await api.call('GET', `/api/v1/apps/${reader}`)).status, 404);
});

test('granted: the writer installs, and its file lands in the shared folder, encrypted on disk', async () => {
  const installed = await api.call('POST', '/api/v1/apps', { spec: writerSpec(), grants: ['media'], confirm: writer });
  assert.is(installed.status, 202, JSON.stringify(installed.body));
  await jobDone(api, installed.body.job, 180_000);
  const view = await api.call('GET', `/api/v1/apps/${writer}`);
  assert.is(view.body.state, 'running', JSON.stringify(view.body));
  assert.equal(view.body.granted, ['media']);
  // The folder is in the shared gocryptfs volume: the plain line is not on disk outside its mount.
  const mounted = await waitFor(async () => {
    const out = execFileSync('grep', ['-rl', SECRET_LINE, path.join(stateDir, 'volumes', 'media', 'mnt')], { encoding: 'utf8' }).trim();
    return out || undefined;
  }, 30_000, 'the writer writes its line');
  assert.match(mounted, /notes\/from-writer\.txt$/);
  const cipher = path.join(stateDir, 'volumes', 'media', 'cipher');
  assert.ok(execFileSync('ls', [cipher], { encoding: 'utf8' }).includes('gocryptfs.conf'));
  let plainOnDisk = '';
  try {
    plainOnDisk = execFileSync('grep', ['-rl', SECRET_LINE, cipher], { encoding: 'utf8' });
  } catch {
    // grep exits 1 when nothing matches: what should happen.
  }
  assert.is(plainOnDisk, '', 'the shared file is stored encrypted');
});

test('a second app granted the same folder (from compose /DATA/Media) sees the first app\'s file', async () => {
  const installed = await api.call('POST', '/api/v1/apps', { compose: readerCompose(), name: reader, grants: ['media'], confirm: reader });
  assert.is(installed.status, 202, JSON.stringify(installed.body));
  await jobDone(api, installed.body.job, 180_000);
  const port = await hostPort(reader);
  const text = await waitFor(async () => {
    const res = await fetch(`http://127.0.0.1:${port}/notes/from-writer.txt`).catch(() => undefined);
    return res?.ok ? res.text() : undefined;
  }, 30_000, 'the reader serves the writer\'s file');
  assert.is(text.trim(), SECRET_LINE);
  const containers = await podman.docker.listContainers({ all: true, filters: { label: [`piccolo.app=${reader}`] } });
  const inspect = await podman.docker.getContainer(containers[0]!.Id).inspect();
  const mount = inspect.Mounts.find((m: any) => m.Destination === '/www');
  assert.ok(mount, JSON.stringify(inspect.Mounts));
  assert.is(mount!.RW, false, 'the compose :ro stays read only');
  assert.is(mount!.Source, path.join(stateDir, 'volumes', 'media', 'mnt', 'Media'));
});

test('the shared folders and each app\'s media mounts are listed, as the portal shows them', async () => {
  const shared = await api.call('GET', '/api/v1/storage/shared');
  assert.is(shared.status, 200);
  assert.equal(shared.body.folders, [
    {
      name: 'Media',
      apps: [
        { app: reader, service: 'web', path: '/www', readOnly: true },
        { app: writer, service: 'web', path: '/shared', readOnly: false },
        { app: writer, service: 'web', path: '/shared/notes', subpath: 'notes', readOnly: false },
      ].sort((a, b) => a.app.localeCompare(b.app)),
    },
  ]);
  const storage = await api.call('GET', `/api/v1/apps/${reader}/storage`);
  assert.equal(storage.body.media, [{ folder: 'Media', service: 'web', path: '/www', readOnly: true }]);
  assert.is((await api.call('GET', '/api/v1/apps/no-such-app/storage')).status, 404);
});

test('lock closes the limited folders, the app volumes and the shared media volume; unlock brings them back with their files', async () => {
  // What the lock must close: the writer's limited folder is open now.
  assert.ok(execFileSync('findmnt', ['-rn', '-o', 'TARGET,FSTYPE'], { encoding: 'utf8' }).includes(`${path.join(stateDir, 'volumes', `app-${writer}`, 'mnt', 'state')} ext4`));
  const locked = await api.call('POST', '/api/v1/crypto/lock', { confirm: true });
  assert.is(locked.status, 200, JSON.stringify(locked.body));
  const mounts = execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' }).split('\n').filter((m) => m.startsWith(stateDir));
  assert.equal(mounts, [], 'nothing of the device stays open');
  const unlocked = await api.call('POST', '/api/v1/crypto/unlock', { password: TEST_PASSWORD });
  assert.is(unlocked.status, 200, JSON.stringify(unlocked.body));
  await waitFor(async () => ((await api.call('GET', `/api/v1/apps/${writer}`)).body.state === 'running' ? true : undefined), 120_000, 'the app runs again');
  const state = path.join(stateDir, 'volumes', `app-${writer}`, 'mnt', 'state');
  const limited = await waitFor(async () => (execFileSync('findmnt', ['-rn', '-o', 'TARGET,FSTYPE'], { encoding: 'utf8' }).includes(`${state} ext4`) ? true : undefined), 30_000, 'the limited folder is mounted again');
  assert.ok(limited);
  assert.is(readFileSync(path.join(state, 'mark'), 'utf8').trim(), SECRET_LINE, 'with its files');
  // The reader serves the writer's file again, from the reopened shared volume.
  const port = await hostPort(reader);
  const text = await waitFor(async () => {
    const res = await fetch(`http://127.0.0.1:${port}/notes/from-writer.txt`).catch(() => undefined);
    return res?.ok ? res.text() : undefined;
  }, 60_000, 'the shared file after unlock');
  assert.is(text.trim(), SECRET_LINE);
});


test.run();
