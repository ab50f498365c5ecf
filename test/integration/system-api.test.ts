// The system API through the real bundles: the daemon (real gocryptfs volumes, real Podman), the
// health service it reports to and reads back, and a real proxy on the daemon's internal socket,
// which hands over its CA and routes by the device name. Covers status and metrics (live on the
// events stream), the audit log, the device CA download, renaming the device (portal route,
// cookie domain, app host names, through the proxy) and the apps' stats history.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { INTERNAL_PATHS, type RouteTable } from '../../services/common/route-table.js';
import { UnixHttpClient } from '../../services/common/unix-http.js';
import { ApiSession } from '../support/api-session.js';
import { rawGet } from '../support/http-get.js';
import { startPodman, type TestPodman } from '../support/podman.js';
import { ServiceProcess, removeTestDir, startTestDaemon, waitFor } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-system-api-'));
const stateDir = path.join(dir, 'state');
const internalSocket = path.join(dir, 'internal.sock');
const healthSocket = path.join(dir, 'health.sock');
const certDir = path.join(dir, 'proxy-certs');
const PASSWORD = 'System-Api-Secret-42';
const STATS_INTERVAL_MS = 400;
let podman: TestPodman;
let health: ServiceProcess | undefined;
let daemon: ServiceProcess;
let proxy: ServiceProcess | undefined;
let api = '';
let healthUrl = '';
let proxyPort = 0;
let session: ApiSession;
let app = '';
let image = '';
const internal = new UnixHttpClient(internalSocket);

const call = (method: string, route: string, body?: unknown) => session.call(method, route, body);
const routeTable = async (): Promise<RouteTable> => JSON.parse((await internal.call(INTERNAL_PATHS.routes, { timeoutMs: 5000 })).body);

async function startDaemon(): Promise<void> {
  ({ proc: daemon, api } = await startTestDaemon(stateDir, {
    PICCOLO_PODMAN_SOCKET: podman.socketPath,
    PICCOLO_DAEMON_INTERNAL_SOCKET: internalSocket,
    PICCOLO_HEALTH_SOCKET: healthSocket,
    PICCOLO_HEALTH_INTERVAL_MS: '300',
    PICCOLO_HEALTH_URL: healthUrl,
    PICCOLO_METRICS_INTERVAL_MS: '300',
    PICCOLO_STATS_INTERVAL_MS: String(STATS_INTERVAL_MS),
  }));
}

async function jobDone(job: { id: string }): Promise<any> {
  return waitFor(async () => {
    const { body } = await call('GET', `/api/v1/jobs/${job.id}`);
    return body.status === 'running' ? undefined : body;
  }, 60_000, `job ${job.id}`);
}

const spec = () => [`name: ${app}`, `image: ${image}`, 'listeners:', '  - name: web', '    guest_port: 80', '    protocol: http'].join('\n');

async function install(): Promise<void> {
  const answer = await call('POST', '/api/v1/apps', { spec: spec() });
  assert.is(answer.status, 202, JSON.stringify(answer.body));
  assert.is((await jobDone(answer.body.job)).status, 'succeeded');
}

/** A request with a Host header of our choosing (fetch does not let one set it). */
function request(port: number, method: string, route: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: route, agent: false, headers: { ...headers, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  podman = await startPodman();
  app = `${podman.prefix}web`;
  image = await podman.buildHttpdImage('v1', '<h1>stats</h1>');
  health = await ServiceProcess.start('health', { PICCOLO_HEALTH_LISTEN: '127.0.0.1:0', PICCOLO_HEALTH_SOCKET: healthSocket }, TEST_BUNDLE_DIR);
  await health.notified('READY=1');
  healthUrl = `http://${await health.address('http')}`;
  await startDaemon();
  session = new ApiSession(api);
});

test.after(async () => {
  internal.close();
  await proxy?.kill('SIGTERM');
  await daemon?.kill('SIGTERM');
  await health?.kill('SIGTERM');
  await podman?.stop();
  removeTestDir(dir);
});

