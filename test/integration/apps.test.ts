// The app runtime against real Podman, with busybox httpd images built locally: install, stop,
// start, update, revert, uninstall, a reconcile after a killed daemon, isolation, internet deny
// and depends_on order. After each test nothing the apps publish may listen beyond 127.0.0.1.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createLogger } from '../../services/common/logger.js';
import { CONTROL_MIGRATIONS, CONTROL_SCHEMA_VERSION, initialControlDocument, type ControlDocument } from '../../services/daemon/control-document.js';
import { ControlStore } from '../../services/daemon/store/store.js';
import { Engine } from '../../services/daemon/apps/engine.js';
import { AppManager, type AppEvent } from '../../services/daemon/apps/manager.js';
import { normalizeSpec } from '../../services/daemon/apps/spec/normalize.js';
import type { AppSpec, AppSpecInput } from '../../services/daemon/apps/spec/types.js';
import { FolderAppVolumes } from '../../services/daemon/apps/volumes.js';
import { exposedBeyondLoopback, startPodman, type TestPodman } from '../support/podman.js';

const execFileAsync = promisify(execFile);
const logger = createLogger({ service: 'test', level: process.env.PICCOLO_TEST_LOG ? 'debug' : 'error' });

let podman: TestPodman;
let dir: string;
let imageV1 = '';
let imageV2 = '';
let store: ControlStore<ControlDocument> | undefined;
let manager: AppManager | undefined;
const events: AppEvent[] = [];
const publishedPorts = new Set<number>();

async function openManager(): Promise<AppManager> {
  store = await ControlStore.open<ControlDocument>({
    dir: path.join(dir, 'control'),
    logger,
    schemaVersion: CONTROL_SCHEMA_VERSION,
    migrations: CONTROL_MIGRATIONS,
    initial: initialControlDocument,
  });
  manager = new AppManager({
    store,
    // Marked as this run's, so its reconciles never take another suite's apps on the shared engine for strays.
    engine: new Engine({ docker: podman.docker, logger, stopTimeoutS: 2, instance: `apps-test-${podman.prefix}`, adopts: (app) => app.startsWith(podman.prefix) }),
    volumes: new FolderAppVolumes(path.join(dir, 'volumes')),
    logger,
    superviseIntervalMs: 300,
    healthIntervalMs: 500,
    // Long enough that the failed state between the crash and the restart is seen on a busy engine.
    restart: { initialMs: 1500, maxMs: 5000, stableMs: 10_000 },
  });
  manager.subscribe((event) => events.push(event));
  await manager.open();
  return manager;
}

/** As if the daemon were killed: nothing is stopped, the store's lock goes with the process. */
async function dropManager(): Promise<void> {
  await manager?.close();
  await store?.close();
  manager = undefined;
  store = undefined;
}

function spec(name: string, input: Partial<AppSpecInput> = {}): AppSpec {
  return normalizeSpec({ name: `${podman.prefix}${name}`, image: imageV1, listeners: [{ name: 'web', guest_port: 80, protocol: 'http' }], permissions: { network: { internet: 'allow' } }, ...input });
}

async function done(job: Promise<{ id: string }>): Promise<void> {
  const finished = await manager!.waitForJob((await job).id);
  assert.is(finished.status, 'succeeded', finished.error);
}

function hostPort(app: string): number {
  const port = manager!.services(app)[0]!.hostBindPort;
  publishedPorts.add(port);
  return port;
}

