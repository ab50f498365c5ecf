// A udp listener end to end: an app with a UDP echo (the Node test app, port 7/udp) installed
// through the daemon's API on real Podman, published on 127.0.0.1 only, listed by the Services API
// with a udp:// URL, and reached through the real proxy from 127.0.0.2 and 127.0.0.3 as two
// clients, each answered on its own flow. Flows idle out; the per-client cap refuses the excess
// (counted, logged); a stopped app's port gets nothing back and the proxy carries on; uninstall
// closes the public port. The portal's Services screen shows the listener as UDP, with its udp://
// address and no remote one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import type { Browser } from 'playwright-core';
import type { ApiSession } from '../support/api-session.js';
import { jobDone } from '../support/jobs.js';
import { buildNodeAppImage } from '../support/node-app-image.js';
import { startPodman, type TestPodman } from '../support/podman.js';
import { checkScreen, launchChromium, setUpWithApps, signedInPage } from '../support/portal.js';
import { removeTestDir, startTestDaemon, startTestProxy, waitFor, type ServiceProcess } from '../support/processes.js';
import { echoSender, udpClient, type UdpClient } from '../support/udp.js';

const execFileAsync = promisify(execFile);
const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-apps-udp-'));
const stateDir = path.join(dir, 'state');
const BRIEF_IDLE_MS = 800;
let podman: TestPodman;
let daemon: ServiceProcess;
let proxy: ServiceProcess;
let api: ApiSession;
let portal = '';
let browser: Browser | undefined;
let app = '';
let image = '';
let publicPort = 0;
let hostBindPort = 0;
const clients: UdpClient[] = [];

async function client(from: string, port = publicPort): Promise<UdpClient> {
  const made = await udpClient(from, port);
  clients.push(made);
  return made;
}

/** A plain HTTP/1.0 GET over a TCP connection; resolves with what came back. */
function rawHttpGet(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host, () => socket.write('GET / HTTP/1.0\r\n\r\n'));
    let text = '';
    socket.setTimeout(3000, () => socket.destroy(new Error('timed out')));
    socket.on('data', (chunk) => (text += chunk));
    socket.on('end', () => (text ? resolve(text) : reject(new Error('closed without an answer'))));
    socket.on('error', reject);
  });
}

/** Asks until the app answers: the container's echo may take a moment to bind after "running". */
async function answered(c: UdpClient, payload: string): Promise<string> {
  return waitFor(() => c.ask(payload, 300), 20_000, `an answer to ${payload}`);
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  podman = await startPodman();
  app = `${podman.prefix}udp`;
  image = await buildNodeAppImage(podman.prefix, 'udp');
  const internalSocket = path.join(dir, 'internal.sock');
  ({ proc: daemon } = await startTestDaemon(stateDir, { PICCOLO_PODMAN_SOCKET: podman.socketPath, PICCOLO_DAEMON_INTERNAL_SOCKET: internalSocket }));
  ({ proc: proxy, portal } = await startTestProxy(internalSocket, dir, {
    PICCOLO_PROXY_UDP_MAX_FLOWS_PER_CLIENT: '2',
    PICCOLO_PROXY_UDP_BRIEF_IDLE_MS: String(BRIEF_IDLE_MS),
    PICCOLO_LOG_LEVEL: 'debug',
  }));
  // Through the proxy, as a browser on the network reaches the portal.
  await waitFor(async () => ((await fetch(`${portal}/api/v1/version`).catch(() => undefined))?.ok ? true : undefined), 20_000, 'the portal through the proxy');
  api = await setUpWithApps(portal, stateDir);
  const spec = [`name: ${app}`, `image: ${image}`, 'listeners:', '  - name: echo', '    guest_port: 7', '    protocol: udp'].join('\n');
  const install = await api.call('POST', '/api/v1/apps', { spec });
  assert.is(install.status, 202, JSON.stringify(install.body));
  await jobDone(api, install.body.job, 90_000);
});

test.after(async () => {
  for (const c of clients) c.close();
  await browser?.close();
  await proxy?.kill('SIGTERM');
  await daemon?.kill('SIGTERM');
  await podman?.stop();
  removeTestDir(dir);
});

