// Leadership hooks end to end: the real daemon bundle (test build, whose hook plays the cluster
// engine), real Podman, an app from a locally built busybox image. A follower event for the app
// stops its container and withdraws its proxy route (tunnel mode), leader again brings it back;
// a kernel follower refuses management writes with a 409 naming the leader, and still reads.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { REMOTE_PATHS, type RemoteTable } from '../../services/common/remote-contract.js';
import { INTERNAL_PATHS, type RouteTable } from '../../services/common/route-table.js';
import { UnixHttpClient } from '../../services/common/unix-http.js';
import { engineName } from '../../services/daemon/apps/container-spec.js';
import { startTestDaemon, removeTestDir, waitFor, type ServiceProcess } from '../support/processes.js';
import { ApiSession } from '../support/api-session.js';
import { startPodman, type TestPodman } from '../support/podman.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-leadership-'));
const stateDir = path.join(dir, 'state');
const internalSocket = path.join(dir, 'internal.sock');
const PASSWORD = 'Leadership-Secret-42';
const REMOTE = { relayUrl: 'wss://relay.example.com:8443/connect', deviceSecret: 'leadership-device-secret', portalHostname: 'portal.example.com', appDomain: 'apps.example.com' };
let podman: TestPodman;
let daemon: ServiceProcess;
let session: ApiSession;
let app = '';
const internal = new UnixHttpClient(internalSocket);

const call = (method: string, route: string, body?: unknown) => session.call(method, route, body);
const internalGet = async <T>(route: string): Promise<T> => JSON.parse((await internal.call(route, { timeoutMs: 5_000 })).body);
const appRoutes = async () => (await internalGet<RouteTable>(INTERNAL_PATHS.routes)).routes.filter((route) => route.app === app);
/** How the tunnel is told to treat the app's remote name. */
const remoteMode = async () => (await internalGet<RemoteTable>(REMOTE_PATHS.remote)).routes.find((route) => route.app === app)?.mode;
const storeFile = () => JSON.parse(readFileSync(path.join(stateDir, 'volumes', 'control', 'mnt', 'store', 'control.json'), 'utf8'));
/** Read back from Podman, never from the daemon: running, stopping (httpd ignores SIGTERM, so ~10 s), exited... */
const containerState = async () => (await podman.docker.getContainer(engineName(app)).inspect()).State.Status;
const page = async (port: number) => (await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined))?.text();

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  podman = await startPodman();
  app = `${podman.prefix}lead`;
  const image = await podman.buildHttpdImage('lead', '<h1>led here</h1>');
  let api: string;
  ({ proc: daemon, api } = await startTestDaemon(stateDir, { PICCOLO_PODMAN_SOCKET: podman.socketPath, PICCOLO_DAEMON_INTERNAL_SOCKET: internalSocket }));
  session = new ApiSession(api);
  const claimCode = readFileSync(path.join(stateDir, 'claim-code'), 'utf8').trim();
  const claim = await call('POST', '/api/v1/setup/claim', { claimCode });
  assert.is((await call('POST', '/api/v1/setup', { setupToken: claim.body.setupToken, password: PASSWORD, recoveryKeySaved: true })).status, 201);
  await waitFor(async () => ((await call('GET', '/api/v1/apps')).status === 200 ? true : undefined), 30_000, 'apps available');
  const install = await call('POST', '/api/v1/apps', { spec: `name: ${app}\nimage: ${image}\nlisteners:\n  - name: web\n    guest_port: 80\n    protocol: http\n` });
  assert.is(install.status, 202, JSON.stringify(install.body));
  await waitFor(async () => ((await call('GET', `/api/v1/apps/${app}`)).body.state === 'running' ? true : undefined), 60_000, 'app running');
  // Remote access on (no relay needed): the remote table then lists the app's name with its mode.
  const remote = await call('POST', '/api/v1/remote/configure', REMOTE);
  assert.is(remote.status, 200, JSON.stringify(remote.body));
});

test.after(async () => {
  internal.close();
  await daemon?.kill('SIGTERM');
  await podman?.stop();
  removeTestDir(dir);
});

test('a leader runs the app and the proxy has its route', async () => {
  assert.is(await containerState(), 'running');
  assert.is((await appRoutes()).length, 1);
  assert.is(await remoteMode(), 'local');
  assert.equal((await call('GET', `/api/v1/test/role?resource=app:${app}`)).body, { resource: `app:${app}`, role: 'leader', leader: 'piccolo.local', mode: 'local' });
});