async function page(port: number, file = '/'): Promise<string | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${file}`, { signal: AbortSignal.timeout(1000) });
    return res.ok ? await res.text() : undefined;
  } catch {
    return undefined;
  }
}

async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Runs a shell command in an app's container; resolves with its exit code and output. */
async function inApp(app: string, command: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync('podman', ['exec', `piccolo-${app}`, 'sh', '-c', command], { timeout: 15_000 });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const failure = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failure.code === 'number' ? failure.code : 1, output: `${failure.stdout ?? ''}${failure.stderr ?? ''}` };
  }
}

const GET = (address: string, port: number) => `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${address} ${port}`;

async function uninstallAll(): Promise<void> {
  for (const app of (await manager!.list()).reverse()) await done(manager!.uninstall(app.name, { purge: true }));
}

test.before(async () => {
  podman = await startPodman();
  dir = await mkdtemp(path.join(tmpdir(), 'piccolo-apps-'));
  imageV1 = await podman.buildHttpdImage('v1', 'version one\n');
  imageV2 = await podman.buildHttpdImage('v2', 'version two\n');
  await openManager();
});

test.after.each(async () => {
  assert.equal(await exposedBeyondLoopback([...publishedPorts]), [], 'app ports listen on 127.0.0.1 only');
});

test.after(async () => {
  try {
    if (manager) await uninstallAll();
  } finally {
    await dropManager();
    await podman.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('install → the page answers on the host-bind port → stop → start', async () => {
  const name = `${podman.prefix}web`;
  const started = performance.now();
  await done(manager!.install(spec('web')));
  const port = hostPort(name);
  assert.is(await eventually(() => page(port), 'the page'), 'version one\n');
  const installToRunningMs = Math.round(performance.now() - started);
  console.log(`install-to-running: ${installToRunningMs} ms`);
  assert.is((await manager!.get(name)).state, 'running');
  const stats = await manager!.stats(name);
  assert.ok(stats.memoryBytes > 0 && stats.cpuPercent >= 0, 'stats from the engine');
  let logs = '';
  for await (const chunk of await manager!.logs(name, { tail: 10, follow: false })) logs += chunk;
  assert.match(logs, /response:200/, 'the page fetched above is in the log (busybox httpd -v)');
  assert.ok(events.some((e) => e.type === 'app-state' && e.app === name && e.state === 'installing'));
  assert.ok(events.some((e) => e.type === 'job' && e.job.app === name && e.job.status === 'succeeded'));

  await done(manager!.stop(name));
  assert.is((await manager!.get(name)).state, 'stopped');
  assert.is(await page(port), undefined);

  await done(manager!.start(name));
  assert.is(await eventually(() => page(port), 'the page after start'), 'version one\n');
  assert.is((await manager!.get(name)).state, 'running');
  await done(manager!.uninstall(name, { purge: true }));
});

test('update → revert → uninstall keeps the data → purge removes it', async () => {
  const name = `${podman.prefix}notes`;
  const withData = (image: string) => spec('notes', { image, storage: { persistent: { data: { container: '/www/data' } } } });
  await done(manager!.install(withData(imageV1)));
  const port = hostPort(name);
  const volume = path.join(dir, 'volumes', name);
  await writeFile(path.join(volume, 'data', 'note.txt'), 'kept\n');
  assert.is(await eventually(() => page(port, '/data/note.txt'), 'the data file'), 'kept\n');

  await done(manager!.update(name, withData(imageV2)));
  assert.is(await eventually(() => page(port), 'v2'), 'version two\n');
  assert.is(await page(port, '/data/note.txt'), 'kept\n');
  assert.equal(manager!.history(name).map((entry) => entry.revision), [2, 1]);
  assert.is(manager!.services(name)[0]!.hostBindPort, port, 'an update keeps the ports');

  await done(manager!.revert(name, 1));
  assert.is(await eventually(() => page(port), 'v1 again'), 'version one\n');
  assert.equal(manager!.history(name).map((entry) => entry.revision), [3, 2, 1]);

  await done(manager!.uninstall(name, { purge: false }));
  assert.is(await page(port), undefined);
  assert.ok(existsSync(path.join(volume, 'data', 'note.txt')), 'data kept without purge');
  assert.is((await podman.docker.listContainers({ all: true, filters: { label: [`piccolo.app=${name}`] } })).length, 0);

  await done(manager!.install(withData(imageV1)));
  assert.is(await eventually(() => page(hostPort(name), '/data/note.txt'), 'data after reinstall'), 'kept\n');
  await done(manager!.uninstall(name, { purge: true }));
  assert.not.ok(existsSync(volume), 'purge removes the data');
});

test('a killed daemon: the next one reconciles, cleans strays, keeps the ports', async () => {
  const name = `${podman.prefix}survivor`;
  await done(manager!.install(spec('survivor')));
  const before = manager!.services(name);
  const port = hostPort(name);
  await eventually(() => page(port), 'the page');

  await dropManager();
  await podman.docker.getContainer(`piccolo-${name}`).stop({ t: 0 });
  const labels = (app: string) => ({ 'piccolo.managed': 'true', 'piccolo.app': app, 'piccolo.role': 'app' });
  for (const [strayName, app] of [[`${podman.prefix}ghost`, `${podman.prefix}ghost`], [`${podman.prefix}survivor-dup`, name]]) {
    await podman.docker.createContainer({ name: strayName, Image: imageV1, Labels: labels(app!) });
  }

  await openManager();
  assert.equal(manager!.services(name), before, 'same ports after a restart');
  assert.is(await eventually(() => page(port), 'the page after reconcile'), 'version one\n');
  const left = await podman.docker.listContainers({ all: true, filters: { label: ['piccolo.managed=true'] } });
  assert.equal(left.filter((c) => c.Labels['piccolo.app']?.startsWith(podman.prefix)).map((c) => c.Names[0]!.replace(/^\//, '')), [`piccolo-${name}`]);
  await done(manager!.uninstall(name, { purge: true }));
});

test('a crashed app is restarted with a backoff; others are not held up', async () => {
  const name = `${podman.prefix}crashy`;
  await done(manager!.install(spec('crashy')));
  await eventually(() => page(hostPort(name)), 'the page');
  await podman.docker.getContainer(`piccolo-${name}`).kill();
  await eventually(async () => ((await manager!.get(name)).state === 'failed' ? true : undefined), 'failed state');
  // Read the port again on each try: the restart may move the app to a new host-bind port when
  // another suite's container took the old one meanwhile (allocation retry).
  assert.is(await eventually(() => page(hostPort(name)), 'the page after the automatic restart'), 'version one\n');
  await done(manager!.uninstall(name, { purge: true }));
});

test('networks: apps are isolated unless one depends on the other; dependencies start first', async () => {
  const [db, other, web] = ['db', 'other', 'web2'].map((n) => `${podman.prefix}${n}`);
  await done(manager!.install(spec('db')));
  await done(manager!.install(spec('other')));
  await done(manager!.install(spec('web2', { depends_on: [db!] })));
  const dbAddress = (await podman.docker.getContainer(`piccolo-${db}`).inspect()).NetworkSettings.Networks[`piccolo-${db}`]!.IPAddress;

  const env = (await inApp(web!, 'echo $PICCOLO_SERVICE_URL_WEB $PICCOLO_SERVICE_URL_' + db!.toUpperCase() + '_WEB')).output.trim();
  assert.is(env, `http://127.0.0.1:80 http://${dbAddress}:80`);
  assert.match((await inApp(web!, GET(dbAddress, 80))).output, /version one/, 'the dependent reaches its dependency');
  assert.is.not((await inApp(other!, GET(dbAddress, 80))).code, 0, 'an unrelated app cannot');

  // Restart everything as a daemon start would: the dependency must be up before the dependent.
  await dropManager();
  for (const app of [web, db, other]) await podman.docker.getContainer(`piccolo-${app}`).stop({ t: 0 });
  await openManager();
  const startedAt = async (app: string) => Date.parse((await podman.docker.getContainer(`piccolo-${app}`).inspect()).State.StartedAt);
  assert.ok((await startedAt(db!)) <= (await startedAt(web!)), 'db started before web');
  for (const app of [web, other, db]) await done(manager!.uninstall(app!, { purge: true }));
});

