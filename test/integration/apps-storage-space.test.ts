// Room for an image before its pull, end to end: the engine (a private Podman) keeps its images on
// a small tmpfs, the images come from a loopback registry. An image too big for it is refused at
// install with 507 insufficient_storage naming needed and free, before anything is pulled or
// installed; an update to it is refused the same way and the app keeps running; a small image
// installs on the same storage. Real daemon bundle, real Podman, real registry, real statfs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import type { ApiSession } from '../support/api-session.js';
import { jobDone } from '../support/jobs.js';
import { removeRunObjects, startPodmanService, type PodmanService } from '../support/podman.js';
import { setUpWithApps } from '../support/portal.js';
import { removeTestDir, startTestDaemon, type ServiceProcess } from '../support/processes.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-apps-space-'));
const stateDir = path.join(dir, 'state');
const graphRoot = path.join(dir, 'graph');
const TMPFS_BYTES = 48 * 2 ** 20;
const prefix = `t${Date.now().toString(36).slice(-5)}`;
const localImages: string[] = [];
let registry: TestRegistry;
let podman: PodmanService;
let daemon: ServiceProcess;
let api: ApiSession;
let small = '';
let big = '';

/** A busybox httpd image with `padBytes` of random (incompressible) data, imported into the CLI's Podman. */
function buildImage(name: string, padBytes: number): string {
  const root = path.join(dir, `root-${name}`);
  mkdirSync(path.join(root, 'bin'), { recursive: true });
  mkdirSync(path.join(root, 'www'));
  copyFileSync('/bin/busybox', path.join(root, 'bin', 'busybox'));
  for (const applet of ['sh', 'httpd']) symlinkSync('busybox', path.join(root, 'bin', applet));
  writeFileSync(path.join(root, 'www', 'index.html'), `<h1>${name}</h1>`);
  if (padBytes) writeFileSync(path.join(root, 'pad.bin'), randomBytes(padBytes));
  execFileSync('tar', ['-C', root, '-cf', `${root}.tar`, '.']);
  const image = `localhost/${prefix}-${name}:1`;
  execFileSync('podman', ['import', '-q', '--change', 'CMD ["/bin/httpd","-f","-p","80","-h","/www"]', `${root}.tar`, image]);
  localImages.push(image);
  return image;
}

const specFor = (name: string, image: string) => [`name: ${name}`, `image: ${image}`, 'listeners:', '  - { name: web, guest_port: 80, protocol: http }'].join('\n');

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  mkdirSync(graphRoot);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_BYTES}`, 'tmpfs', graphRoot]);
  registry = await startRegistry();
  small = await registry.push(buildImage('small', 0), `${prefix}/small:1`);
  big = await registry.push(buildImage('big', 64 * 2 ** 20), `${prefix}/big:1`);
  podman = await startPodmanService({ socketPath: path.join(dir, 'podman.sock'), registriesConf: registry.registriesConf, storageRoot: graphRoot });
  let base: string;
  // A small reserve: the tmpfs is the limit here, not the device's default margin.
  ({ proc: daemon, api: base } = await startTestDaemon(stateDir, { PICCOLO_PODMAN_SOCKET: podman.socketPath, PICCOLO_IMAGE_SPACE_RESERVE_BYTES: String(2 ** 20) }));
  api = await setUpWithApps(base, stateDir);
});

test.after(async () => {
  await daemon?.kill('SIGTERM');
  if (podman) {
    await removeRunObjects(podman.docker, prefix).catch(() => {});
    for (const image of await podman.docker.listImages().catch(() => [])) await podman.docker.getImage(image.Id).remove({ force: true }).catch(() => {});
    await podman.stop();
  }
  await registry?.stop();
  for (const image of localImages) {
    try {
      execFileSync('podman', ['rmi', '-f', image], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
  try {
    // Podman's overlay driver leaves its own mount inside its root: recursively.
    execFileSync('umount', ['-R', graphRoot]);
  } catch {
    // not mounted (before() failed early)
  }
  removeTestDir(dir);
});

test('the engine keeps its images on the small tmpfs (what the check must read)', async () => {
  const info = (await new Promise<unknown>((resolve, reject) =>
    podman.docker.modem.dial({ path: '/v4.0.0/libpod/info', method: 'GET', statusCodes: { 200: true } }, (err, data) => (err ? reject(err) : resolve(data as unknown))),
  )) as { store: { graphRoot: string } };
  assert.is(info.store.graphRoot, graphRoot);
});

test('an image bigger than the free space: 507 insufficient_storage naming needed and free; nothing pulled or installed', async () => {
  const name = `${prefix}big`;
  const refused = await api.call('POST', '/api/v1/apps', { spec: specFor(name, big) });
  assert.is(refused.status, 507, JSON.stringify(refused.body));
  const { code, message, details } = refused.body.error;
  assert.is(code, 'insufficient_storage');
  assert.is(details.path, graphRoot);
  // The registry's manifest: the random 64 MiB do not compress.
  assert.ok(details.compressedBytes > 64 * 2 ** 20 && details.compressedBytes < 70 * 2 ** 20, String(details.compressedBytes));
  assert.ok(details.freeBytes <= TMPFS_BYTES && details.freeBytes > 40 * 2 ** 20, String(details.freeBytes));
  assert.ok(details.neededBytes > details.freeBytes);
  assert.match(message, new RegExp(`^not enough free space to pull ${big.replace(/[.]/g, '\\.')}: needs about \\d+ MB on ${graphRoot}`));
  assert.match(message, /\d+ MB free; nothing was pulled$/);
  assert.is((await api.call('GET', `/api/v1/apps/${name}`)).status, 404);
  const jobs = await api.call('GET', '/api/v1/jobs');
  assert.not.ok(JSON.stringify(jobs.body).includes(name), 'no job was made');
  const images = await podman.docker.listImages();
  assert.not.ok(JSON.stringify(images).includes(`${prefix}/big`), 'nothing was pulled');
});

test('a small image installs on the same storage; an update to the big one is refused and the app keeps running', async () => {
  const name = `${prefix}small`;
  const installed = await api.call('POST', '/api/v1/apps', { spec: specFor(name, small) });
  assert.is(installed.status, 202, JSON.stringify(installed.body));
  await jobDone(api, installed.body.job, 180_000);
  const update = await api.call('PUT', `/api/v1/apps/${name}`, { spec: specFor(name, big) });
  assert.is(update.status, 507, JSON.stringify(update.body));
  assert.is(update.body.error.code, 'insufficient_storage');
  const view = await api.call('GET', `/api/v1/apps/${name}`);
  assert.is(view.body.revision, 1);
  assert.is(view.body.state, 'running');
  const port = view.body.services[0].hostBindPort;
  assert.is(await (await fetch(`http://127.0.0.1:${port}/`)).text(), '<h1>small</h1>');
});

test.run();