test('a follower event for the app stops its container, withdraws its route, and puts it in tunnel mode', async () => {
  const hostPort = (await call('GET', `/api/v1/apps/${app}`)).body.services[0].hostBindPort;
  const flipped = await call('POST', '/api/v1/test/role', { resource: `app:${app}`, role: 'follower', leader: 'node-b.local' });
  assert.equal(flipped.body, { resource: `app:${app}`, role: 'follower', leader: 'node-b.local', mode: 'tunnel' });
  await waitFor(async () => ((await containerState()) === 'exited' ? true : undefined), 30_000, 'container stopped');
  assert.equal(await appRoutes(), [], 'no local proxy route for a follower app');
  assert.is(await remoteMode(), 'tunnel', 'the tunnel is told the name is led elsewhere');
  assert.is(await page(hostPort), undefined, 'nothing served locally');
  const view = (await call('GET', `/api/v1/apps/${app}`)).body;
  assert.is(view.state, 'stopped');
  assert.is(view.run, 'running', 'the desired state is kept');
  assert.ok(
    daemon.logs.some((line) => line.app === app && line.leader === 'node-b.local' && /tunnel mode/.test(String(line.msg))),
    'single-node mode logs the tunnel mode',
  );
  // Supervision (every 2 s, first restart after 2 s) must not bring a follower's app back.
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  assert.is(await containerState(), 'exited', 'still stopped after supervision rounds');
});

test('leader again, the app returns to its desired state and its route comes back', async () => {
  await call('POST', '/api/v1/test/role', { resource: `app:${app}`, role: 'leader' });
  await waitFor(async () => ((await containerState()) === 'running' ? true : undefined), 30_000, 'container running again');
  const hostPort = (await call('GET', `/api/v1/apps/${app}`)).body.services[0].hostBindPort;
  assert.match((await waitFor(async () => ((await page(hostPort))?.includes('led here') ? page(hostPort) : undefined), 20_000, 'page back'))!, /led here/);
  assert.is((await appRoutes()).length, 1);
  assert.is(await remoteMode(), 'local');
});

test('a kernel follower refuses management writes with a 409 naming the leader; reads still work', async () => {
  await call('POST', '/api/v1/test/role', { resource: 'kernel', role: 'follower', leader: 'node-b.local' });
  const refused = await call('POST', `/api/v1/apps/${app}/stop`);
  assert.is(refused.status, 409, JSON.stringify(refused.body));
  assert.is(refused.body.error.code, 'not_leader');
  assert.is(refused.body.error.details.leader, 'node-b.local');
  assert.match(refused.body.error.message, /node-b\.local/);
  assert.is((await call('POST', '/api/v1/auth/password', { currentPassword: PASSWORD, newPassword: 'Another-Secret-43' })).status, 409);
  assert.is((await call('POST', '/api/v1/remote/disable', { confirm: true })).status, 409);
  const apps = await call('GET', '/api/v1/apps');
  assert.is(apps.status, 200);
  assert.equal(apps.body.apps.map((a: any) => `${a.name}:${a.run}`), [`${app}:running`], 'the refused stop changed nothing');
  assert.is(await containerState(), 'running');
});

test('leader again, the same write goes through', async () => {
  await call('POST', '/api/v1/test/role', { resource: 'kernel', role: 'leader' });
  const stop = await call('POST', `/api/v1/apps/${app}/stop`);
  assert.is(stop.status, 202, JSON.stringify(stop.body));
  await waitFor(async () => ((await containerState()) === 'exited' ? true : undefined), 30_000, 'stopped by the user');
});

test('on the leader, a remote change bumps the control store rev, and remote access follows the store', async () => {
  const before = storeFile();
  assert.is(before.data.remote.enabled, true);
  assert.is((await call('POST', '/api/v1/remote/disable', { confirm: true })).status, 200);
  const after = storeFile();
  assert.ok(after.rev > before.rev, `rev ${before.rev} -> ${after.rev}`);
  assert.is(after.data.remote.enabled, false);
  assert.is((await internalGet<RemoteTable>(REMOTE_PATHS.remote)).enabled, false);
});

test('on the leader, a password change is an auth change in the control store: its rev bumps, old sessions end', async () => {
  const before = storeFile();
  const oldCookie = session.cookie;
  const changed = await call('POST', '/api/v1/auth/password', { currentPassword: PASSWORD, newPassword: 'Another-Secret-43' });
  assert.is(changed.status, 200, JSON.stringify(changed.body));
  const after = storeFile();
  assert.ok(after.rev > before.rev, `rev ${before.rev} -> ${after.rev}`);
  assert.is(before.data.auth.passwordChangedAt, undefined);
  assert.type(after.data.auth.passwordChangedAt, 'string');
  assert.is((await fetch(`${session.base}/api/v1/apps`, { headers: { cookie: oldCookie } })).status, 401, 'the session from before the change has ended');
  assert.is((await call('GET', '/api/v1/apps')).status, 200, 'the new session works');
});

test.run();
