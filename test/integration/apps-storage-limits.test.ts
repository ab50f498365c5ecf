// Size limits over the API, end to end: a write past a volume's size_limit (a persistent volume,
// its own ext4 file system inside the encrypted volume; a temporary one, a tmpfs) fails with
// ENOSPC in the app; a limit is fixed once the volume is made; files kept from an earlier install
// move into a new limit or are refused when they do not fit; resources.limits.storage is refused.
// Real daemon bundle, real Podman, real gocryptfs and loop devices.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import type { ApiSession } from '../support/api-session.js';
import { jobDone } from '../support/jobs.js';
import { startPodman, type TestPodman } from '../support/podman.js';
import { startAppsDaemon } from '../support/portal.js';
import { removeTestDir, waitFor, type ServiceProcess } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-apps-storage-limits-'));
const stateDir = path.join(dir, 'state');
let podman: TestPodman;
let daemon: ServiceProcess;
let api: ApiSession;
let image = '';
let fillerImage = '';

async function hostPort(app: string): Promise<number> {
  return (await api.call('GET', `/api/v1/apps/${app}`)).body.services[0].hostBindPort;
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  podman = await startPodman();
  image = await podman.buildHttpdImage('limits', '<h1>limits</h1>');
  ({ daemon, api } = await startAppsDaemon(stateDir, podman.socketPath));
});

test.after(async () => {
  await daemon?.kill('SIGTERM');
  await podman?.stop();
  removeTestDir(dir);
});

/** An app that fills its limited volume and its limited tmpfs, and serves what dd said. */
const limitedSpec = (name: string, fillerImage: string, dataLimit = '8Mi') =>
  [
    `name: ${name}`,
    `image: ${fillerImage}`,
    'listeners:',
    '  - { name: web, guest_port: 80, protocol: http }',
    'storage:',
    '  persistent:',
    `    data: { container: /data, size_limit: ${dataLimit} }`,
    '  temporary:',
    '    scratch: { container: /scratch, size_limit: 4Mi }',
  ].join('\n');

test('size limits: a write past a volume\'s size_limit (persistent and temporary) fails with ENOSPC in the app', async () => {
  fillerImage = await podman.buildBusyboxImage('filler', {
    applets: ['sh', 'httpd', 'dd', 'echo', 'cat', 'ls', 'wc'],
    files: {
      '/fill.sh': {
        mode: 0o755,
        content: [
          '#!/bin/sh',
          // 20 MiB into each: far past both limits.
          'dd if=/dev/zero of=/data/fill bs=1048576 count=20 2> /www/data.err; echo $? > /www/data.code',
          'wc -c < /data/fill > /www/data.bytes',
          'dd if=/dev/zero of=/scratch/fill bs=1048576 count=20 2> /www/scratch.err; echo $? > /www/scratch.code',
          'wc -c < /scratch/fill > /www/scratch.bytes',
          'exec httpd -f -p 80 -h /www',
        ].join('\n'),
      },
    },
    cmd: ['/fill.sh'],
  });
  const name = `${podman.prefix}limited`;
  const installed = await api.call('POST', '/api/v1/apps', { spec: limitedSpec(name, fillerImage) });
  assert.is(installed.status, 202, JSON.stringify(installed.body));
  await jobDone(api, installed.body.job, 180_000);
  const port = await hostPort(name);
  const read = (file: string) =>
    waitFor(async () => {
      const res = await fetch(`http://127.0.0.1:${port}/${file}`).catch(() => undefined);
      return res?.ok ? (await res.text()).trim() : undefined;
    }, 30_000, file);
  for (const [volume, limit] of [['data', 8 * 2 ** 20], ['scratch', 4 * 2 ** 20]] as const) {
    assert.is(await read(`${volume}.code`), '1', `dd into ${volume} failed`);
    assert.match(await read(`${volume}.err`), /No space left on device/);
    const stored = Number(await read(`${volume}.bytes`));
    assert.ok(stored > limit / 2 && stored <= limit, `${volume}: ${stored} bytes stored, limit ${limit}`);
  }
  // What the app's page shows: the limits, and what the limited volume stores now.
  const storage = (await api.call('GET', `/api/v1/apps/${name}/storage`)).body;
  const [data, scratch] = storage.volumes;
  assert.equal([data.name, data.kind, data.limitBytes, scratch.name, scratch.kind, scratch.limitBytes], ['data', 'persistent', 8 * 2 ** 20, 'scratch', 'temporary', 4 * 2 ** 20]);
  assert.ok(data.usedBytes > 4 * 2 ** 20 && data.usedBytes <= 8 * 2 ** 20, String(data.usedBytes));
  assert.is(scratch.usedBytes, undefined, 'a tmpfs is measured nowhere here');
  // The limited file system is an image inside the app's encrypted volume, loop-mounted on the folder.
  const mnt = path.join(stateDir, 'volumes', `app-${name}`, 'mnt');
  const mounts = execFileSync('findmnt', ['-rn', '-o', 'TARGET,FSTYPE'], { encoding: 'utf8' });
  assert.ok(mounts.split('\n').includes(`${path.join(mnt, 'data')} ext4`), mounts);
  assert.ok(execFileSync('ls', ['-a', path.join(mnt, '.size-limits')], { encoding: 'utf8' }).includes('data.ext4'));
  // Purging the app unmounts the limited folder before its volume, and leaves no mount behind.
  const uninstall = await api.call('DELETE', `/api/v1/apps/${name}`, { confirm: name, purge: true });
  assert.is(uninstall.status, 202);
  await jobDone(api, uninstall.body.job, 240_000);
  const after = execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' });
  assert.not.ok(after.includes(`app-${name}`), after);
});