test('internet deny: the published port works, nothing outside the app network is reachable', async () => {
  const hostAddress = Object.entries(networkInterfaces())
    .filter(([name]) => !name.startsWith('cni') && !name.startsWith('podman') && name !== 'lo')
    .flatMap(([, addresses]) => addresses ?? [])
    .find((address) => address.family === 'IPv4' && !address.internal)?.address;
  assert.ok(hostAddress, 'a host address outside the container networks');
  const server = http.createServer((_req, res) => res.end('host\n'));
  await new Promise<void>((resolve) => server.listen(0, hostAddress, resolve));
  const hostPortNumber = (server.address() as { port: number }).port;
  try {
    const [closed, open] = [`${podman.prefix}closed`, `${podman.prefix}open`];
    await done(manager!.install(spec('closed', { permissions: { network: { internet: 'deny' } } })));
    await done(manager!.install(spec('open')));
    assert.is(await eventually(() => page(hostPort(closed!)), 'the page of the closed app'), 'version one\n');
    assert.match((await inApp(open!, GET(hostAddress!, hostPortNumber))).output, /host/, 'an allowed app reaches the host address');
    const denied = await inApp(closed!, GET(hostAddress!, hostPortNumber));
    assert.is.not(denied.code, 0);
    assert.match(denied.output, /unreachable/i);
    for (const app of [closed, open]) await done(manager!.uninstall(app!, { purge: true }));
  } finally {
    server.close();
  }
});

test('leftovers: no container, network or volume of the run remains', async () => {
  const containers = await podman.docker.listContainers({ all: true, filters: { label: ['piccolo.managed=true'] } });
  assert.equal(containers.filter((c) => c.Labels['piccolo.app']?.startsWith(podman.prefix)), []);
  assert.equal(await readdir(path.join(dir, 'volumes')).catch(() => []), []);
});

test.run();
