// Permissions over the API, end to end: an app that asks for more than the defaults (here the
// NET_ADMIN capability) is refused with 403 permission_required until the grant comes with the
// app's name typed; the grant is recorded, audited and applied to the container; an update keeps
// it for no more than it covered; GET .../permissions words what the installed spec gives.
// Real daemon bundle, real Podman.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import type { ApiSession } from '../support/api-session.js';
import { jobDone } from '../support/jobs.js';
import { startPodman, type TestPodman } from '../support/podman.js';
import { startAppsDaemon } from '../support/portal.js';
import { removeTestDir, type ServiceProcess } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-apps-grants-'));
const stateDir = path.join(dir, 'state');
let podman: TestPodman;
let daemon: ServiceProcess;
let api: ApiSession;
let app = '';
let image = '';

const specWith = (...extra: string[]) => [`name: ${app}`, `image: ${image}`, ...extra, 'listeners:', '  - { name: web, guest_port: 80, protocol: http }'].join('\n');

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  podman = await startPodman();
  app = `${podman.prefix}caps`;
  image = await podman.buildHttpdImage('v1', '<h1>caps</h1>');
  ({ daemon, api } = await startAppsDaemon(stateDir, podman.socketPath));
});

test.after(async () => {
  await daemon?.kill('SIGTERM');
  await podman?.stop();
  removeTestDir(dir);
});

test('without the grant: 403 permission_required listing what it gives away; nothing is installed', async () => {
  const refused = await api.call('POST', '/api/v1/apps', { spec: specWith('cap_add: [NET_ADMIN]') });
  assert.is(refused.status, 403, JSON.stringify(refused.body));
  assert.is(refused.body.error.code, 'permission_required');
  const [needed, ...rest] = refused.body.error.details;
  assert.equal(rest, []);
  assert.is(needed.id, 'capabilities');
  assert.equal(needed.items, ['NET_ADMIN']);
  assert.match(needed.risk, /change network settings/);
  assert.is((await api.call('GET', `/api/v1/apps/${app}`)).status, 404);
  // The preview says the same before anyone tries.
  const preview = await api.call('POST', '/api/v1/apps/preview', { spec: specWith('cap_add: [NET_ADMIN]') });
  assert.is(preview.status, 200);
  assert.equal(preview.body.permissionsNeeded.map((p: any) => [p.id, p.granted]), [['capabilities', false]]);
});

test('the catalog says which templates ask for grants, and installing one asks for them', async () => {
  const { body } = await api.call('GET', '/api/v1/catalog');
  const byName = Object.fromEntries(body.apps.map((entry: any) => [entry.name, entry]));
  assert.equal(byName['home-assistant'].permissions, ['host_network']);
  assert.equal(byName['vaultwarden'].permissions, []);
  assert.is(byName['nextcloud'].images.length, 3);
  const refused = await api.call('POST', '/api/v1/apps', { catalog: 'dozzle' });
  assert.is(refused.status, 403);
  assert.equal(refused.body.error.details.map((p: any) => p.id), ['engine_socket']);
});

test('a grant needs the app name typed; an unknown permission id is a 400 naming the field', async () => {
  const unconfirmed = await api.call('POST', '/api/v1/apps', { spec: specWith('cap_add: [NET_ADMIN]'), grants: ['capabilities'] });
  assert.is(unconfirmed.status, 400);
  assert.match(unconfirmed.body.error.message, /^confirm: type the app's name/);
  const wrong = await api.call('POST', '/api/v1/apps', { spec: specWith('cap_add: [NET_ADMIN]'), grants: ['capabilities'], confirm: 'something-else' });
  assert.is(wrong.status, 400);
  const unknown = await api.call('POST', '/api/v1/apps', { spec: specWith('cap_add: [NET_ADMIN]'), grants: ['root'], confirm: app });
  assert.is(unknown.status, 400);
  assert.match(JSON.stringify(unknown.body.error), /grants/);
  assert.is((await api.call('GET', `/api/v1/apps/${app}`)).status, 404);
});

test('granted and confirmed: installed with the capability, the grant recorded and audited', async () => {
  const installed = await api.call('POST', '/api/v1/apps', { spec: specWith('cap_add: [NET_ADMIN]'), grants: ['capabilities'], confirm: app });
  assert.is(installed.status, 202, JSON.stringify(installed.body));
  await jobDone(api, installed.body.job, 180_000);
  const view = await api.call('GET', `/api/v1/apps/${app}`);
  assert.equal(view.body.granted, ['capabilities']);
  const containers = await podman.docker.listContainers({ all: true, filters: { label: [`piccolo.app=${app}`] } });
  assert.is(containers.length, 1);
  const inspect = await podman.docker.getContainer(containers[0]!.Id).inspect();
  assert.ok((inspect.HostConfig.CapAdd ?? []).some((cap: string) => /NET_ADMIN$/.test(cap)), JSON.stringify(inspect.HostConfig.CapAdd));
  const audit = await api.call('GET', '/api/v1/system/audit?limit=50');
  assert.ok(audit.body.entries.some((e: any) => e.event === 'app.grant' && e.detail === `${app}: capabilities`), JSON.stringify(audit.body.entries.slice(-5)));
});

test('GET permissions: what the installed spec gives, in the preview\'s words; an unknown app is a 404; signed out, 401', async () => {
  const answer = await api.call('GET', `/api/v1/apps/${app}/permissions`);
  assert.is(answer.status, 200, JSON.stringify(answer.body));
  // Internet is denied by default (no "internet" entry); an HTTP listener gets a relay port by default.
  assert.equal(answer.body.permissions.map((p: any) => p.id), ['lan-listener:web', 'remote-listener:web']);
  const [web, remote] = answer.body.permissions;
  assert.match(remote.detail, /^Published through the relay on ports? [\d, ]+, behind the device sign-in\.$/, remote.detail);
  assert.is(web.title, 'Web service "web" on your network');
  assert.match(web.detail, new RegExp(`^Reachable at web-${app}\\.[a-z0-9-]+\\.local for people signed in`));
  const unknown = await api.call('GET', `/api/v1/apps/${app}-nope/permissions`);
  assert.is(unknown.status, 404);
  assert.is(unknown.body.error.code, 'not_found');
  assert.match(unknown.body.error.message, new RegExp(`no app named ${app}-nope`));
  const stranger = await fetch(`${api.base}/api/v1/apps/${app}/permissions`);
  assert.is(stranger.status, 401);
});

test('update: the same grant holds without asking again; asking for more asks again', async () => {
  const same = await api.call('PUT', `/api/v1/apps/${app}`, { spec: specWith('cap_add: [NET_ADMIN]', 'environment: { MODE: two }') });
  assert.is(same.status, 202, JSON.stringify(same.body));
  await jobDone(api, same.body.job, 180_000);
  const more = await api.call('PUT', `/api/v1/apps/${app}`, { spec: specWith('cap_add: [NET_ADMIN, SYS_TIME]') });
  assert.is(more.status, 403);
  assert.equal(more.body.error.details.map((p: any) => p.items), [['NET_ADMIN', 'SYS_TIME']]);
  const preview = await api.call('POST', '/api/v1/apps/preview', { spec: specWith('cap_add: [NET_ADMIN]') });
  assert.equal(preview.body.permissionsNeeded.map((p: any) => [p.id, p.granted]), [['capabilities', true]], 'the installed grant is shown as held');
  const uninstall = await api.call('DELETE', `/api/v1/apps/${app}`, { confirm: app, purge: true });
  assert.is(uninstall.status, 202);
  await jobDone(api, uninstall.body.job, 120_000);
});

test.run();