test('the Services API lists the listener with a udp:// URL; Podman publishes <port>/udp on 127.0.0.1 only', async () => {
  const { body } = await api.call('GET', '/api/v1/services');
  const entry = body.services.find((s: any) => s.app === app);
  assert.ok(entry, JSON.stringify(body));
  assert.is(entry.protocol, 'udp');
  ({ publicPort, hostBindPort } = entry);
  assert.is(entry.localUrl, `udp://127.0.0.1:${hostBindPort}`);
  const inspected = await podman.docker.getContainer(`piccolo-${app}`).inspect();
  assert.equal(inspected.HostConfig.PortBindings, { '7/udp': [{ HostIp: '127.0.0.1', HostPort: String(hostBindPort) }] });
  // Whatever holds the host-bind port (conmon reserves it) holds it on loopback.
  const { stdout } = await execFileAsync('ss', ['-uanH']);
  const holders = stdout.split('\n').map((line) => line.trim().split(/\s+/)[3] ?? '').filter((local) => local.endsWith(`:${hostBindPort}`));
  assert.equal(holders.filter((local) => !local.startsWith('127.0.0.1:')), [], 'nothing beyond loopback');
});

test("the portal's Services screen: the listener reads UDP, its udp:// address on the network, none through the relay", async () => {
  browser = await launchChromium();
  const page = await signedInPage(browser, portal, api);
  await page.goto(`${portal}/services`);
  const row = page.locator(`section.card#app-${app} li[data-listener="echo"]`);
  await row.waitFor();
  const text = await row.innerText();
  assert.match(text, /UDP/);
  assert.ok(text.includes(`udp://127.0.0.1:${publicPort}`), text);
  assert.match(text, /not through the relay: it carries TCP only/);
  assert.is(await row.getByRole('link').count(), 0, 'nothing for a browser to open');
  await checkScreen(page, 'services-udp');
});

test('through the proxy from 127.0.0.2 and 127.0.0.3: each client gets its own answers, over its own flow', async () => {
  await waitFor(() => proxy.logs.find((l) => l.msg === 'listening' && l.protocol === 'udp' && l.listener === `${app}/echo`), 10_000, 'the proxy opens the udp port');
  const a = await client('127.0.0.2');
  const b = await client('127.0.0.3');
  const first = [await answered(a, 'a-0'), await answered(b, 'b-0')];
  assert.match(first[0]!, /^echo:a-0 from /);
  assert.match(first[1]!, /^echo:b-0 from /);
  const [a1, b1, a2, b2] = await Promise.all([a.ask('a-1'), b.ask('b-1'), a.ask('a-2'), b.ask('b-2')]);
  for (const [answer, mine] of [[a1, 'a'], [b1, 'b'], [a2, 'a'], [b2, 'b']] as const) assert.match(answer ?? '', new RegExp(`^echo:${mine}-[12] from `));
  assert.equal(a.received.filter((r) => r.startsWith('echo:b')), [], "127.0.0.2 never gets 127.0.0.3's answers");
  assert.equal(b.received.filter((r) => r.startsWith('echo:a')), []);
  assert.is(new Set(a.received.map(echoSender)).size, 1, 'one flow: the app sees one sender for all of a client');
  assert.not.equal(echoSender(a1), echoSender(b1), 'two clients: two senders as the app sees them');
});

test('a flow that went idle is forgotten: the next datagram opens a new one', async () => {
  const c = await client('127.0.0.2');
  const before = echoSender(await answered(c, 'once'));
  await new Promise((resolve) => setTimeout(resolve, BRIEF_IDLE_MS + 500));
  const after = echoSender(await answered(c, 'again'));
  assert.not.equal(after, before, 'a new upstream socket');
  assert.ok(proxy.logs.some((l) => l.msg === 'udp flow closed' && l.why === 'idle'), 'the idle flow was closed');
});

test('the per-client cap refuses the excess flows (counted and logged); another address still gets in', async () => {
  // An address no earlier test used: 127.0.0.2 still holds a conversation (kept for the long idle timeout).
  const mine = await Promise.all([1, 2, 3].map(() => client('127.0.0.4')));
  const got: boolean[] = [];
  for (const c of mine) got.push((await c.ask('hi', 1000)) !== undefined);
  assert.equal(got, [true, true, false]);
  const line = await waitFor(() => proxy.logs.find((l) => l.msg === 'udp flow refused' && l.reason === 'client_full'), 2000, 'the refusal logged');
  assert.is(line.client, '127.0.0.4');
  assert.is(line.listener, `${app}/echo`);
  assert.ok((line.totals as Record<string, number>).client_full >= 1, 'counted');
  assert.ok(await (await client('127.0.0.5')).ask('me too', 1000), 'another address is not held back');
});

