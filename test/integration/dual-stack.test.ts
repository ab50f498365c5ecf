// The proxy (portal and app listeners) and health over IPv6 as well as IPv4. First on '::' with
// ephemeral ports in this machine's namespace, then with the services' own defaults (:80, :443,
// app ports on '::', :4040) in a network namespace of the test's, where those ports are free.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { bundleServices } from '../../image/bundle.js';
import { echoServer, freePort, route, startProxy, type ProxyHarness } from '../support/proxy-harness.js';
import { ServiceProcess } from '../support/processes.js';
import { addNetns, inNsAsync, removeAll, uniqueId } from '../support/netns.js';

let tmp = '';
const cleanups: Array<() => unknown> = [];

test.before(async () => {
  await bundleServices();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'piccolo-dual-'));
});

test.after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  removeAll();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

interface Answer {
  status: number;
  body: string;
}

function get(host: string, port: number, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: '/dual', headers, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET [${host}]:${port} timed out`)));
    req.on('error', reject);
  });
}

/** Who answered (the echo server's name) and the client address the proxy passed on. */
function echoed(answer: Answer): { name: string; forwardedFor: unknown } {
  assert.is(answer.status, 200, answer.body);
  const body = JSON.parse(answer.body);
  return { name: body.name, forwardedFor: body.headers['x-forwarded-for'] };
}

function addCleanup(stop: () => unknown): void {
  cleanups.push(stop);
}

test('proxy on [::]: the portal and an app answer over ::1 and over 127.0.0.1, each client seen as itself', async () => {
  const portal = await echoServer('portal');
  const app = await echoServer('app');
  addCleanup(() => (portal.server.close(), app.server.close()));
  const harness = await startProxy({ PICCOLO_PROXY_LISTEN: '[::]:0', PICCOLO_PROXY_BIND_HOST: '::' });
  addCleanup(() => harness.stop());
  assert.match(await harness.proxy.address('listener-0'), /^:::\d+$/);
  const publicPort = await freePort();
  await harness.setRoutes({
    portal: { hostBindPort: portal.port, hostnames: ['piccolo.local'] },
    routes: [route({ app: 'blog', publicPort, hostBindPort: app.port })],
  });

  for (const [client, seenAs] of [
    ['::1', '::1'],
    // A dual-stack socket sees ::ffff:127.0.0.1; the proxy passes on the IPv4 address.
    ['127.0.0.1', '127.0.0.1'],
  ]) {
    assert.equal(echoed(await get(client!, harness.portalPort, { host: 'piccolo.local' })), { name: 'portal', forwardedFor: seenAs }, `portal from ${client}`);
    assert.equal(echoed(await get(client!, publicPort)), { name: 'app', forwardedFor: seenAs }, `app port from ${client}`);
  }
});

test('health on [::]: /health/live answers over ::1 and over 127.0.0.1', async () => {
  const health = await ServiceProcess.start('health', { PICCOLO_HEALTH_LISTEN: '[::]:0', PICCOLO_HEALTH_SOCKET: path.join(tmp, 'health-a.sock') });
  addCleanup(() => health.kill());
  await health.notified('READY=1', 20_000);
  const port = Number((await health.address('http')).split(':').pop());
  for (const client of ['::1', '127.0.0.1']) {
    const live = await new Promise<number>((resolve, reject) => http.get({ host: client, port, path: '/health/live' }, (res) => (res.resume(), resolve(res.statusCode!))).on('error', reject));
    assert.is(live, 200, `/health/live from ${client}`);
  }
});

// The defaults themselves, in a namespace of the test's own: nothing else holds 80, 443 or 4040 there.
const NS = `pds-${uniqueId()}`;

/** HTTP(S) servers on the namespace's loopback standing in for the portal and an app: they answer with their name. */
async function upstreamsIn(ns: string, ports: Record<string, number>): Promise<ChildProcess> {
  const js = `const http = require('node:http');
for (const [name, port] of Object.entries(${JSON.stringify(ports)}))
  http.createServer((req, res) => res.end(JSON.stringify({ name, xff: req.headers['x-forwarded-for'] }))).listen(port, '127.0.0.1');
setTimeout(() => console.log('ready'), 100);`;
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', js], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
  return child;
}

/** curl inside the namespace: "status body". */
async function curlIn(ns: string, url: string, ...args: string[]): Promise<{ status: number; body: string }> {
  const out = await inNsAsync(ns, 'curl', ['-gsk', '--max-time', '10', '-w', '\n%{http_code}', ...args, url]);
  const at = out.lastIndexOf('\n');
  return { status: Number(out.slice(at + 1)), body: out.slice(0, at) };
}

test('defaults: health on [::]:4040, the portal on [::]:80 and [::]:443, app ports on ::, all reached over ::1 and 127.0.0.1', async () => {
  addNetns(NS, { loopback: true });
  const upstreams = await upstreamsIn(NS, { portal: 18080, app: 18081 });
  addCleanup(() => upstreams.kill('SIGKILL'));

  const health = await ServiceProcess.start('health', { PICCOLO_HEALTH_LISTEN: undefined, PICCOLO_HEALTH_SOCKET: path.join(tmp, 'health-b.sock') }, undefined, { netns: NS });
  addCleanup(() => health.kill());
  await health.notified('READY=1', 20_000);
  assert.is(await health.address('http'), ':::4040');

  const h: ProxyHarness = await startProxy({ PICCOLO_PROXY_LISTEN: undefined, PICCOLO_PROXY_BIND_HOST: undefined }, { netns: NS });
  addCleanup(() => h.stop());
  assert.is(await h.proxy.address('listener-0'), ':::80');
  assert.is(await h.proxy.address('listener-1'), ':::443');
  const publicPort = 35080;
  await h.setRoutes({
    portal: { hostBindPort: 18080, hostnames: ['piccolo.local'] },
    routes: [route({ app: 'blog', publicPort, hostBindPort: 18081 })],
  });

  for (const [client, seenAs] of [
    ['[::1]', '::1'],
    ['127.0.0.1', '127.0.0.1'],
  ]) {
    const live = await curlIn(NS, `http://${client}:4040/health/live`);
    assert.is(live.status, 200, `health from ${client}: ${live.body}`);
    for (const url of [`http://${client}/`, `https://${client}/`]) {
      const portal = await curlIn(NS, url, '-H', 'Host: piccolo.local');
      assert.is(portal.status, 200, `${url}: ${portal.body}`);
      assert.equal(JSON.parse(portal.body), { name: 'portal', xff: seenAs }, url);
    }
    const app = await curlIn(NS, `http://${client}:${publicPort}/`);
    assert.is(app.status, 200, `app from ${client}: ${app.body}`);
    assert.equal(JSON.parse(app.body), { name: 'app', xff: seenAs }, `app from ${client}`);
  }
});

test.run();