test('the CA download is a 404 saying why until the proxy has handed its CA over', async () => {
  const res = await fetch(`${api}/api/v1/system/ca.crt`);
  assert.is(res.status, 404);
  assert.match((await res.json()).error.message, /proxy/);
});

test('a real proxy hands its CA over: the public download is that certificate, as an attachment', async () => {
  proxy = await ServiceProcess.start('proxy', {
    PICCOLO_PROXY_LISTEN: '127.0.0.1:0',
    PICCOLO_PROXY_BIND_HOST: '127.0.0.1',
    PICCOLO_PROXY_DAEMON_SOCKET: internalSocket,
    PICCOLO_PROXY_CERT_DIR: certDir,
    PICCOLO_HEALTH_SOCKET: healthSocket,
    PICCOLO_HEALTH_INTERVAL_MS: '300',
  }, TEST_BUNDLE_DIR);
  await proxy.notified('READY=1', 20_000);
  proxyPort = Number((await proxy.address('listener-0')).split(':').pop());
  const onDisk = new X509Certificate(readFileSync(path.join(certDir, 'local-ca', 'ca.cert.pem'), 'utf8'));
  const res = await waitFor(async () => {
    const answer = await fetch(`${api}/api/v1/system/ca.crt`);
    return answer.status === 200 ? answer : undefined;
  }, 10_000, 'the CA handed over');
  assert.is(res.headers.get('content-type'), 'application/x-x509-ca-cert');
  assert.is(res.headers.get('content-disposition'), 'attachment; filename="piccolo-ca.crt"');
  const served = new X509Certificate(await res.text());
  assert.is(served.fingerprint256, onDisk.fingerprint256);
  assert.ok(served.ca);
});

test('signed-in endpoints answer 401 without a session', async () => {
  for (const route of ['/api/v1/system/status', '/api/v1/system/device', '/api/v1/system/ca', '/api/v1/system/audit', `/api/v1/apps/${app}/stats/history`]) {
    assert.is((await call('GET', route)).status, 401, route);
  }
  assert.is((await call('PUT', '/api/v1/system/device', { name: 'nope' })).status, 401);
});

test('setup, then the CA details: subject, fingerprint and expiry of the proxy\'s CA', async () => {
  const claimCode = readFileSync(path.join(stateDir, 'claim-code'), 'utf8').trim();
  const claim = await call('POST', '/api/v1/setup/claim', { claimCode });
  assert.is((await call('POST', '/api/v1/setup', { setupToken: claim.body.setupToken, password: PASSWORD, recoveryKeySaved: true })).status, 201);
  // The app manager starts right after the unlock; until then apps answer 503.
  await waitFor(async () => ((await call('GET', '/api/v1/apps')).status === 200 ? true : undefined), 30_000, 'apps available');
  const onDisk = new X509Certificate(readFileSync(path.join(certDir, 'local-ca', 'ca.cert.pem'), 'utf8'));
  const info = await call('GET', '/api/v1/system/ca');
  assert.is(info.status, 200);
  assert.equal(info.body, { subject: onDisk.subject.split('\n').join(', '), sha256Fingerprint: onDisk.fingerprint256, notAfter: new Date(onDisk.validTo).toISOString() });
});