/** The size of the file system mounted at `dir`, in bytes (df). */
const fileSystemBytes = (dir: string) => Number(execFileSync('df', ['-B1', '--output=size', dir], { encoding: 'utf8' }).split('\n')[1]!.trim());

test('a limit is fixed once the volume is made: an update that changes, drops or adds one is refused with a 400 naming the field', async () => {
  const name = `${podman.prefix}fixed`;
  const installed = await api.call('POST', '/api/v1/apps', { spec: limitedSpec(name, fillerImage) });
  assert.is(installed.status, 202, JSON.stringify(installed.body));
  await jobDone(api, installed.body.job, 180_000);
  const data = path.join(stateDir, 'volumes', `app-${name}`, 'mnt', 'data');
  const size = fileSystemBytes(data);
  assert.ok(size > 6 * 2 ** 20 && size <= 8 * 2 ** 20, String(size));
  for (const [limit, expected] of [
    ['16Mi', 'storage.persistent.data.size_limit: cannot change from 8Mi to 16Mi: the volume data is its own file system of 8Mi, fixed when it was made'],
    ['4Mi', 'storage.persistent.data.size_limit: cannot change from 8Mi to 4Mi: the volume data is its own file system of 8Mi, fixed when it was made'],
  ] as const) {
    for (const [method, route] of [['PUT', `/api/v1/apps/${name}`], ['POST', '/api/v1/apps/preview']] as const) {
      const refused = await api.call(method, route, { spec: limitedSpec(name, fillerImage, limit) });
      assert.is(refused.status, 400, JSON.stringify(refused.body));
      assert.equal(refused.body.error.details, [expected]);
    }
  }
  const dropped = await api.call('PUT', `/api/v1/apps/${name}`, { spec: limitedSpec(name, fillerImage).replace(', size_limit: 8Mi', '') });
  assert.is(dropped.status, 400);
  assert.equal(dropped.body.error.details, ['storage.persistent.data.size_limit: cannot be removed: the volume data is its own file system of 8Mi; keep size_limit: 8Mi']);
  const view = await api.call('GET', `/api/v1/apps/${name}`);
  assert.is(view.body.revision, 1);
  assert.is(view.body.state, 'running');
  assert.is(fileSystemBytes(data), size);
  // The same limit is no change: the update goes through, the file system and its data stay.
  const same = await api.call('PUT', `/api/v1/apps/${name}`, { spec: `${limitedSpec(name, fillerImage)}\nenvironment: { MODE: two }` });
  assert.is(same.status, 202, JSON.stringify(same.body));
  await jobDone(api, same.body.job, 180_000);
  assert.ok(Number(execFileSync('stat', ['-c', '%s', path.join(data, 'fill')], { encoding: 'utf8' })) > 4 * 2 ** 20);
});

