// Importing from the app stores over the API with a real daemon, Podman and a loopback registry:
// an Umbrel app folder and a CasaOS file preview as whole multi-container apps (containers,
// listeners, the permissions they need, what the store says about them), bad files are 400s
// naming the key, and an install keeps the app's generated password across an update until the
// app is purged.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import type { ApiSession } from '../support/api-session.js';
import { setUpWithApps } from '../support/portal.js';
import { startTestDaemon, removeTestDir, waitFor, type ServiceProcess } from '../support/processes.js';
import { startPodman, type TestPodman } from '../support/podman.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { casaosPlayer, umbrelNotes } from '../support/store-apps.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-compose-'));
let registry: TestRegistry;
let podman: TestPodman;
let daemon: ServiceProcess;
let api: ApiSession;
let image = '';
let app = '';

const manifest = () => umbrelNotes(app, image).manifest;
const compose = () => umbrelNotes(app, image).compose;

async function jobDone(id: string): Promise<any> {
  return waitFor(async () => {
    const { body } = await api.call('GET', `/api/v1/jobs/${id}`);
    return body.status === 'running' ? undefined : body;
  }, 120_000, `job ${id}`);
}

const envOf = async (container: string): Promise<Record<string, string>> => {
  const info = await podman.docker.getContainer(container).inspect();
  return Object.fromEntries((info.Config.Env ?? []).map((entry: string) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]));
};

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  registry = await startRegistry();
  podman = await startPodman({ registriesConf: registry.registriesConf });
  app = `${podman.prefix}notes`;
  image = await registry.push(await podman.buildHttpdImage('notes', '<h1>notes</h1>'), `${podman.prefix}/notes:1`);
  const started = await startTestDaemon(path.join(dir, 'state'), { PICCOLO_PODMAN_SOCKET: podman.socketPath });
  daemon = started.proc;
  api = await setUpWithApps(started.api, path.join(dir, 'state'));
});

test.after(async () => {
  await daemon?.kill('SIGTERM');
  await podman?.stop();
  await registry?.stop();
  removeTestDir(dir);
});

test('an Umbrel app folder previews as one app: its containers, the app_proxy listener, what the store says', async () => {
  const preview = await api.call('POST', '/api/v1/apps/preview', { umbrel: { manifest: manifest(), compose: compose() } });
  assert.is(preview.status, 200, JSON.stringify(preview.body));
  assert.is(preview.body.action, 'install');
  assert.is(preview.body.name, app);
  assert.equal(preview.body.containers.map((c: any) => c.name), ['backend', 'web']);
  assert.equal(preview.body.listeners.map((l: any) => [l.name, l.port, l.protocol]), [['web', 80, 'http']]);
  assert.equal(preview.body.permissionsNeeded, []);
  assert.is(preview.body.about.title, 'Notes');
  assert.match(preview.body.about.defaultPassword, /^[0-9a-f]{32}$/);
  assert.ok(preview.body.warnings.some((w: string) => w.includes('written as service names')), JSON.stringify(preview.body.warnings));
  assert.equal((await api.call('GET', '/api/v1/apps')).body.apps, [], 'a preview installs nothing');
});

test('a CasaOS file that needs a device and a media folder previews with those permissions; install refuses without the grants', async () => {
  const casa = casaosPlayer(`${app}casa`, image);
  const preview = await api.call('POST', '/api/v1/apps/preview', { compose: casa });
  assert.is(preview.status, 200, JSON.stringify(preview.body));
  assert.equal(preview.body.permissionsNeeded.map((p: any) => p.id).sort(), ['devices', 'media']);
  assert.equal(preview.body.about, { source: 'casaos', title: 'Player', tagline: 'Plays things', icon: 'https://example.com/player.png' });
  const refused = await api.call('POST', '/api/v1/apps', { compose: casa });
  assert.is(refused.status, 403, JSON.stringify(refused.body));
  assert.is(refused.body.error.code, 'permission_required');
});