test('status: device, health read from the health service, and this machine\'s metrics', async () => {
  // The proxy reports to the same health service: once it has, the device is ready.
  const status = await waitFor(async () => {
    const answer = await call('GET', '/api/v1/system/status');
    return answer.body.health?.ready ? answer : undefined;
  }, 15_000, 'health ready');
  assert.is(status.status, 200);
  const { device, health: h, metrics, sampledAt } = status.body;
  assert.equal({ name: device.name, hostname: device.hostname }, { name: 'piccolo', hostname: 'piccolo.local' });
  assert.type(device.version, 'string');
  assert.ok(device.uptimeSeconds > 0);
  assert.is(h.reachable, true);
  const byName = Object.fromEntries(h.components.map((c: any) => [c.name, c.status]));
  assert.is(byName.daemon, 'ok');
  assert.is(byName.proxy, 'ok');
  assert.equal(h.reasons, []);
  assert.is(metrics.cpu.cores, cpus().length);
  assert.ok(metrics.cpu.percent >= 0 && metrics.cpu.percent <= 100);
  assert.is(metrics.cpu.load.length, 3);
  assert.is(metrics.memory.totalBytes, totalmem());
  assert.is(metrics.memory.usedBytes, metrics.memory.totalBytes - metrics.memory.availableBytes);
  assert.equal(metrics.storage.map((s: any) => [s.name, s.path]), [['data', stateDir]]);
  assert.ok(metrics.storage[0].totalBytes > metrics.storage[0].usedBytes);
  assert.ok(metrics.temperature === null || typeof metrics.temperature.celsius === 'number');
  assert.ok(Math.abs(Date.parse(sampledAt) - Date.now()) < 60_000);
});

/** A signed-in events client; received collects every event. */
async function events(): Promise<{ received: any[]; close: () => void }> {
  const ws = new WebSocket(api.replace('http', 'ws') + '/api/v1/events', { headers: { cookie: session.cookie, origin: api } });
  const received: any[] = [];
  ws.on('message', (data) => received.push(JSON.parse(String(data))));
  await new Promise((resolve, reject) => ws.on('open', resolve).on('error', reject));
  return { received, close: () => ws.close() };
}

test('system.metrics arrives on the events stream on its interval', async () => {
  const stream = await events();
  try {
    const metrics = await waitFor(() => stream.received.filter((e) => e.type === 'system.metrics').at(1), 5000, 'two system.metrics events');
    assert.is(metrics.data.cpu.cores, cpus().length);
    assert.is(metrics.data.memory.totalBytes, totalmem());
    assert.equal(Object.keys(metrics.data).sort(), ['cpu', 'memory', 'storage', 'temperature']);
  } finally {
    stream.close();
  }
});

test('audit: newest first, limit honoured, a bad limit is a 400 naming limit', async () => {
  const all = await call('GET', '/api/v1/system/audit');
  assert.is(all.status, 200);
  const events = all.body.entries.map((e: any) => e.event);
  assert.equal(events.slice(-2), ['setup', 'setup.claim'], JSON.stringify(events));
  const times = all.body.entries.map((e: any) => Date.parse(e.ts));
  assert.equal(times, [...times].sort((a, b) => b - a));
  assert.is((await call('GET', '/api/v1/system/audit?limit=1')).body.entries.length, 1);
  for (const bad of ['0', '1001', 'ten', '']) {
    const answer = await call('GET', `/api/v1/system/audit?limit=${bad}`);
    assert.is(answer.status, 400, bad);
    assert.match(answer.body.error.message, /^limit: /);
  }
});

test('stats history: a real app is sampled on the interval; an unknown app is a 404', async () => {
  assert.is((await call('GET', '/api/v1/apps/nosuchapp/stats/history')).status, 404);
  await install();
  let last: unknown;
  const history = await waitFor(async () => {
    const answer = await call('GET', `/api/v1/apps/${app}/stats/history`);
    last = answer.body;
    return answer.body.samples?.length >= 3 ? answer : undefined;
  }, 30_000, 'three samples').catch(async (err) => {
    throw new Error(`${err.message}: ${JSON.stringify(last)}; app ${JSON.stringify((await call('GET', `/api/v1/apps/${app}`)).body).slice(0, 400)}`);
  });
  assert.is(history.status, 200);
  assert.is(history.body.intervalSeconds, STATS_INTERVAL_MS / 1000);
  const [first, second] = history.body.samples;
  assert.ok(Date.parse(second.at) > Date.parse(first.at));
  assert.ok(first.memoryBytes > 0, JSON.stringify(first));
  assert.type(first.cpuPercent, 'number');
});