test('files kept from an install without a limit move into the limit at a reinstall; files that do not fit are refused and stay', async () => {
  const keeper = await podman.buildBusyboxImage('keeper', {
    applets: ['sh', 'httpd', 'dd', 'cp', 'echo'],
    files: {
      '/start.sh': {
        mode: 0o755,
        content: '#!/bin/sh\nif [ ! -f /data/marker ]; then echo "$MARK" > /data/marker; dd if=/dev/zero of=/data/blob bs=1048576 count=12 2>/dev/null; fi\ncp /data/marker /www/marker\nexec httpd -f -p 80 -h /www\n',
      },
    },
    cmd: ['/start.sh'],
  });
  const name = `${podman.prefix}keeper`;
  const spec = (limit?: string) =>
    [`name: ${name}`, `image: ${keeper}`, 'environment: { MARK: first-install }', 'listeners:', '  - { name: web, guest_port: 80, protocol: http }', 'storage:', '  persistent:', `    data: { container: /data${limit ? `, size_limit: ${limit}` : ''} }`].join('\n');
  const install = async (limit?: string) => {
    const answer = await api.call('POST', '/api/v1/apps', { spec: spec(limit) });
    assert.is(answer.status, 202, JSON.stringify(answer.body));
    return waitFor(async () => {
      const { body } = await api.call('GET', `/api/v1/jobs/${answer.body.job.id}`);
      return body.status === 'running' ? undefined : body;
    }, 180_000, 'the install job');
  };
  const uninstallKeepingData = async () => {
    const answer = await api.call('DELETE', `/api/v1/apps/${name}`, { confirm: name, purge: false });
    assert.is(answer.status, 202, JSON.stringify(answer.body));
    await jobDone(api, answer.body.job, 120_000);
  };
  const first = await install();
  assert.is(first.status, 'succeeded', JSON.stringify(first));
  await waitFor(async () => ((await fetch(`http://127.0.0.1:${await hostPort(name)}/marker`).catch(() => undefined))?.ok ? true : undefined), 30_000, 'the first install writes its data');
  await uninstallKeepingData();
  // 12 MiB of files do not fit in 8 MiB: refused by name, and the files stay where they were.
  const tooSmall = await install('8Mi');
  assert.is(tooSmall.status, 'failed');
  assert.match(tooSmall.error, /storage\.persistent\.data\.size_limit: the files already in the volume data do not fit in its limit/);
  await uninstallKeepingData();
  const volume = path.join(stateDir, 'volumes', `app-${name}`);
  const cipherBytes = Number(execFileSync('du', ['-sb', path.join(volume, 'cipher')], { encoding: 'utf8' }).split('\t')[0]);
  assert.ok(cipherBytes > 12 * 2 ** 20, `the files are still stored (${cipherBytes} bytes)`);
  // Enough room: they move in, and the app finds its first install's data there.
  const roomy = await install('32Mi');
  assert.is(roomy.status, 'succeeded', JSON.stringify(roomy));
  const marker = await waitFor(async () => {
    const res = await fetch(`http://127.0.0.1:${await hostPort(name)}/marker`).catch(() => undefined);
    return res?.ok ? res.text() : undefined;
  }, 30_000, 'the marker served');
  assert.is(marker.trim(), 'first-install');
  const data = path.join(volume, 'mnt', 'data');
  assert.ok(execFileSync('findmnt', ['-rn', '-o', 'TARGET,FSTYPE'], { encoding: 'utf8' }).split('\n').includes(`${data} ext4`));
  assert.is(Number(execFileSync('stat', ['-c', '%s', path.join(data, 'blob')], { encoding: 'utf8' })), 12 * 2 ** 20);
  const purge = await api.call('DELETE', `/api/v1/apps/${name}`, { confirm: name, purge: true });
  await jobDone(api, purge.body.job, 240_000);
});

test('resources.limits.storage is refused with a 400 naming the field and why, at install and preview', async () => {
  const spec = [`name: ${podman.prefix}total`, `image: ${image}`, 'listeners:', '  - { name: web, guest_port: 80, protocol: http }', 'resources: { limits: { storage: 10Gi } }'].join('\n');
  for (const route of ['/api/v1/apps', '/api/v1/apps/preview']) {
    const refused = await api.call('POST', route, { spec });
    assert.is(refused.status, 400, JSON.stringify(refused.body));
    assert.ok(refused.body.error.details.some((d: string) => d.startsWith('resources.limits.storage: cannot be enforced on this device')), JSON.stringify(refused.body.error));
  }
});

test.run();
