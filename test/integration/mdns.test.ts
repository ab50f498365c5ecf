// mDNS end to end with real Avahi on both sides. The test makes a "device" namespace and a
// "client" namespace joined by a veth pair (the LAN), each with its own D-Bus bus and
// avahi-daemon (test/support/avahi.ts). The daemon drives the device's Avahi over that bus (it
// runs beside Podman, whose bridges are in this namespace; mDNS is Avahi's part), and the
// client asks with `avahi-resolve`.
// Checked: piccolo.local resolves to the device's LAN address; an app's listener resolves as
// <listener>-<app>.piccolo.local once installed, and stops resolving once uninstalled (Avahi's
// goodbye); a second host holding piccolo.local makes the device take piccolo-2.local (probing,
// RFC 6762 §9), which the API reports and the app's name follows.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { hostLabel } from '../../services/daemon/apps/routes-from-apps.js';
import { INTERNAL_PATHS, type RouteTable } from '../../services/common/route-table.js';
import { UnixHttpClient } from '../../services/common/unix-http.js';
import { ApiSession } from '../support/api-session.js';
import { startNetnsAvahi, type NetnsAvahi } from '../support/avahi.js';
import { jobDone } from '../support/jobs.js';
import { addNetns, removeAll, run, uniqueId } from '../support/netns.js';
import { startPodman, type TestPodman } from '../support/podman.js';
import type { Browser } from 'playwright-core';
import { checkScreen, launchChromium, setUpWithApps, signedInPage, TEST_PASSWORD } from '../support/portal.js';
import { removeTestDir, startTestDaemon, waitFor, type ServiceProcess } from '../support/processes.js';

const id = uniqueId();
const NS = { device: `pmd-${id}-dev`, client: `pmd-${id}-cli` };
// The LAN link (device ⇄ client).
const IF = { devLan: `ml${id}d`, cliLan: `ml${id}c` };
const octet = 100 + (process.pid % 100);
const LAN = { device: `10.${octet}.53.1`, client: `10.${octet}.53.2` };

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-mdns-'));
const stateDir = path.join(dir, 'state');
const internalSocket = path.join(dir, 'internal.sock');
// What the proxy is told (the daemon's internal socket), read as the proxy reads it.
const internal = new UnixHttpClient(internalSocket);
const routeTable = async (): Promise<RouteTable> => JSON.parse((await internal.call(INTERNAL_PATHS.routes, { timeoutMs: 5000 })).body);
let podman: TestPodman | undefined;
let deviceAvahi: NetnsAvahi | undefined;
let clientAvahi: NetnsAvahi | undefined;
let daemon: ServiceProcess | undefined;
let api: ApiSession;
let app = '';
let image = '';
let base = '';
let browser: Browser | undefined;
const cleanups: Array<() => unknown> = [];

