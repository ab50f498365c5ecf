// A multi-container app end to end, over the daemon's API with the real proxy in front: a web
// front (busybox httpd with a CGI) that asks its "db" service (another httpd, serving the app's
// encrypted volume) by service name on the app's own network. Images are built here, pushed to a
// real registry on loopback and pulled by the daemon. Installed (db first, the front only once
// db's engine healthcheck passes), served through the proxy, updated, a deliberately broken
// version (its healthcheck fails) rolled back to the previous containers with the data intact,
// pinned so a moved tag changes nothing at a restart, and uninstalled.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import type { ApiSession } from '../support/api-session.js';
import { jobDone } from '../support/jobs.js';
import { exposedBeyondLoopback, startPodman, type TestPodman } from '../support/podman.js';
import { setUpWithApps } from '../support/portal.js';
import { removeTestDir, startTestDaemon, startTestProxy, waitFor, type ServiceProcess } from '../support/processes.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

const execFileAsync = promisify(execFile);
const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-apps-stack-'));
const stateDir = path.join(dir, 'state');
const APPLETS = ['sh', 'httpd', 'nc', 'printf', 'test', 'touch', 'sleep', 'cat', 'echo', 'ls'];
let registry: TestRegistry;
let podman: TestPodman;
let daemon: ServiceProcess;
let proxy: ServiceProcess;
let api: ApiSession;
let app = '';
const remote: Record<string, string> = {};
let publicPort = 0;

/** The front's page and, at /cgi-bin/db, what the db service answers for value.txt (asked by its name). */
function front(version: string, healthy: boolean) {
  return podman.buildBusyboxImage(`front:${version}`, {
    files: {
      '/www/index.html': `front ${version}\n`,
      '/www/cgi-bin/db': { content: "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nprintf 'GET /value.txt HTTP/1.0\\r\\n\\r\\n' | nc db 6379\n", mode: 0o755 },
      // The healthcheck in the spec looks for this file: the broken version has none.
      ...(healthy ? { '/www/ok': 'ok\n' } : {}),
    },
    cmd: ['/bin/httpd', '-f', '-v', '-p', '8080', '-h', '/www'],
    applets: APPLETS,
  });
}

function specFor(frontTag: string): string {
  return JSON.stringify({
    name: app,
    services: {
      db: {
        image: remote.db,
        // Ready only after 2 s, so the front's start shows it waited for the healthcheck.
        command: ['/bin/sh', '-c', 'sleep 2; touch /tmp/ready; exec httpd -f -v -p 6379 -h /data'],
        mounts: [{ volume: 'data', container: '/data' }],
        healthcheck: { test: ['CMD', 'test', '-e', '/tmp/ready'], interval: '1s', timeout: '1s', retries: 3 },
        stop_grace_period: '1s',
      },
      // A one-shot, as a schema migration would be: done once, then the app runs without it.
      migrate: {
        image: remote.db,
        command: ['/bin/sh', '-c', 'echo migrated >> /data/migrations.txt'],
        restart: 'no',
        mounts: [{ volume: 'data', container: '/data' }],
        depends_on: { db: { condition: 'service_healthy' } },
      },
      web: {
        image: remote[`front:${frontTag}`],
        depends_on: { db: { condition: 'service_healthy' }, migrate: { condition: 'service_completed_successfully' } },
        healthcheck: { test: ['CMD', 'test', '-e', '/www/ok'], interval: '1s', timeout: '1s', retries: 2 },
        stop_grace_period: '1s',
      },
    },
    listeners: [{ name: 'web', guest_port: 8080, protocol: 'http', service: 'web', public: true }],
    storage: { persistent: { data: {} } },
  });
}

async function view(): Promise<any> {
  const { status, body } = await api.call('GET', `/api/v1/apps/${app}`);
  assert.is(status, 200, JSON.stringify(body));
  return body;
}

