// The proxy bundle routing real traffic: by port and by host name, HTTP with the forwarding
// headers, WebSocket, raw TCP with half-close, live listener changes, ACME challenges.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import net from 'node:net';
import { WebSocketServer, WebSocket } from 'ws';
import { bundleServices } from '../../image/bundle.js';
import { rawGet } from '../support/http-get.js';
import { echoServer, freePort, listenOn, rawExchange, route, startProxy, type ProxyHarness } from '../support/proxy-harness.js';

let harness: ProxyHarness;
let blog: { server: http.Server; port: number };
let wiki: { server: http.Server; port: number };
let portal: { server: http.Server; port: number };
const ports = { blog: 0, wiki: 0 };

test.before(async () => {
  await bundleServices();
  [blog, wiki, portal] = await Promise.all([echoServer('blog'), echoServer('wiki'), echoServer('portal')]);
  harness = await startProxy();
  ports.blog = await freePort();
  ports.wiki = await freePort();
  await harness.setRoutes({
    portal: { hostBindPort: portal.port, hostnames: ['piccolo.local'] },
    routes: [
      route({ app: 'blog', publicPort: ports.blog, hostBindPort: blog.port, hostnames: ['web-blog.piccolo.local', `${ports.blog}-blog`] }),
      route({ app: 'wiki', publicPort: ports.wiki, hostBindPort: wiki.port, hostnames: ['web-wiki.piccolo.local'] }),
    ],
  });
});

test.after(async () => {
  await harness?.stop();
  for (const s of [blog, wiki, portal]) s?.server.close();
});

const get = (port: number, path = '/', headers: Record<string, string> = {}) => rawGet(port, headers, path);

test('each app port forwards to its app with X-Forwarded-* and Forwarded; hop-by-hop headers stay behind', async () => {
  const res = await get(ports.blog, '/posts?id=1', {
    host: 'nas:1234',
    connection: 'keep-alive, x-secret-hop',
    'x-secret-hop': 'no',
    'keep-alive': 'timeout=5',
    te: 'trailers',
    'x-forwarded-for': '6.6.6.6',
    'x-piccolo-user': 'forged',
  });
  assert.is(res.status, 200);
  const seen = JSON.parse(res.body);
  assert.is(seen.name, 'blog');
  assert.is(seen.url, '/posts?id=1');
  assert.is(seen.headers.host, 'nas:1234');
  assert.is(seen.headers['x-forwarded-for'], '127.0.0.1', 'client-supplied X-Forwarded-For is replaced');
  assert.is(seen.headers['x-forwarded-proto'], 'http');
  assert.is(seen.headers['x-forwarded-host'], 'nas:1234');
  assert.is(seen.headers.forwarded, 'for=127.0.0.1;proto=http;host="nas:1234"');
  for (const hop of ['x-secret-hop', 'keep-alive', 'te', 'x-piccolo-user']) assert.is(seen.headers[hop], undefined, hop);
  assert.is((await get(ports.wiki)).body.includes('"wiki"'), true);
});

test('the portal port routes by host name: app names, port labels, the device itself, and a 404 page for anything else', async () => {
  const viaName = await get(harness.portalPort, '/', { host: 'web-wiki.piccolo.local' });
  assert.is(JSON.parse(viaName.body).name, 'wiki');
  const viaLabel = await get(harness.portalPort, '/', { host: `${ports.blog}-blog.piccolo.local:${harness.portalPort}` });
  assert.is(JSON.parse(viaLabel.body).name, 'blog');
  assert.is(JSON.parse((await get(harness.portalPort, '/', { host: 'piccolo.local' })).body).name, 'portal');
  assert.is(JSON.parse((await get(harness.portalPort, '/', { host: '192.168.1.20' })).body).name, 'portal');
  const unknown = await get(harness.portalPort, '/', { host: 'evil.example', accept: 'text/html' });
  assert.is(unknown.status, 404);
  assert.match(unknown.headers['content-type']!, /text\/html/);
  assert.match(unknown.body, /no route for evil\.example/i);
  const unknownJson = await get(harness.portalPort, '/', { host: 'other.piccolo.local' });
  assert.is(unknownJson.status, 404);
  assert.match(JSON.parse(unknownJson.body).error.message, /no route/);
});

test('before the daemon hands over its first table, the portal port says "starting" (503, Retry-After), not "no app here"', async () => {
  const early = await startProxy({ PICCOLO_PROXY_DAEMON_SOCKET: '/run/piccolo-test-no-daemon/internal.sock' });
  try {
    const answer = await get(early.portalPort, '/', { host: '127.0.0.1', accept: 'text/html' });
    assert.is(answer.status, 503);
    assert.is(answer.headers['retry-after'], '2');
    assert.match(answer.body, /starting/i);
  } finally {
    await early.stop();
  }
});