/** A veth pair between two namespaces, up with multicast, an address on each end. */
function link(a: string, nsA: string, addrA: string, b: string, nsB: string, addrB: string): void {
  run('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
  for (const [dev, ns, addr] of [[a, nsA, addrA], [b, nsB, addrB]] as const) {
    run('ip', ['link', 'set', dev, 'netns', ns]);
    run('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev]);
    run('ip', ['-n', ns, 'link', 'set', dev, 'up', 'multicast', 'on']);
  }
}

async function device(): Promise<{ name: string; hostname: string; mdns?: { state: string; hostname: string; reason?: string } }> {
  const res = await api.call('GET', '/api/v1/system/device');
  assert.is(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

/** Waits until the API reports this mDNS state and name. */
async function reported(state: string, hostname: string): Promise<void> {
  let last: unknown;
  await waitFor(async () => {
    last = (await device()).mdns;
    return (last as { state?: string; hostname?: string } | undefined)?.state === state && (last as { hostname?: string }).hostname === hostname ? true : undefined;
  }, 30_000, `mdns ${state} ${hostname} (last: ${JSON.stringify(last)})`).catch((err) => {
    throw new Error(`${(err as Error).message}\navahi: ${deviceAvahi?.log.slice(-8).join(' | ')}`);
  });
}

/** Asks from the client until the name resolves to `address` (or stops resolving, for undefined). */
async function resolvesTo(name: string, address: string | undefined, timeoutMs = 30_000): Promise<void> {
  let last: string | undefined;
  await waitFor(async () => ((last = await clientAvahi!.resolve(name)) === address ? true : undefined), timeoutMs, `${name} → ${address ?? 'nothing'} (last: ${last})`);
}

/** The daemon beside Podman; it reaches the device's Avahi over its D-Bus socket alone. */
async function startDaemon() {
  const started = await startTestDaemon(stateDir, { PICCOLO_PODMAN_SOCKET: podman!.socketPath, PICCOLO_DAEMON_INTERNAL_SOCKET: internalSocket, DBUS_SYSTEM_BUS_ADDRESS: deviceAvahi!.bus, PICCOLO_MDNS_POLL_MS: '300' });
  daemon = started.proc;
  return started;
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  addNetns(NS.device, { loopback: true });
  addNetns(NS.client, { loopback: true });
  link(IF.devLan, NS.device, LAN.device, IF.cliLan, NS.client, LAN.client);
  deviceAvahi = await startNetnsAvahi(NS.device, path.join(dir, 'avahi-device'), IF.devLan);
  clientAvahi = await startNetnsAvahi(NS.client, path.join(dir, 'avahi-client'), IF.cliLan);
  podman = await startPodman();
  app = `${podman.prefix}site`;
  image = await podman.buildHttpdImage('mdns', '<h1>mdns</h1>');
  const started = await startDaemon();
  base = started.api;
  api = await setUpWithApps(base, stateDir);
});

test.after(async () => {
  internal.close();
  await browser?.close();
  await daemon?.kill('SIGTERM');
  await clientAvahi?.stop();
  await deviceAvahi?.stop();
  await podman?.stop();
  for (const cleanup of cleanups.reverse()) await Promise.resolve().then(cleanup).catch(() => {});
  removeAll();
  removeTestDir(dir);
});

test('the device answers as piccolo.local at its LAN address, and the API says the name is its own', async () => {
  await reported('announced', 'piccolo.local');
  await resolvesTo('piccolo.local', LAN.device);
  // Nothing is answered for a name nobody holds (so the resolve above could fail).
  assert.is(await clientAvahi!.resolve(`nothing-${id}.piccolo.local`), undefined);
});

test('an installed app listener answers as <listener>-<app>.piccolo.local', async () => {
  const spec = [`name: ${app}`, `image: ${image}`, 'listeners:', '  - name: web', '    guest_port: 80'].join('\n');
  const install = await api.call('POST', '/api/v1/apps', { spec });
  assert.is(install.status, 202, JSON.stringify(install.body));
  await jobDone(api, install.body.job, 90_000);
  await resolvesTo(`${hostLabel(app, 'web')}.piccolo.local`, LAN.device);
});

test('another host holding piccolo.local: the device takes piccolo-2.local, the API reports it, the app name follows', async () => {
  // The other host takes the name while the device's responder is down (as when it boots second).
  await deviceAvahi!.stopDaemon();
  await reported('off', 'piccolo.local');
  const release = await clientAvahi!.publish('piccolo.local', LAN.client);
  cleanups.push(release);
  await deviceAvahi!.startDaemon();
  await reported('renamed', 'piccolo-2.local');
  assert.ok(deviceAvahi!.log.some((l) => l.includes('Host name conflict')), 'avahi saw the conflict');
  await resolvesTo('piccolo-2.local', LAN.device);
  await resolvesTo('piccolo.local', LAN.client);
  await resolvesTo(`${hostLabel(app, 'web')}.piccolo-2.local`, LAN.device);
  assert.is(await clientAvahi!.resolve(`${hostLabel(app, 'web')}.piccolo.local`), undefined, 'the app name moved below the name in use');
  // The proxy is told the name in use: the portal answers at both names, the app below the one in use.
  const table = await waitFor(async () => {
    const current = await routeTable();
    return current.routes.some((r) => r.hostnames.includes(`${hostLabel(app, 'web')}.piccolo-2.local`)) ? current : undefined;
  }, 10_000, 'routes below piccolo-2.local');
  assert.equal(table.portal!.hostnames, ['piccolo.local', 'piccolo-2.local']);
  assert.not.ok(table.routes.some((r) => r.hostnames.includes(`${hostLabel(app, 'web')}.piccolo.local`)), 'no route left below the name another host holds');
  const info = await device();
  assert.is(info.name, 'piccolo', 'the chosen name is kept');
  assert.is(info.hostname, 'piccolo.local');
});

test("the portal shows the name in use: System's device card says piccolo.local is taken, the app's page its name below piccolo-2.local", async () => {
  browser = await launchChromium();
  const page = await signedInPage(browser, base, api);
  await page.goto(`${base}/system`);
  const card = page.locator('#device-name');
  await card.getByText('On your network this device is piccolo-2.local', { exact: false }).waitFor();
  await card.getByText('piccolo.local is taken on your network').waitFor();
  await checkScreen(page, 'system-mdns-renamed');
  await page.goto(`${base}/apps/${app}`);
  await page.getByText(`On your network: ${hostLabel(app, 'web')}.piccolo-2.local`).waitFor();
  await checkScreen(page, 'app-mdns-name');
  const services = await api.call('GET', `/api/v1/apps/${app}/services`);
  assert.equal(services.body.services.map((s: { hostname?: string }) => s.hostname), [`${hostLabel(app, 'web')}.piccolo-2.local`]);
});

test('a daemon killed hard takes its app names with it; the next one, once unlocked, publishes them again', async () => {
  const name = `${hostLabel(app, 'web')}.piccolo-2.local`;
  await daemon!.kill('SIGKILL');
  await resolvesTo(name, undefined, 20_000);
  const started = await startDaemon();
  base = started.api;
  api = new ApiSession(base);
  assert.is((await api.call('POST', '/api/v1/crypto/unlock', { password: TEST_PASSWORD })).status, 200);
  assert.is((await api.call('POST', '/api/v1/auth/login', { password: TEST_PASSWORD })).status, 200);
  await resolvesTo(name, LAN.device);
  assert.is((await device()).mdns?.hostname, 'piccolo-2.local', 'the rename Avahi holds is kept, not probed again');
});

test('an uninstalled app stops resolving (goodbye)', async () => {
  const name = `${hostLabel(app, 'web')}.piccolo-2.local`;
  assert.is(await clientAvahi!.resolve(name), LAN.device);
  const removed = await api.call('DELETE', `/api/v1/apps/${app}`, { confirm: app });
  assert.is(removed.status, 202, JSON.stringify(removed.body));
  await jobDone(api, removed.body.job);
  // Well within the A record's 120 s TTL: only a goodbye makes the client forget it this soon.
  await resolvesTo(name, undefined, 20_000);
});

test('renamed in the portal: the device answers at the new name at once, and the old one goes', async () => {
  const renamed = await api.call('PUT', '/api/v1/system/device', { name: 'homebox' });
  assert.is(renamed.status, 200, JSON.stringify(renamed.body));
  await reported('announced', 'homebox.local');
  await resolvesTo('homebox.local', LAN.device);
  await resolvesTo('piccolo-2.local', undefined, 20_000);
});

test.run();
