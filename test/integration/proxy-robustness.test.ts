// The proxy under abuse, on real sockets: slowloris, malformed requests, header floods, oversized
// bodies, an upstream that never answers, one that resets mid-body, and 10,000 idle keep-alive
// connections. Each case checks the status the client gets, that another route keeps serving
// meanwhile, and that the proxy's resident memory stays bounded.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import net from 'node:net';
import { bundleServices } from '../../image/bundle.js';
import { echoServer, freePort, listenOn, rawExchange, route, rssMiB, startProxy, type ProxyHarness } from '../support/proxy-harness.js';

let harness: ProxyHarness;
let healthy: { server: http.Server; port: number };
const ports = { healthy: 0, target: 0, silent: 0, resetting: 0 };
const servers: net.Server[] = [];
let baselineRss = 0;
/** Headroom over the idle proxy's RSS; 10,000 connections need the most. */
const RSS_HEADROOM_MIB = 250;

test.before(async () => {
  await bundleServices();
  healthy = await echoServer('healthy');
  const target = await echoServer('target');
  // Reads the request, never answers.
  const silent = net.createServer((socket) => socket.on('data', () => {}));
  // Takes part of the body, then resets; or answers with half a body, then resets.
  const resetting = http.createServer((req, res) => {
    if (req.url === '/half-response') {
      res.writeHead(200, { 'content-length': '100000' });
      res.write(Buffer.alloc(10_000));
      setTimeout(() => req.socket.resetAndDestroy(), 50);
      return;
    }
    req.once('data', () => req.socket.resetAndDestroy());
  });
  servers.push(healthy.server, target.server, silent, resetting);
  const [silentPort, resettingPort] = [await listenOn(silent), await listenOn(resetting)];
  harness = await startProxy({
    PICCOLO_PROXY_HEADERS_TIMEOUT_MS: '2000',
    PICCOLO_PROXY_REQUEST_TIMEOUT_MS: '5000',
    PICCOLO_PROXY_UPSTREAM_TIMEOUT_MS: '2000',
    PICCOLO_PROXY_MAX_BODY_BYTES: String(1024 * 1024),
  });
  for (const name of Object.keys(ports) as (keyof typeof ports)[]) ports[name] = await freePort();
  await harness.setRoutes({
    routes: [
      route({ app: 'healthy', publicPort: ports.healthy, hostBindPort: healthy.port }),
      route({ app: 'target', publicPort: ports.target, hostBindPort: target.port }),
      route({ app: 'silent', publicPort: ports.silent, hostBindPort: silentPort }),
      route({ app: 'resetting', publicPort: ports.resetting, hostBindPort: resettingPort }),
    ],
  });
  for (let i = 0; i < 200; i++) await fetch(`http://127.0.0.1:${ports.healthy}/warm`);
  baselineRss = rssMiB(harness.proxy.pid);
});

test.after(async () => {
  await harness?.stop();
  for (const server of servers) server.close();
});

/** The healthy route answers, and quickly. */
async function assertOthersServe(): Promise<void> {
  const t0 = Date.now();
  const res = await fetch(`http://127.0.0.1:${ports.healthy}/`);
  assert.is(res.status, 200);
  assert.is((await res.json()).name, 'healthy');
  assert.ok(Date.now() - t0 < 1000, `healthy route answered in ${Date.now() - t0} ms`);
}

function assertMemoryBounded(what: string): void {
  const rss = rssMiB(harness.proxy.pid);
  assert.ok(rss < baselineRss + RSS_HEADROOM_MIB, `${what}: RSS ${rss.toFixed(0)} MiB, baseline ${baselineRss.toFixed(0)} MiB`);
  assert.is(harness.proxy.logs.find((l) => l.msg === 'fatal'), undefined);
}

test('1,000 slowloris connections get 408 once the header deadline passes; others keep being served', async () => {
  const statuses: string[] = [];
  const sockets: net.Socket[] = [];
  await Promise.all(
    Array.from({ length: 1000 }, () =>
      new Promise<void>((resolve) => {
        const socket = net.connect(ports.target, '127.0.0.1', () => {
          socket.write('GET / HTTP/1.1\r\nHost: victim\r\n');
          resolve();
        });
        let reply = '';
        socket.on('data', (d) => (reply += d));
        socket.on('close', () => statuses.push(reply.slice(9, 12) || 'closed'));
        socket.on('error', () => {});
        sockets.push(socket);
      }),
    ),
  );
  const drip = setInterval(() => sockets.forEach((s) => s.writable && s.write('x-drip: 1\r\n')), 300);
  await assertOthersServe();
  const t0 = Date.now();
  while (statuses.length < 1000 && Date.now() - t0 < 8000) await new Promise((r) => setTimeout(r, 100));
  clearInterval(drip);
  const count408 = statuses.filter((s) => s === '408').length;
  assert.is(statuses.length, 1000, 'every slow connection was closed');
  assert.ok(count408 >= 990, `408 for ${count408} of 1000`);
  await assertOthersServe();
  assertMemoryBounded('slowloris');
});

