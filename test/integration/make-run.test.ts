// `make run` as a developer uses it: scripts/run-dev.ts as a child with its own .dev folder
// (PICCOLO_DEV_DIR) and ports. It brings its own Podman API service and a loopback registry; an
// app pushed to that registry installs through the API on the proxy's port, with its data in an
// encrypted volume. A Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stops
// everything: the app's container, the decrypted volumes, the engine and the registry.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { REPO_ROOT, TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { freePort } from '../../image/qemu.js';
import { jobDone } from '../support/jobs.js';
import { setUpDevice } from '../support/portal.js';
import { mountsUnder, removeTestDir, waitFor } from '../support/processes.js';
import { startPodman, type TestPodman } from '../support/podman.js';

const devDir = mkdtempSync(path.join(tmpdir(), 'piccolo-make-run-'));
let podman: TestPodman;
let run: ChildProcess | undefined;
let output = '';
let exited: Promise<number | null>;
let proxy = '';
let registryPort = 0;
let app = '';
let pulled = '';

test.before(async () => {
  try {
    await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
    // Only to build the test image and to look at the engine from outside; make run has its own service.
    podman = await startPodman();
    app = `${podman.prefix}devapp`;
    const [proxyPort, daemonPort, healthPort, tunnelPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    registryPort = await freePort();
    proxy = `http://127.0.0.1:${proxyPort}`;
    run = spawn(path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), [path.join(REPO_ROOT, 'scripts', 'run-dev.ts')], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        PICCOLO_DEV_DIR: devDir,
        PICCOLO_BUNDLE_DIR: TEST_BUNDLE_DIR,
        PICCOLO_DEV_REGISTRY_PORT: String(registryPort),
        PICCOLO_PROXY_LISTEN: `127.0.0.1:${proxyPort}`,
        PICCOLO_DAEMON_LISTEN: `127.0.0.1:${daemonPort}`,
        PICCOLO_HEALTH_LISTEN: `127.0.0.1:${healthPort}`,
        PICCOLO_TUNNEL_LISTEN: `127.0.0.1:${tunnelPort}`,
      },
      // Its own process group, so that the test can send the group a Ctrl-C as a terminal does.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    run.stdout!.on('data', (chunk: Buffer) => (output += chunk));
    run.stderr!.on('data', (chunk: Buffer) => (output += chunk));
    exited = new Promise((resolve) => run!.once('exit', (code) => resolve(code)));
    await waitFor(() => {
      if (run!.exitCode !== null) throw new Error(`make run exited (${run!.exitCode}): ${output}`);
      return output.includes('setup wizard');
    }, 60_000, `make run started: ${output}`);
    await waitFor(async () => (await fetch(`${proxy}/api/v1/setup/status`).then((res) => res.ok, () => false)) || undefined, 30_000, `the portal answers through the proxy: ${output}`);
  } catch (err) {
    console.error('before failed:', err, output);
    throw err;
  }
});

test.after(async () => {
  if (process.env.PICCOLO_MAKE_RUN_LOG) (await import('node:fs')).writeFileSync(process.env.PICCOLO_MAKE_RUN_LOG, output);
  if (run && run.exitCode === null) process.kill(-run.pid!, 'SIGKILL');
  if (pulled) await podman?.docker.getImage(pulled).remove({ force: true }).catch(() => {});
  await podman?.stop();
  removeTestDir(devDir);
});

test('an app pushed to make run\'s registry installs through the API on the proxy port', async () => {
  const local = await podman.buildHttpdImage('dev1', '<h1>hello from make run</h1>');
  pulled = `127.0.0.1:${registryPort}/${podman.prefix}-devapp:1`;
  await new Promise<void>((resolve, reject) =>
    spawn('podman', ['push', '-q', '--tls-verify=false', local, pulled], { stdio: 'inherit' }).once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`push: ${code}`)))),
  );
  // The daemon pulls it, as it would from any registry: make sure it is not already here.
  await podman.docker.getImage(pulled).remove({ force: true }).catch(() => {});
  const api = await setUpDevice(proxy, path.join(devDir, 'state'));
  await waitFor(async () => ((await api.call('GET', '/api/v1/apps')).status === 200 ? true : undefined), 30_000, 'apps available');
  const spec = [`name: ${app}`, `image: ${pulled}`, 'listeners:', '  - name: web', '    guest_port: 80', '    protocol: http', 'storage:', '  persistent:', '    data:', '      container: /data'].join('\n');
  const install = await api.call('POST', '/api/v1/apps', { spec });
  assert.is(install.status, 202, JSON.stringify(install.body));
  await jobDone(api, install.body.job, 120_000);
  const view = (await api.call('GET', `/api/v1/apps/${app}`)).body;
  assert.is(view.state, 'running', JSON.stringify(view));
  assert.match(await (await fetch(view.services[0].localUrl)).text(), 'hello from make run');
  assert.ok(mountsUnder(devDir).some((mountpoint) => mountpoint.includes(`app-${app}`)), `the app's volume is mounted: ${mountsUnder(devDir)}`);
});

test('a Ctrl-C stops the app, closes every decrypted volume, and stops the engine and the registry', async () => {
  process.kill(-run!.pid!, 'SIGINT');
  const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 120_000))]);
  assert.is(code, 0, output.slice(-3000));
  assert.match(output, 'run: stopped');
  assert.equal(mountsUnder(devDir), [], 'nothing is left mounted under the dev folder');
  assert.not.match(output, 'detached a mount the daemon left', 'the daemon closed its volumes itself');
  const containers = await podman.docker.listContainers({ all: true, filters: { label: [`piccolo.app=${app}`] } });
  assert.equal(containers.filter((c) => c.State === 'running').map((c) => c.Names), [], 'no container of the app is left running');
  const devEngine = new Docker({ socketPath: path.join(devDir, 'podman.sock') });
  assert.is(await devEngine.ping().then(() => 'answers', () => 'gone'), 'gone', 'make run\'s Podman service stopped');
  assert.is(await fetch(`http://127.0.0.1:${registryPort}/v2/`).then(() => 'answers', () => 'gone'), 'gone', 'the registry stopped');
  assert.ok(!existsSync(path.join(devDir, 'state', 'volumes', `app-${app}`, 'mnt', 'data')), 'the app data is not readable in the clear');
});

test.run();
