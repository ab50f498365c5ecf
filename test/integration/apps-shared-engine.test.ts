// Apps on an engine that is not this daemon's alone (the test suites run many daemons against
// one Podman), and the faults seen when the daemon was killed from outside: new apps' ports skip
// what other containers publish, running or not; an app whose subnet another network took while
// it had none moves to a free one; uninstall without purge closes the app's volume at once; a stop
// job resumed after a kill waits until Podman has really stopped the container, so the next start
// does not fail with PortInUseError.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { ApiSession } from '../support/api-session.js';
import { jobDone } from '../support/jobs.js';
import { setUpWithApps, TEST_PASSWORD } from '../support/portal.js';
import { mountsUnder, removeTestDir, startTestDaemon, waitFor, type ServiceProcess } from '../support/processes.js';
import { startPodman, type TestPodman } from '../support/podman.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-shared-engine-'));
const stateDir = path.join(dir, 'state');
let podman: TestPodman;
let daemon: ServiceProcess;
let api: ApiSession;
let image = '';
const foreign: { containers: string[]; networks: string[] } = { containers: [], networks: [] };

async function startDaemon(): Promise<string> {
  const started = await startTestDaemon(stateDir, { PICCOLO_PODMAN_SOCKET: podman.socketPath });
  daemon = started.proc;
  return started.api;
}

function specOf(name: string, storage = false, extra: string[] = []): string {
  const lines = [`name: ${name}`, `image: ${image}`, ...extra, 'listeners:', '  - name: web', '    guest_port: 80', '    protocol: http'];
  if (storage) lines.push('storage:', '  persistent:', '    data:', '      container: /data');
  return lines.join('\n');
}

async function install(name: string, storage = false, extra: string[] = []): Promise<any> {
  const answer = await api.call('POST', '/api/v1/apps', { spec: specOf(name, storage, extra) });
  assert.is(answer.status, 202, JSON.stringify(answer.body));
  await jobDone(api, answer.body.job);
  return (await api.call('GET', `/api/v1/apps/${name}`)).body;
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

const volumeMounted = (app: string) => mountsUnder(stateDir).some((mountpoint) => mountpoint.includes(`/app-${app}/`));

test.before(async () => {
  try {
    await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
    podman = await startPodman();
    image = await podman.buildHttpdImage('v1', '<h1>shared</h1>');
    api = await setUpWithApps(await startDaemon(), stateDir);
  } catch (err) {
    console.error('before failed:', err);
    throw err;
  }
});

test.after(async () => {
  await daemon?.kill('SIGTERM');
  for (const id of foreign.containers) await podman.docker.getContainer(id).remove({ force: true }).catch(() => {});
  for (const id of foreign.networks) await podman.docker.getNetwork(id).remove().catch(() => {});
  await podman?.stop();
  removeTestDir(dir);
});

test('a new app\'s host port skips one that a stopped container of someone else publishes', async () => {
  // The port this daemon would take: the lowest that nothing listens on and no container publishes.
  const published = new Set((await podman.docker.listContainers({ all: true })).flatMap((c) => c.Ports.map((p) => p.PublicPort)));
  let port = 15000;
  while (published.has(port) || !(await bindable(port))) port++;
  // Another daemon's app, created but not running: nothing listens on its port until it starts.
  const other = await podman.docker.createContainer({
    name: `${podman.prefix}-foreign`,
    Image: image,
    ExposedPorts: { '80/tcp': {} },
    HostConfig: { PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] } },
  });
  foreign.containers.push(other.id);
  assert.ok(await bindable(port), 'the port is free on the host');
  const view = await install(`${podman.prefix}ports`);
  assert.is.not(view.services[0].hostBindPort, port, `took ${view.services[0].hostBindPort}, not the stopped container's ${port}`);
});