test('files that cannot be imported are 400s naming the key and the reason', async () => {
  const cases: [unknown, string][] = [
    [{ compose: 'services:\n  web:\n    build: .\n    ports: ["80:80"]\n' }, 'services.web.build: building images is not supported'],
    [{ compose: `services:\n  web:\n    image: ${image}\n    ports: ["80"]\n    volumes: ["/etc:/host-etc"]\n` }, "services.web.volumes[0]: /etc is outside the app's data"],
    [{ compose: `services:\n  web:\n    image: ${image}\n    ports: ["80"]\n    environment: { URL: "\${NOWHERE}" }\n` }, 'services.web.environment.URL: the variable NOWHERE is not defined'],
    [{ umbrel: { manifest: 'name: x\n', compose: compose() } }, 'umbrel-app.yml id: is required'],
  ];
  for (const [body, expected] of cases) {
    const { status, body: answer } = await api.call('POST', '/api/v1/apps/preview', body);
    assert.is(status, 400, JSON.stringify(answer));
    assert.ok(answer.error.details.some((d: string) => d.startsWith(expected)), `${expected}\n${JSON.stringify(answer.error)}`);
  }
  // env_file: names a file next to the compose file; given in env_files, the file imports.
  const withEnvFile = `services:\n  web:\n    image: ${image}\n    ports: ["80"]\n    env_file: [web.env]\n`;
  const missing = await api.call('POST', '/api/v1/apps/preview', { compose: withEnvFile });
  assert.is(missing.status, 400);
  assert.equal(missing.body.error.details, ['services.web.env_file[0]: the file web.env was not given; add it next to the compose file, or put its variables under environment']);
  assert.is((await api.call('POST', '/api/v1/apps/preview', { compose: withEnvFile, env_files: { 'web.env': 'A=1\n' } })).status, 200);
  assert.is((await api.call('POST', '/api/v1/apps/preview', { umbrel: { manifest: manifest() } })).status, 400, 'both files are required');
  assert.is((await api.call('POST', '/api/v1/apps/preview', { umbrel: { manifest: manifest(), compose: compose() }, compose: 'x' })).status, 400, 'one source');
});

test('the generated password: the preview shows the one the install uses, the update reuses it, a purge forgets it', async () => {
  const previewed = await api.call('POST', '/api/v1/apps/preview', { umbrel: { manifest: manifest(), compose: compose() } });
  const installed = await api.call('POST', '/api/v1/apps', { umbrel: { manifest: manifest(), compose: compose() } });
  assert.is(installed.status, 202, JSON.stringify(installed.body));
  const password = installed.body.about.defaultPassword;
  assert.match(password, /^[0-9a-f]{32}$/);
  assert.is(previewed.body.about.defaultPassword, password, 'what the preview showed');
  const job = await jobDone(installed.body.job.id);
  assert.is(job.status, 'succeeded', JSON.stringify(job));
  const web = await envOf(`piccolo-${app}-web`);
  assert.is(web.PASSWORD, password, 'the container has the password the install answered');
  assert.is(web.BACKEND, 'http://backend:8080', 'the container name became the service name');

  const preview = await api.call('POST', '/api/v1/apps/preview', { umbrel: { manifest: manifest(), compose: compose() } });
  assert.is(preview.body.action, 'update');
  assert.is(preview.body.about.defaultPassword, password, 'a later import of the same app gets the kept password');
  const updated = await api.call('PUT', `/api/v1/apps/${app}`, { umbrel: { manifest: manifest(), compose: compose().replace('restart: on-failure', 'restart: always') } });
  assert.is(updated.status, 202, JSON.stringify(updated.body));
  const updateJob = await jobDone(updated.body.job.id);
  assert.is(updateJob.status, "succeeded", JSON.stringify(updateJob));
  assert.is((await envOf(`piccolo-${app}-web`)).PASSWORD, password, 'the update kept it');

  const removed = await api.call('DELETE', `/api/v1/apps/${app}`, { confirm: app, purge: true });
  assert.is(removed.status, 202);
  assert.is((await jobDone(removed.body.job.id)).status, 'succeeded');
  const fresh = await api.call('POST', '/api/v1/apps/preview', { umbrel: { manifest: manifest(), compose: compose() } });
  assert.is.not(fresh.body.about.defaultPassword, password, 'purged with its data');
});

test.run();