test('bodies stream both ways: a 20 MiB upload reaches the app, a 20 MiB download reaches the client', async () => {
  const big = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => {
      res.writeHead(200, { 'x-received': String(n) });
      const chunk = Buffer.alloc(64 * 1024, 7);
      let left = 320;
      const pump = () => {
        while (left > 0) {
          left--;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
  });
  const bigPort = await listenOn(big);
  const publicPort = await freePort();
  await harness.setRoutes({ routes: [...harness.routes.current().routes, route({ app: 'big', publicPort, hostBindPort: bigPort })] });
  const result = await new Promise<{ received: string; downloaded: number }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: publicPort, method: 'POST', path: '/upload', agent: false }, (res) => {
      let downloaded = 0;
      res.on('data', (c: Buffer) => (downloaded += c.length));
      res.on('end', () => resolve({ received: res.headers['x-received'] as string, downloaded }));
    });
    req.on('error', reject);
    const chunk = Buffer.alloc(1024 * 1024, 1);
    let left = 20;
    const pump = () => {
      while (left > 0) {
        left--;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
  assert.equal(result, { received: String(20 * 1024 * 1024), downloaded: 20 * 1024 * 1024 });
  big.close();
});

test('listeners open and close live; a keep-alive connection to another route keeps working throughout', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const viaAgent = () =>
    new Promise<string>((resolve, reject) =>
      http.get({ host: '127.0.0.1', port: ports.wiki, agent }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve(`${res.socket?.localPort ?? ''}${body.includes('wiki') ? 'wiki' : body}`));
      }).on('error', reject),
    );
  const first = await viaAgent();
  const added = await freePort();
  const base = harness.routes.current().routes;
  await harness.setRoutes({ routes: [...base, route({ app: 'extra', publicPort: added, hostBindPort: blog.port })] });
  assert.is(JSON.parse((await get(added)).body).name, 'blog');
  await harness.setRoutes({ routes: base.filter((r) => r.app !== 'blog') });
  const refused = await get(ports.blog).then(() => 'answered', (err) => err.code);
  assert.is(refused, 'ECONNREFUSED');
  assert.is(await viaAgent(), first, 'same keep-alive connection, same answer');
  await harness.setRoutes({ routes: base });
  assert.is((await get(ports.blog)).status, 200);
  agent.destroy();
});

test('WebSocket upgrades are spliced through, both on the app port and by host name', async () => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((resolve) => wss.once('listening', resolve));
  wss.on('connection', (ws, req) => ws.on('message', (data) => ws.send(`${req.headers['x-forwarded-for']}:${data}`)));
  const publicPort = await freePort();
  const wsPort = (wss.address() as net.AddressInfo).port;
  await harness.setRoutes({ routes: [...harness.routes.current().routes, route({ app: 'chat', protocol: 'websocket', publicPort, hostBindPort: wsPort, hostnames: ['web-chat.piccolo.local'] })] });
  const echo = async (url: string, headers: Record<string, string> = {}) => {
    const ws = new WebSocket(url, { headers });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send('x'.repeat(100_000));
    const reply = await new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())));
    ws.close();
    return reply;
  };
  assert.is(await echo(`ws://127.0.0.1:${publicPort}/socket`), `127.0.0.1:${'x'.repeat(100_000)}`);
  assert.is((await echo(`ws://127.0.0.1:${harness.portalPort}/socket`, { host: 'web-chat.piccolo.local' })).length, 100_010);
  wss.close();
});

test('raw TCP is spliced with half-close carried both ways', async () => {
  // The app reads until the client's FIN, then answers and closes: only works if FIN passes through.
  const app = net.createServer({ allowHalfOpen: true }, (socket) => {
    let got = '';
    socket.on('data', (d) => (got += d));
    socket.on('end', () => socket.end(`got ${got.length} bytes`));
  });
  const appPort = await listenOn(app);
  const publicPort = await freePort();
  await harness.setRoutes({ routes: [...harness.routes.current().routes, route({ app: 'db', protocol: 'raw', publicPort, hostBindPort: appPort })] });
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = net.connect({ port: publicPort, host: '127.0.0.1', allowHalfOpen: true }, () => socket.end('y'.repeat(300_000)));
    let data = '';
    socket.on('data', (d) => (data += d));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
  assert.is(answer, 'got 300000 bytes');
  app.close();
});

test('ACME HTTP-01 challenges are answered from the daemon on any HTTP listener', async () => {
  harness.challenges.set('tok-123', 'tok-123.thumbprint');
  for (const [port, host] of [[harness.portalPort, 'anything.example'], [ports.wiki, 'nas']] as const) {
    const res = await get(port, '/.well-known/acme-challenge/tok-123', { host });
    assert.is(res.status, 200);
    assert.is(res.body, 'tok-123.thumbprint');
  }
  assert.is((await get(harness.portalPort, '/.well-known/acme-challenge/unknown')).status, 404);
});

test('an app that is down gets a 502 and the proxy keeps serving', async () => {
  const deadPort = await freePort();
  const publicPort = await freePort();
  await harness.setRoutes({ routes: [...harness.routes.current().routes, route({ app: 'dead', publicPort, hostBindPort: deadPort })] });
  const res = await get(publicPort);
  assert.is(res.status, 502);
  assert.match(JSON.parse(res.body).error.message, /ECONNREFUSED/);
  assert.is((await get(ports.wiki)).status, 200);
  const raw = await rawExchange(publicPort, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(raw, /^HTTP\/1.1 502/);
});

test.run();
