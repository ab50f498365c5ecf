// Installing from a real registry: the install preview says what will change before anything
// is installed, and the install's job reports the image pull as it advances, on the events
// stream. Debian's docker-registry on loopback (behind a throttling relay, so that Podman has
// time to report bytes) serves an image built here and pushed with `podman push`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { WebSocket } from 'ws';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import type { ApiSession } from '../support/api-session.js';
import { setUpWithApps } from '../support/portal.js';
import { startTestDaemon, removeTestDir, waitFor, type ServiceProcess } from '../support/processes.js';
import { startPodman, type TestPodman } from '../support/podman.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

const execFileAsync = promisify(execFile);
const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-pull-'));
const stateDir = path.join(dir, 'state');
let registry: TestRegistry;
let podman: TestPodman;
let daemon: ServiceProcess;
let base = '';
let api: ApiSession;
let app = '';
let remoteImage = '';
const events: { type: string; at: string; data: any }[] = [];
let eventSocket: WebSocket;

const specFor = (image: string, extra: string[] = []) =>
  [`name: ${app}`, `image: ${image}`, 'listeners:', '  - name: web', '    guest_port: 80', '    protocol: http', ...extra].join('\n');

async function jobDone(id: string): Promise<any> {
  return waitFor(async () => {
    const { body } = await api.call('GET', `/api/v1/jobs/${id}`);
    return body.status === 'running' ? undefined : body;
  }, 90_000, `job ${id}`);
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  // 4 MB/s: a ~12 MB layer takes about 3 s, and Podman reports bytes about once a second.
  registry = await startRegistry({ bytesPerSecond: 4_000_000 });
  podman = await startPodman({ registriesConf: registry.registriesConf });
  app = `${podman.prefix}pull`;
  // Random content does not compress: the layer stays about as big as the page.
  const local = await podman.buildHttpdImage('pull', randomBytes(9_000_000).toString('base64'));
  remoteImage = await registry.push(local, `${podman.prefix}/web:1`);
  // Pulled for real: no layer of it may be left in the engine's store.
  await execFileAsync('podman', ['rmi', '-f', local]);
  ({ proc: daemon, api: base } = await startTestDaemon(stateDir, { PICCOLO_PODMAN_SOCKET: podman.socketPath }));
  api = await setUpWithApps(base, stateDir);
  eventSocket = new WebSocket(`${base.replace('http', 'ws')}/api/v1/events`, { headers: { cookie: api.cookie, origin: base } });
  eventSocket.on('message', (data) => events.push(JSON.parse(data.toString())));
  await new Promise((resolve) => eventSocket.once('open', resolve));
});

test.after(async () => {
  eventSocket?.close();
  await daemon?.kill('SIGTERM');
  await podman?.docker.getImage(remoteImage).remove({ force: true }).catch(() => {});
  await podman?.stop();
  await registry?.stop();
  removeTestDir(dir);
});

test('preview of a new app: install, its listeners and permissions; nothing is installed or pulled', async () => {
  const preview = await api.call('POST', '/api/v1/apps/preview', { spec: specFor(remoteImage, ['permissions: { network: { internet: allow } }']) });
  assert.is(preview.status, 200, JSON.stringify(preview.body));
  assert.is(preview.body.action, 'install');
  assert.is(preview.body.image, remoteImage);
  assert.equal(preview.body.listeners, [{ name: 'web', port: 80, protocol: 'http', flow: 'tcp', exposed: false, service: 'app' }]);
  assert.equal(preview.body.containers.map((c: any) => [c.name, c.image]), [['app', remoteImage]]);
  assert.equal(preview.body.permissionsNeeded, []);
  assert.equal(preview.body.permissions.map((p: any) => p.id), ['internet', 'lan-listener:web', 'remote-listener:web']);
  assert.match(preview.body.permissions[1].detail, new RegExp(`web-${app}\\.piccolo\\.local`));
  assert.equal((await api.call('GET', '/api/v1/apps')).body.apps, []);
  const images = await podman.docker.listImages();
  assert.not.ok(images.some((image) => image.RepoTags?.includes(remoteImage)), 'the preview pulled nothing');
});