test('rename: 400 naming name, 403 without CSRF; then portal, cookie domain and app names follow, through the proxy', async () => {
  for (const bad of ['Home', 'x', 'ends-', 'a.b']) {
    const answer = await call('PUT', '/api/v1/system/device', { name: bad });
    assert.is(answer.status, 400, bad);
    assert.match(answer.body.error.message, /^name: /);
  }
  assert.is((await call('PUT', '/api/v1/system/device', { name: 42 })).status, 400);
  const withoutCsrf = Object.assign(new ApiSession(api), { cookie: session.cookie });
  assert.is((await withoutCsrf.call('PUT', '/api/v1/system/device', { name: 'homebox' })).status, 403);
  assert.is((await call('GET', '/api/v1/system/device')).body.name, 'piccolo', 'refused renames changed nothing');
  // Before: the proxy routes piccolo.local to the portal.
  assert.is((await rawGet(proxyPort, { host: 'piccolo.local' }, '/api/v1/version')).status, 200);

  const stream = await events();
  try {
    const renamed = await call('PUT', '/api/v1/system/device', { name: 'homebox' });
    assert.is(renamed.status, 200);
    // Picked: the body also says how the LAN sees the name (mdns; off here, with no Avahi running).
    assert.equal({ name: renamed.body.name, hostname: renamed.body.hostname }, { name: 'homebox', hostname: 'homebox.local' });
    const event = await waitFor(() => stream.received.find((e) => e.type === 'system.device'), 5000, 'system.device event');
    assert.equal({ name: event.data.name, hostname: event.data.hostname }, { name: 'homebox', hostname: 'homebox.local' });
  } finally {
    stream.close();
  }
  const device = (await call('GET', '/api/v1/system/device')).body;
  assert.equal({ name: device.name, hostname: device.hostname, mdns: device.mdns?.state }, { name: 'homebox', hostname: 'homebox.local', mdns: 'off' });
  assert.is((await call('GET', '/api/v1/system/status')).body.device.hostname, 'homebox.local');
  // The table on the internal socket: portal and app host names under the new name.
  const table = await waitFor(async () => {
    const current = await routeTable();
    return current.routes.some((r) => r.hostnames.includes(`web-${app}.homebox.local`)) ? current : undefined;
  }, 10_000, 'routes with the new name');
  assert.equal(table.portal!.hostnames, ['homebox.local']);
  assert.not.ok(JSON.stringify(table).includes('piccolo.local'), 'the old name is gone from the table');
  // The proxy follows: the new name reaches the portal and the app, the old one nothing.
  await waitFor(async () => ((await rawGet(proxyPort, { host: 'homebox.local' }, '/api/v1/version')).status === 200 ? true : undefined), 10_000, 'proxy routes homebox.local');
  assert.is((await rawGet(proxyPort, { host: 'piccolo.local' }, '/api/v1/version')).status, 404);
  // The app is behind the auth gate: the session cookie lets the request through. Its routes
  // reach the proxy a moment after the portal's (the apps' routes are made asynchronously).
  const appPage = await waitFor(async () => {
    const answer = await rawGet(proxyPort, { host: `web-${app}.homebox.local`, cookie: session.cookie }, '/');
    return answer.status === 404 ? undefined : answer;
  }, 10_000, 'proxy routes the app at its new name');
  assert.is(appPage.status, 200, `${appPage.status} ${appPage.body}`);
  assert.match(appPage.body, /stats/, appPage.body.slice(0, 300));
  assert.is((await rawGet(proxyPort, { host: `web-${app}.piccolo.local`, cookie: session.cookie }, '/')).status, 404, 'the old app name is gone');
  // Signing in at the new name sets the cookie for it (and so for the apps under it).
  const login = await request(Number(new URL(api).port), 'POST', '/api/v1/auth/login', { host: 'homebox.local' }, { password: PASSWORD });
  assert.is(login.status, 200);
  assert.match(String(login.headers['set-cookie']), /Domain=homebox\.local/i);
  const entry = (await call('GET', '/api/v1/system/audit?limit=5')).body.entries.find((e: any) => e.event === 'system.device-name');
  assert.equal([entry.outcome, entry.detail], ['ok', 'piccolo -> homebox']);
});