test('uninstall without purge closes the app\'s volume at once; reinstalled, the data is back', async () => {
  const app = `${podman.prefix}keep`;
  await install(app, true);
  assert.ok(volumeMounted(app), 'mounted while installed');
  const plain = path.join(stateDir, 'volumes', `app-${app}`, 'mnt', 'data', 'note.txt');
  writeFileSync(plain, 'kept across a reinstall');
  const removal = await api.call('DELETE', `/api/v1/apps/${app}`, { confirm: app });
  assert.is(removal.status, 202, JSON.stringify(removal.body));
  await jobDone(api, removal.body.job);
  assert.not.ok(volumeMounted(app), `closed after the uninstall: ${mountsUnder(stateDir)}`);
  assert.not.ok(existsSync(plain), 'not readable in the clear');
  assert.ok(existsSync(path.join(stateDir, 'volumes', `app-${app}`)), 'the encrypted data stays');
  await install(app, true);
  assert.is(readFileSync(plain, 'utf8'), 'kept across a reinstall');
});

test('an app whose subnet another network took while it had none moves to a free one', async () => {
  const app = `${podman.prefix}moves`;
  await install(app);
  const network = podman.docker.getNetwork(`piccolo-${app}`);
  const subnet = (await network.inspect()).IPAM?.Config?.[0]?.Subnet as string;
  // The daemon stops (apps keep running); meanwhile the app's container and network go, and
  // someone else's network takes its subnet.
  await daemon.kill('SIGTERM');
  await podman.docker.getContainer(`piccolo-${app}`).remove({ force: true });
  await network.remove();
  const squatter = await podman.docker.createNetwork({ Name: `${podman.prefix}-squatter`, IPAM: { Driver: 'default', Config: [{ Subnet: subnet }] } });
  foreign.networks.push(squatter.id);
  api = new ApiSession(await startDaemon());
  assert.is((await api.call('POST', '/api/v1/crypto/unlock', { password: TEST_PASSWORD })).status, 200);
  const view = await waitFor(async () => {
    const answer = await api.call('GET', `/api/v1/apps/${app}`);
    return answer.status === 200 && answer.body.state === 'running' ? answer.body : undefined;
  }, 60_000, 'the app runs again');
  const moved = (await podman.docker.getNetwork(`piccolo-${app}`).inspect()).IPAM?.Config?.[0]?.Subnet;
  assert.is.not(moved, subnet, 'on a subnet of its own');
  assert.match(await (await fetch(view.services[0].localUrl)).text(), 'shared');
  assert.ok(daemon.logs.some((line) => line.msg === 'the app\'s subnet was taken by another network; it moves' && line.from === subnet));
});

test('a stop job resumed after a kill waits until Podman has stopped the container; start then works', async () => {
  const app = `${podman.prefix}slow`;
  // busybox httpd as PID 1 ignores SIGTERM: the engine stops it only at the end of its grace
  // period, long enough for the daemon to be killed and to come back meanwhile (here ~3 s).
  await install(app, false, ['stop_grace_period: 30s']);
  const container = podman.docker.getContainer(`piccolo-${app}`);
  const stop = await api.call('POST', `/api/v1/apps/${app}/stop`);
  assert.is(stop.status, 202);
  // Loaded by other suites' daemons, the job may take a while to reach the engine.
  await waitFor(async () => ((await container.inspect()).State.Status === 'stopping' ? true : undefined), 45_000, 'Podman says stopping');
  await daemon.kill('SIGKILL');
  api = new ApiSession(await startDaemon());
  // Locked, the new daemon has not touched the apps yet: the stop is still under way.
  assert.is((await container.inspect()).State.Status, 'stopping', 'the daemon came back while the stop was still under way');
  assert.is((await api.call('POST', '/api/v1/crypto/unlock', { password: TEST_PASSWORD })).status, 200);
  await waitFor(async () => ((await api.call('GET', '/api/v1/apps')).status === 200 ? true : undefined), 60_000, 'apps available');
  const job = await jobDone(api, stop.body.job, 120_000);
  assert.ok(job.resumed, 'the job was resumed');
  const state = (await container.inspect()).State;
  assert.is(state.Status, 'exited', `the job ended only once the container had stopped: ${state.Status}`);
  assert.ok(Date.parse(job.updatedAt as string) >= Date.parse(state.FinishedAt) - 1000, `job ended ${job.updatedAt}, container stopped ${state.FinishedAt}`);
  const start = await api.call('POST', `/api/v1/apps/${app}/start`);
  assert.is(start.status, 202);
  await jobDone(api, start.body.job);
  assert.is((await api.call('GET', `/api/v1/apps/${app}`)).body.state, 'running');
});

test.run();
