// Each listener's middleware through the proxy bundle: the auth gate (session checked with the
// daemon, browsers sent to the portal login and back, the session never reaching the app),
// private listeners gated by default, rate_limit, ip_allow, connection_limit, request_log.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import net from 'node:net';
import { bundleServices } from '../../image/bundle.js';
import { waitFor } from '../support/processes.js';
import { echoServer, freePort, route, startProxy, type ProxyHarness } from '../support/proxy-harness.js';
import { rawGet } from '../support/http-get.js';

let harness: ProxyHarness;
let app: { server: http.Server; port: number };
const ports = { gated: 0, privateDefault: 0, limited: 0, lanOnly: 0, capped: 0 };

test.before(async () => {
  await bundleServices();
  app = await echoServer('app');
  harness = await startProxy({ PICCOLO_PROXY_LOGIN_URL: 'http://{host}:8080/login' });
  for (const name of Object.keys(ports) as (keyof typeof ports)[]) ports[name] = await freePort();
  await harness.setRoutes({
    routes: [
      route({ app: 'gated', publicPort: ports.gated, hostBindPort: app.port, middleware: [{ name: 'auth' }, { name: 'request_log', params: { sample: 1 } }] }),
      route({ app: 'private', publicPort: ports.privateDefault, hostBindPort: app.port, access: 'private', hostnames: ['web-private.piccolo.local'] }),
      route({ app: 'limited', publicPort: ports.limited, hostBindPort: app.port, middleware: [{ name: 'rate_limit', params: { rate: 1, burst: 3 } }] }),
      route({ app: 'lan', publicPort: ports.lanOnly, hostBindPort: app.port, middleware: [{ name: 'ip_allow', params: { cidrs: ['10.0.0.0/8'] } }] }),
      route({ app: 'capped', publicPort: ports.capped, hostBindPort: app.port, middleware: [{ name: 'connection_limit', params: { max: 2 } }] }),
    ],
  });
});

test.after(async () => {
  await harness?.stop();
  app?.server.close();
});

test('auth: an API client without a session gets 401; a browser is sent to the portal login with the way back', async () => {
  assert.is((await rawGet(ports.gated)).status, 401);
  const browser = await rawGet(ports.gated, { accept: 'text/html', host: 'nas.local:1234' });
  assert.is(browser.status, 302);
  const location = new URL(browser.headers.location!);
  assert.is(location.origin + location.pathname, 'http://nas.local:8080/login');
  assert.is(location.searchParams.get('next'), 'http://nas.local:1234/page?x=1');
  assert.is((await rawGet(ports.gated, { cookie: 'piccolo_session=forged' })).status, 401);
});

test('auth: a valid session passes; the app learns the user but never sees the session cookie', async () => {
  harness.sessions.set('s3cret', 'alice');
  const res = await rawGet(ports.gated, { cookie: 'theme=dark; piccolo_session=s3cret; lang=en', 'x-piccolo-user': 'mallory' });
  assert.is(res.status, 200);
  const seen = JSON.parse(res.body);
  assert.is(seen.headers.cookie, 'theme=dark; lang=en');
  assert.is(seen.headers['x-piccolo-user'], 'alice');
  await waitFor(() => harness.proxy.logs.find((l) => l.msg === 'request' && l.app === 'gated' && l.status === 200 && l.path === '/page'), 3000, 'request_log line');
});

test('a private listener is gated even without auth in its middleware, on its port and by host name', async () => {
  assert.is((await rawGet(ports.privateDefault)).status, 401);
  assert.is((await rawGet(harness.portalPort, { host: 'web-private.piccolo.local' })).status, 401);
  assert.is((await rawGet(ports.privateDefault, { cookie: 'piccolo_session=s3cret' })).status, 200);
});

test('auth: WebSocket upgrades are gated too', async () => {
  const reply = await new Promise<string>((resolve) => {
    const socket = net.connect(ports.gated, '127.0.0.1', () =>
      socket.write('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'),
    );
    let data = '';
    socket.on('data', (d) => (data += d)).on('close', () => resolve(data));
  });
  assert.match(reply, /^HTTP\/1.1 401/);
});

test('rate_limit: the burst passes, then 429 with Retry-After', async () => {
  const statuses = [];
  for (let i = 0; i < 5; i++) statuses.push((await rawGet(ports.limited)).status);
  assert.equal(statuses, [200, 200, 200, 429, 429]);
  const limited = await rawGet(ports.limited);
  assert.ok(Number(limited.headers['retry-after']) >= 1);
});

test('ip_allow: a client outside the list is refused at connect time', async () => {
  const outcome = await rawGet(ports.lanOnly).then((r) => `status ${r.status}`, (err) => err.code);
  assert.match(outcome, /ECONNRESET|EPIPE|socket hang up/);
});

test('connection_limit: a third concurrent connection is refused; a slot frees when one closes', async () => {
  const open = async () => {
    const socket = net.connect(ports.capped, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    return socket;
  };
  const [a, b] = [await open(), await open()];
  await new Promise((r) => setTimeout(r, 100));
  const third = await rawGet(ports.capped).then((r) => `status ${r.status}`, (err) => err.code);
  assert.match(third, /ECONNRESET|EPIPE|socket hang up/);
  a.destroy();
  await new Promise((r) => setTimeout(r, 100));
  assert.is((await rawGet(ports.capped)).status, 200);
  b.destroy();
});

test.run();