test('stats history is dropped on uninstall: a reinstalled app starts a new one', async () => {
  const uninstall = await call('DELETE', `/api/v1/apps/${app}`, { confirm: app });
  assert.is(uninstall.status, 202);
  await jobDone(uninstall.body.job);
  assert.is((await call('GET', `/api/v1/apps/${app}/stats/history`)).status, 404);
  const reinstalledAt = Date.now();
  await install();
  const history = await waitFor(async () => {
    const answer = await call('GET', `/api/v1/apps/${app}/stats/history`);
    return answer.body.samples?.length >= 1 ? answer : undefined;
  }, 30_000, 'a sample of the new install');
  for (const sample of history.body.samples) assert.ok(Date.parse(sample.at) >= reinstalledAt - 1000, `old sample ${sample.at} kept`);
});

test('health service gone: status still answers, reachable false with a reason to act on', async () => {
  await health!.kill('SIGTERM');
  health = undefined;
  const status = await call('GET', '/api/v1/system/status');
  assert.is(status.status, 200);
  assert.is(status.body.health.reachable, false);
  assert.is(status.body.health.ready, false);
  assert.match(status.body.health.reasons[0], /health service .* did not answer/);
  assert.ok(status.body.metrics.memory.totalBytes > 0, 'the metrics are still there');
});

test('stopped with a portal open whose events socket reconnects at once, the daemon still exits within seconds', async () => {
  const url = api.replace('http', 'ws') + '/api/v1/events';
  const options = { headers: { cookie: session.cookie, origin: api } };
  const first = new WebSocket(url, options);
  await new Promise((resolve, reject) => first.on('open', resolve).on('error', reject));
  // A request still coming in on the portal socket (the proxy's) holds that listener for its
  // grace, after the events module stopped and while the HTTP listener still accepts.
  const slow = net.connect(await daemon.address('portal-socket'));
  slow.on('error', () => {});
  slow.write('GET /api/v1/version HTTP/1.1\r\nHost: x\r\n');
  // As the portal does: a new socket as soon as the old one closes. Accepted while the daemon
  // stopped, such a socket once kept it from exiting (CI's time-out).
  let reconnect: WebSocket | undefined;
  first.on('close', () => {
    reconnect = new WebSocket(url, options);
    reconnect.on('error', () => {});
  });
  const begun = Date.now();
  await daemon.kill('SIGTERM');
  const took = Date.now() - begun;
  assert.ok(took < 12_000, `exited ${took} ms after SIGTERM`);
  await waitFor(() => (reconnect && reconnect.readyState === WebSocket.CLOSED ? true : undefined), 5000, 'the reconnected socket is closed or refused');
});

test('a restarted daemon gets the CA again from the running proxy, and keeps its name while locked', async () => {
  await daemon.kill('SIGTERM');
  await startDaemon();
  session = new ApiSession(api);
  // No TPM here: the daemon is locked; the CA download and the portal's name do not need the vault.
  assert.is((await call('GET', '/api/v1/setup/status')).body.state, 'locked');
  const res = await waitFor(async () => {
    const answer = await fetch(`${api}/api/v1/system/ca.crt`);
    return answer.status === 200 ? answer : undefined;
  }, 15_000, 'the CA handed over again');
  const onDisk = new X509Certificate(readFileSync(path.join(certDir, 'local-ca', 'ca.cert.pem'), 'utf8'));
  assert.is(new X509Certificate(await res.text()).fingerprint256, onDisk.fingerprint256);
  assert.equal((await routeTable()).portal!.hostnames, ['homebox.local']);
});

test.run();