test('preview validates like install: a bad spec is a 400 naming the field; one source only; CSRF needed', async () => {
  const bad = await api.call('POST', '/api/v1/apps/preview', { spec: specFor(remoteImage).replace('guest_port: 80', 'guest_port: 70000') });
  assert.is(bad.status, 400);
  assert.ok(bad.body.error.details.some((d: string) => d.startsWith('listeners[0].guest_port')), JSON.stringify(bad.body));
  assert.is((await api.call('POST', '/api/v1/apps/preview', {})).status, 400);
  assert.is((await api.call('POST', '/api/v1/apps/preview', { spec: 'x', catalog: 'whoami' })).status, 400);
  assert.is((await api.call('POST', '/api/v1/apps/preview', { spec: 'x', extra: 1 })).status, 400, 'the body is checked against the OpenAPI schema');
  const depends = await api.call('POST', '/api/v1/apps/preview', { spec: specFor(remoteImage, ['depends_on: [nothere]']) });
  assert.is(depends.status, 400);
  assert.match(depends.body.error.message, /depends_on nothere, which is not installed/);
  const csrf = api.csrf;
  api.csrf = 'wrong';
  assert.is((await api.call('POST', '/api/v1/apps/preview', { catalog: 'whoami' })).status, 403);
  api.csrf = csrf;
  const catalog = await api.call('POST', '/api/v1/apps/preview', { catalog: 'whoami' });
  assert.is(catalog.status, 200);
  assert.is(catalog.body.name, 'whoami');
  const compose = await api.call('POST', '/api/v1/apps/preview', { compose: `services:\n  ${app}:\n    image: ${remoteImage}\n    ports: ["8080:80"]\n` });
  assert.is(compose.status, 200, JSON.stringify(compose.body));
  assert.ok(compose.body.warnings.some((w: string) => w.includes('host port 8080 ignored')), JSON.stringify(compose.body.warnings));
});

test('install pulls from the registry: the job reports growing bytes, at most ~4 times a second, then done', async () => {
  const install = await api.call('POST', '/api/v1/apps', { spec: specFor(remoteImage) });
  assert.is(install.status, 202, JSON.stringify(install.body));
  const id = install.body.job.id;
  const job = await jobDone(id);
  assert.is(job.status, 'succeeded', JSON.stringify(job));
  assert.is(job.progress.pull.done, true, 'the finished job keeps its pull');
  assert.is(job.progress.pull.image, remoteImage);
  assert.ok(job.progress.pull.totalBytes > 9_000_000, JSON.stringify(job.progress.pull));
  assert.is(job.progress.pull.layersDone, job.progress.pull.layersTotal);

  const pulls = events.filter((e) => e.type === 'job.progress' && e.data.job.id === id && e.data.job.progress.pull).map((e) => ({ at: Date.parse(e.at), ...e.data.job.progress.pull }));
  const moving = pulls.filter((p) => !p.done && p.currentBytes > 0 && p.currentBytes < p.totalBytes);
  assert.ok(moving.length >= 2, `bytes reported on the way: ${JSON.stringify(pulls)}`);
  for (let i = 1; i < moving.length; i++) assert.ok(moving[i]!.currentBytes > moving[i - 1]!.currentBytes, `growing: ${JSON.stringify(moving)}`);
  const live = pulls.filter((p) => !p.done);
  for (let i = 1; i < live.length; i++) assert.ok(live[i]!.at - live[i - 1]!.at >= 200, `throttled: ${JSON.stringify(live.map((p) => p.at))}`);
  const last = pulls.at(-1)!;
  console.log(`  pull: ${pulls.length} progress events, ${moving.map((p) => p.currentBytes).join(' < ')} of ${last.totalBytes} bytes, ${last.at - pulls[0]!.at} ms`);
  assert.is(last.done, true);
  assert.is(last.currentBytes, last.totalBytes);
  const view = (await api.call('GET', `/api/v1/apps/${app}`)).body;
  assert.is(view.state, 'running');
});

test('preview of an installed app is an update: the changed fields by path', async () => {
  const preview = await api.call('POST', '/api/v1/apps/preview', { spec: specFor(`${registry.host}/${podman.prefix}/web:2`, ['environment: { TZ: UTC }']) });
  assert.is(preview.status, 200, JSON.stringify(preview.body));
  assert.is(preview.body.action, 'update');
  assert.equal(preview.body.changes, [
    { path: 'environment.TZ', from: null, to: 'UTC' },
    { path: 'services.app.image', from: remoteImage, to: `${registry.host}/${podman.prefix}/web:2` },
  ]);
});

test('a tag the registry does not have fails the job with the registry\'s words', async () => {
  const update = await api.call('PUT', `/api/v1/apps/${app}`, { spec: specFor(`${registry.host}/${podman.prefix}/web:missing`) });
  assert.is(update.status, 202, JSON.stringify(update.body));
  const job = await jobDone(update.body.job.id);
  assert.is(job.status, 'failed');
  assert.match(job.error, /manifest unknown/);
});

test.run();