test('malformed request lines and headers get 400', async () => {
  const cases = [
    'GARBAGE\r\n\r\n',
    'GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n',
    'GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nbad header name: 1\r\n\r\n',
    'GET / HTTP/1.1\r\n\r\n', // no Host
    'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nx-a: b\r\n c\r\n\r\n', // obsolete line folding
  ];
  for (const payload of cases) {
    const reply = await rawExchange(ports.target, payload);
    assert.match(reply, /^HTTP\/1.1 400/, JSON.stringify(payload));
  }
  await assertOthersServe();
  assertMemoryBounded('malformed');
});

test('header floods get 431, whether many headers or one huge one', async () => {
  const many = Array.from({ length: 3000 }, (_, i) => `x-h${i}: v\r\n`).join('');
  const huge = `x-big: ${'a'.repeat(20_000)}\r\n`;
  for (const headers of [many, huge]) {
    const reply = await rawExchange(ports.target, `GET / HTTP/1.1\r\nHost: a\r\n${headers}\r\n`);
    assert.match(reply, /^HTTP\/1.1 431/);
  }
  // Fifty clients flooding at once, without end.
  await Promise.all(Array.from({ length: 50 }, () => rawExchange(ports.target, `GET / HTTP/1.1\r\nHost: a\r\n${'x-flood: 1\r\n'.repeat(5000)}`)));
  await assertOthersServe();
  assertMemoryBounded('header flood');
});

test('bodies over the limit get 413, declared or chunked', async () => {
  const declared = await rawExchange(ports.target, `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n`);
  assert.match(declared, /^HTTP\/1.1 413/);
  const chunk = 'a'.repeat(64 * 1024);
  const chunked = `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n` + `10000\r\n${chunk}\r\n`.repeat(20);
  assert.match(await rawExchange(ports.target, chunked), /^HTTP\/1.1 413/);
  await assertOthersServe();
});

test('an upstream that never answers gives 504 after the upstream timeout', async () => {
  const t0 = Date.now();
  const res = await fetch(`http://127.0.0.1:${ports.silent}/`);
  assert.is(res.status, 504);
  const elapsed = Date.now() - t0;
  assert.ok(elapsed >= 1900 && elapsed < 4000, `504 after ${elapsed} ms`);
  await assertOthersServe();
});

test('an upstream that resets mid-body: 502 while uploading, a cut response while downloading', async () => {
  const upload = await fetch(`http://127.0.0.1:${ports.resetting}/upload`, { method: 'POST', body: Buffer.alloc(512 * 1024) });
  assert.is(upload.status, 502);
  const download = await new Promise<string>((resolve) => {
    http.get({ host: '127.0.0.1', port: ports.resetting, path: '/half-response' }, (res) => {
      let n = 0;
      res.on('data', (d) => (n += d.length));
      res.on('error', () => resolve(`aborted after ${n} bytes`));
      res.on('end', () => resolve(`complete ${n}`));
    });
  });
  assert.match(download, /^aborted after \d+ bytes$/);
  await assertOthersServe();
  assertMemoryBounded('upstream reset');
});

test('10,000 idle keep-alive connections are held; others keep being served; memory stays bounded', async () => {
  const sockets: net.Socket[] = [];
  const request = 'GET /idle HTTP/1.1\r\nHost: a\r\n\r\n';
  for (let batch = 0; batch < 20; batch++) {
    await Promise.all(
      Array.from({ length: 500 }, () =>
        new Promise<void>((resolve, reject) => {
          const socket = net.connect(ports.target, '127.0.0.1', () => socket.write(request));
          socket.once('data', (d) => (d.toString().startsWith('HTTP/1.1 200') ? resolve() : reject(new Error(d.toString().slice(0, 40)))));
          socket.on('error', reject);
          sockets.push(socket);
        }),
      ),
    );
  }
  assert.is(sockets.filter((s) => !s.destroyed).length, 10_000);
  await assertOthersServe();
  await new Promise((r) => setTimeout(r, 1000));
  assert.is(sockets.filter((s) => !s.destroyed).length, 10_000, 'idle connections stay open within the keep-alive timeout');
  const rss = rssMiB(harness.proxy.pid);
  console.log(`  proxy RSS with 10,000 idle keep-alive connections: ${rss.toFixed(0)} MiB (baseline ${baselineRss.toFixed(0)} MiB)`);
  assertMemoryBounded('10k idle');
  for (const socket of sockets) socket.destroy();
  await new Promise((r) => setTimeout(r, 500));
  await assertOthersServe();
});

test.run();