test('a stopped app: its port gets nothing back, the proxy carries on; started again, it answers', async () => {
  const stop = await api.call('POST', `/api/v1/apps/${app}/stop`, {});
  assert.is(stop.status, 202, JSON.stringify(stop.body));
  await jobDone(api, stop.body.job);
  await new Promise((resolve) => setTimeout(resolve, BRIEF_IDLE_MS + 500));
  const c = await client('127.0.0.3');
  for (let i = 0; i < 10; i++) assert.is(await c.ask(`anyone? ${i}`, 100), undefined);
  assert.not.ok(proxy.logs.some((l) => l.level === 'error'), 'no error in the proxy');
  const start = await api.call('POST', `/api/v1/apps/${app}/start`, {});
  await jobDone(api, start.body.job);
  assert.match(await answered(c, 'back'), /^echo:back from /);
});

test('a DNS app on port 53: refused while something holds 53/udp (naming it), then served on 53 for UDP and TCP', async () => {
  const dns = `${podman.prefix}dns`;
  const spec = [
    `name: ${dns}`,
    `image: ${image}`,
    // The app's DNS-shaped echo binds 53 in its container, as a DNS server does.
    'environment: { UDP_ECHO_PORT: "53" }',
    'listeners:',
    '  - { name: dns, guest_port: 53, protocol: udp, public_port: 53 }',
    // DNS over TCP shares the number: the app's port 80 stands in for it, passed through raw.
    '  - { name: dns-tcp, guest_port: 80, protocol: raw, public_port: 53 }',
  ].join('\n');
  // What systemd-resolved does on a desktop: a resolver on 127.0.0.53:53 only. The proxy binds
  // every address, so that holds the port too.
  const resolver = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => resolver.bind(53, '127.0.0.53', resolve));
  try {
    const refused = await api.call('POST', '/api/v1/apps', { spec });
    assert.is(refused.status, 409, JSON.stringify(refused.body));
    assert.is(refused.body.error.message, `port 53/udp is in use by pid ${process.pid} (node)`);
    assert.is((await api.call('GET', `/api/v1/apps/${dns}`)).status, 404, 'nothing installed');
  } finally {
    await new Promise<void>((resolve) => resolver.close(resolve));
  }
  const outside = await api.call('POST', '/api/v1/apps', { spec: spec.replace('protocol: udp, public_port: 53', 'protocol: udp, public_port: 5353') });
  assert.is(outside.status, 400);
  assert.match(outside.body.error.details.join('\n'), /listeners\[0\]\.public_port: the device serves apps on 53 \(DNS\) or 35000-45000, not on 5353/);

  const install = await api.call('POST', '/api/v1/apps', { spec });
  assert.is(install.status, 202, JSON.stringify(install.body));
  await jobDone(api, install.body.job, 90_000);
  const services = (await api.call('GET', `/api/v1/apps/${dns}/services`)).body.services;
  assert.equal(services.map((entry: any) => [entry.listener, entry.protocol, entry.publicPort]), [['dns', 'udp', 53], ['dns-tcp', 'raw', 53]]);
  await waitFor(() => proxy.logs.find((l) => l.msg === 'listening' && l.protocol === 'udp' && l.listener === `${dns}/dns`), 10_000, 'the proxy opens 53/udp');
  const c = await client('127.0.0.2', 53);
  assert.match(await answered(c, 'query example.test A'), /^echo:query example\.test A from /);
  // The TCP listener on the same number reaches the app's TCP side.
  const viaTcp = await waitFor(() => rawHttpGet('127.0.0.1', 53).catch(() => undefined), 10_000, 'an answer on 53/tcp');
  assert.match(viaTcp, /^HTTP\/1\.[01] 200/);

  const removed = await api.call('DELETE', `/api/v1/apps/${dns}`, { confirm: dns });
  assert.is(removed.status, 202, JSON.stringify(removed.body));
  await jobDone(api, removed.body.job);
  await waitFor(() => proxy.logs.find((l) => l.msg === 'stopped listening' && l.listener === `${dns}/dns`), 10_000, '53/udp closed');
});

test('uninstall closes the public port', async () => {
  const removed = await api.call('DELETE', `/api/v1/apps/${app}`, { confirm: app });
  assert.is(removed.status, 202, JSON.stringify(removed.body));
  await jobDone(api, removed.body.job);
  await waitFor(() => proxy.logs.find((l) => l.msg === 'stopped listening' && l.listener === `${app}/echo`), 10_000, 'the udp port closed');
});

test.run();