/** Through the proxy's public port, as a client on the network. */
async function throughProxy(file = '/'): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${publicPort}${file}`, { signal: AbortSignal.timeout(5000) });
  return `${res.status} ${await res.text()}`;
}

async function served(file: string, expected: RegExp, what: string): Promise<string> {
  const t0 = Date.now();
  const attempts: string[] = [];
  const text = await waitFor(async () => {
    const started = Date.now();
    const answer = await throughProxy(file).catch((err: Error) => `error ${err.message}`);
    attempts.push(`${answer.slice(0, 40).replace(/\s+/g, ' ')} (${Date.now() - started} ms)`);
    return expected.test(answer) ? answer : undefined;
  }, 30_000, what);
  console.log(`  ${what}: ${Date.now() - t0} ms, ${attempts.length} tries: ${attempts.slice(-4).join(' | ')}`);
  return text;
}

async function ourContainers(): Promise<{ name: string; id: string; image: string; state: string }[]> {
  const listed = await podman.docker.listContainers({ all: true, filters: { label: [`piccolo.app=${app}`] } });
  return listed.map((c) => ({ name: c.Names[0]!.replace(/^\//, ''), id: c.Id, image: c.ImageID, state: c.State })).sort((a, b) => a.name.localeCompare(b.name));
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  registry = await startRegistry();
  podman = await startPodman({ registriesConf: registry.registriesConf });
  app = `${podman.prefix}stack`;
  const local: Record<string, string> = {
    db: await podman.buildBusyboxImage('db:1', { files: {}, cmd: ['/bin/httpd', '-f', '-p', '6379', '-h', '/data'], applets: APPLETS }),
    'front:1': await front('1', true),
    'front:2': await front('2', true),
    'front:3': await front('3', false),
  };
  for (const [key, image] of Object.entries(local)) {
    remote[key] = await registry.push(image, `${podman.prefix}/${key.includes(':') ? key : `${key}:1`}`);
    // Pulled by the daemon for real: nothing of it may be left in the engine's store.
    await execFileAsync('podman', ['rmi', '-f', image]);
  }
  const internalSocket = path.join(dir, 'internal.sock');
  let base = '';
  ({ proc: daemon, api: base } = await startTestDaemon(stateDir, {
    PICCOLO_PODMAN_SOCKET: podman.socketPath,
    PICCOLO_DAEMON_INTERNAL_SOCKET: internalSocket,
    ...(process.env.PICCOLO_TEST_LOG ? { PICCOLO_LOG_LEVEL: 'debug' } : {}),
  }));
  ({ proc: proxy } = await startTestProxy(internalSocket, dir));
  api = await setUpWithApps(base, stateDir);
});

test.after(async () => {
  // PICCOLO_TEST_LOG=1: the daemon's app runtime lines, to see what a failing step did.
  if (process.env.PICCOLO_TEST_LOG) for (const line of daemon?.logs ?? []) if (line.module === 'apps') console.log(JSON.stringify(line));
  await proxy?.kill('SIGTERM');
  await daemon?.kill('SIGTERM');
  for (const image of Object.values(remote)) await podman?.docker.getImage(image).remove({ force: true }).catch(() => {});
  await podman?.stop();
  await registry?.stop();
  removeTestDir(dir);
});

test('install over the API, pulled from the registry: db first, the migration, the front once db is healthy and the migration done; digests pinned', async () => {
  const install = await api.call('POST', '/api/v1/apps', { spec: specFor('1') });
  assert.is(install.status, 202, JSON.stringify(install.body));
  const job = await jobDone(api, install.body.job, 120_000);
  assert.ok((job.progress as any).pull?.done, 'the install pulled its images');
  const app_ = await view();
  assert.is(app_.state, 'running', JSON.stringify(app_));
  assert.equal(app_.containers.map((c: any) => `${c.service}:${c.name}:${c.state}`), [`db:piccolo-${app}-db:running`, `migrate:piccolo-${app}-migrate:exited`, `web:piccolo-${app}-web:running`]);
  assert.is(app_.containers[1].exitCode, 0, 'the one-shot completed; the app counts as running without it');
  for (const container of app_.containers) {
    const repo = container.image.replace(/:[^:/]+$/, '');
    assert.ok(container.digest?.startsWith(`${repo}@sha256:`), `pinned by digest: ${JSON.stringify(container)}`);
  }
  const started = async (service: string) => (await podman.docker.getContainer(`piccolo-${app}-${service}`).inspect()).State.StartedAt;
  const migrated = (await podman.docker.getContainer(`piccolo-${app}-migrate`).inspect()).State.FinishedAt;
  assert.ok(Date.parse(await started('web')) >= Date.parse(migrated), 'the front started after the migration had finished');
  const waitedMs = Date.parse(await started('web')) - Date.parse(await started('db'));
  console.log(`  the front started ${waitedMs} ms after db (db is healthy after ~2 s)`);
  assert.ok(waitedMs >= 1900, `the front waited for db's healthcheck: ${waitedMs} ms`);
  const db = await podman.docker.getContainer(`piccolo-${app}-db`).inspect();
  assert.equal(db.HostConfig.PortBindings ?? {}, {}, 'db publishes nothing');
  assert.is((db.State as any).Health?.Status, 'healthy');
  publicPort = app_.services[0].publicPort;
  assert.equal(await exposedBeyondLoopback([app_.services[0].hostBindPort]), []);
});

test('served through the proxy: the front reaches db by its service name; db serves the encrypted volume', async () => {
  await served('/', /^200 front 1/, 'the front through the proxy');
  const volume = path.join(stateDir, 'volumes', `app-${app}`, 'mnt', 'data');
  assert.ok(existsSync(volume), `the db's data is in the app's volume: ${volume}`);
  assert.is(await readFile(path.join(volume, 'migrations.txt'), 'utf8'), 'migrated\n');
  await writeFile(path.join(volume, 'value.txt'), 'kept in the volume\n');
  const answer = await served('/cgi-bin/db', /kept in the volume/, 'the db value through the front');
  assert.match(answer, /^200 /);
});

test('update over HTTP (PUT): only the front is replaced, the data stays', async () => {
  const before = await ourContainers();
  const update = await api.call('PUT', `/api/v1/apps/${app}`, { spec: specFor('2') });
  assert.is(update.status, 202, JSON.stringify(update.body));
  await jobDone(api, update.body.job, 120_000);
  await served('/', /^200 front 2/, 'version 2');
  assert.match(await throughProxy('/cgi-bin/db'), /kept in the volume/);
  const after = await ourContainers();
  assert.equal(after.map((c) => c.name), [`piccolo-${app}-db`, `piccolo-${app}-migrate`, `piccolo-${app}-web`], 'nothing kept aside once the update held');
  assert.is(after[0]!.id, before[0]!.id, 'db was not touched');
  assert.is(after[1]!.id, before[1]!.id, 'nor the migration');
  assert.is.not(after[2]!.id, before[2]!.id, 'the front was replaced');
  const volume = path.join(stateDir, 'volumes', `app-${app}`, 'mnt', 'data');
  assert.is(await readFile(path.join(volume, 'migrations.txt'), 'utf8'), 'migrated\n', 'the completed migration did not run again');
  assert.is((await view()).revision, 2);
});

test('a broken version (its healthcheck fails) is rolled back to the previous containers, data intact', async () => {
  const before = await ourContainers();
  const update = await api.call('PUT', `/api/v1/apps/${app}`, { spec: specFor('3') });
  assert.is(update.status, 202, JSON.stringify(update.body));
  const job = await waitFor(async () => {
    const { body } = await api.call('GET', `/api/v1/jobs/${update.body.job.id}`);
    return body.status === 'running' ? undefined : body;
  }, 120_000, 'the failed update');
  assert.is(job.status, 'failed', JSON.stringify(job));
  assert.match(job.error, /update to revision 3 failed: app \S+: service web is unhealthy/);
  assert.match(job.error, /rolled back to revision 2$/);
  const now = await view();
  assert.is(now.revision, 2);
  assert.is(now.state, 'running', JSON.stringify(now));
  assert.ok(now.containers[2].image.endsWith('/front:2'), now.containers[2].image);
  assert.equal(await ourContainers(), before, 'the very containers that ran before, nothing left aside');
  assert.match(await throughProxy('/'), /^200 front 2/);
  assert.match(await throughProxy('/cgi-bin/db'), /kept in the volume/);
  const history = (await api.call('GET', `/api/v1/apps/${app}/history`)).body.history;
  assert.equal(history.map((entry: any) => entry.revision), [2, 1], 'the failed revision is not kept as current');
});

test('pinned: a tag that moved on changes nothing at a restart', async () => {
  const pinned = (await view()).containers[2].imageId;
  // The front:2 tag now names version 1's image in the engine, as a re-push pulled by someone would.
  await execFileAsync('podman', ['tag', remote['front:1']!, remote['front:2']!]);
  const restart = await api.call('POST', `/api/v1/apps/${app}/restart`, {});
  assert.is(restart.status, 202, JSON.stringify(restart.body));
  await jobDone(api, restart.body.job, 60_000);
  await served('/', /^200 front 2/, 'still version 2 after the restart');
  const web = await podman.docker.getContainer(`piccolo-${app}-web`).inspect();
  assert.is(web.Image, pinned);
});

test('uninstall with purge: every container, the network and the data go', async () => {
  const removal = await api.call('DELETE', `/api/v1/apps/${app}`, { confirm: app, purge: true });
  assert.is(removal.status, 202, JSON.stringify(removal.body));
  await jobDone(api, removal.body.job, 60_000);
  assert.equal(await ourContainers(), []);
  assert.equal((await podman.docker.listNetworks({ filters: { label: [`piccolo.app=${app}`] } })).length, 0);
  assert.is((await api.call('GET', `/api/v1/apps/${app}`)).status, 404);
  await waitFor(async () => ((await throughProxy('/').catch(() => 'closed')).startsWith('200') ? undefined : true), 10_000, 'the public port stops serving the app');
});

test.run();
