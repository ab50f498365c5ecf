// The forwarder's upstream half in one process, against a scripted raw-TCP app: the head the app
// gets, keep-alive reuse of one upstream connection, a dead pooled connection retried once for a
// GET (and not for a POST), each response framing back to the client, refused responses as 502,
// silence as 504, and a client that goes away closing the upstream connection.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import net from 'node:net';
import { createLogger } from '../../services/common/logger.js';
import { UpstreamPool } from '../../services/proxy/h1/upstream-pool.js';
import { HttpForwarder } from '../../services/proxy/http-forwarder.js';
import { PortalAddress } from '../../services/proxy/portal-address.js';
import type { ServedRoute } from '../../services/proxy/routing.js';
import { listenOn, rawExchange } from '../support/proxy-harness.js';

/** What the app does with each request head it reads on a connection (the request's raw bytes so far). */
let answer: (socket: net.Socket, request: string, index: number) => void = () => {};
const appConnections: net.Socket[] = [];
let received: string[] = [];
let app: net.Server;
let proxy: http.Server;
let proxyPort = 0;
let pool: UpstreamPool;
let appPort = 0;

test.before(async () => {
  app = net.createServer((socket) => {
    appConnections.push(socket);
    socket.on('error', () => {});
    let buffer = '';
    socket.on('data', (data) => {
      buffer += data.toString('latin1');
      // One request per head; bodies in these tests are small enough to arrive with it.
      for (let end = buffer.indexOf('\r\n\r\n'); end >= 0; end = buffer.indexOf('\r\n\r\n')) {
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(buffer.slice(0, end))?.[1] ?? 0);
        const chunkedEnd = /\r\ntransfer-encoding: chunked/i.test(buffer.slice(0, end)) ? buffer.indexOf('0\r\n\r\n', end) : -1;
        const total = chunkedEnd >= 0 ? chunkedEnd + 5 : end + 4 + length;
        if (buffer.length < total) return;
        const request = buffer.slice(0, total);
        buffer = buffer.slice(total);
        received.push(request);
        answer(socket, request, received.length);
      }
    });
  });
  appPort = await listenOn(app);
  pool = new UpstreamPool({ port: appPort });
  const forwarder = new HttpForwarder({
    logger: createLogger({ service: 'test', level: 'error' }),
    upstreamTimeoutMs: 500,
    maxBodyBytes: 1024,
    portal: new PortalAddress({ portalPorts: new Set(), portalHostnames: () => [], loginUrl: '' }),
  });
  // An app's route with no middleware: all the forwarder reads of it is the app's name and the response headers to set.
  const served = { route: { app: 'demo' }, pipeline: { responseHeaders: undefined } } as unknown as ServedRoute;
  proxy = http.createServer((req, res) => {
    const upstream = { target: { port: appPort }, pool };
    forwarder.forward(req, res, upstream, { secure: false, client: '192.0.2.7' }, { ...served, upstream });
  });
  proxyPort = await listenOn(proxy);
});

test.after(() => {
  pool.destroy();
  proxy.close();
  app.close();
  for (const socket of appConnections) socket.destroy();
});

function reset(respond: typeof answer): void {
  answer = respond;
  received = [];
  pool.destroy();
  pool = new UpstreamPool({ port: appPort });
  appConnections.splice(0).forEach((socket) => socket.destroy());
}

const ok = (body = 'ok') => (socket: net.Socket) => socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nX-App: yes\r\n\r\n${body}`);

test('the app gets the head as the client sent it, less hop-by-hop fields, with the forwarding facts', async () => {
  reset(ok());
  await rawExchange(
    proxyPort,
    'GET /path?q=1 HTTP/1.1\r\nHost: app.local\r\nHost: other.local\r\nUser-Agent: t\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nConnection: close, X-Secret\r\nX-Secret: s\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-MiXed-Case: v\r\nX-Dup: 1\r\nX-Dup: 2\r\n\r\n',
  );
  assert.is(received.length, 1);
  assert.is(
    received[0],
    'GET /path?q=1 HTTP/1.1\r\nHost: app.local\r\nUser-Agent: t\r\nX-MiXed-Case: v\r\nX-Dup: 1\r\nX-Dup: 2\r\n' +
      'x-forwarded-for: 192.0.2.7\r\nx-forwarded-proto: http\r\nx-forwarded-host: app.local\r\nforwarded: for=192.0.2.7;proto=http;host="app.local"\r\n\r\n',
  );
});

test('keep-alive: 50 requests from several clients go over one upstream connection', async () => {
  reset(ok());
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < 50; i++) {
    const body = await new Promise<string>((resolve) => http.get({ port: proxyPort, host: '127.0.0.1', path: `/${i}`, agent }, (res) => res.setEncoding('utf8').on('data', resolve)));
    assert.is(body, 'ok');
  }
  agent.destroy();
  for (let i = 0; i < 5; i++) assert.match(await rawExchange(proxyPort, `GET /raw${i} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`), /^HTTP\/1\.1 200 OK\r\n[^]*X-App: yes\r\n[^]*\r\n\r\nok$/);
  assert.is(received.length, 55);
  assert.is(appConnections.length, 1);
});

test('a pooled connection the app closed is retried once for a GET; a POST with a body gets 502', async () => {
  // Each connection answers its first request only, then closes without answering the next one.
  reset((socket, _request) => {
    const served = (socket as net.Socket & { served?: boolean }).served;
    if (served) return void socket.destroy();
    (socket as net.Socket & { served?: boolean }).served = true;
    ok()(socket);
  });
  const get = () => rawExchange(proxyPort, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.match(await get(), /^HTTP\/1\.1 200 /);
  assert.match(await get(), /^HTTP\/1\.1 200 /, 'retried on a new connection');
  assert.is(appConnections.length, 2);
  const post = await rawExchange(proxyPort, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc');
  assert.match(post, /^HTTP\/1\.1 502 /);
  assert.match(post, /the app demo is not answering: it closed the connection \(ECONNRESET\)/);
});

test('response framings reach the client: chunked, close-delimited, 1xx before the answer, HEAD, 204', async () => {
  reset((socket, request) => {
    const path = request.split(' ')[1];
    if (path === '/chunked') socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
    else if (path === '/close') socket.end('HTTP/1.1 200 OK\r\n\r\nuntil the end');
    else if (path === '/early') socket.write('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nlater');
    else if (path === '/none') socket.write('HTTP/1.1 204 No Content\r\n\r\n');
    else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n');
  });
  const bodyOf = async (path: string, method = 'GET') => {
    const res = await fetch(`http://127.0.0.1:${proxyPort}${path}`, { method });
    return `${res.status} ${await res.text()}`;
  };
  assert.is(await bodyOf('/chunked'), '200 hello world');
  assert.is(await bodyOf('/close'), '200 until the end');
  assert.is(await bodyOf('/early'), '200 later');
  assert.is(await bodyOf('/none'), '204 ');
  assert.match(await rawExchange(proxyPort, 'HEAD /head HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 200 OK\r\n[^]*content-length: 5\r\n[^]*\r\n\r\n$/i);
});

test('a chunked upload is re-chunked to the app; one over the limit gets 413', async () => {
  reset(ok());
  await rawExchange(proxyPort, 'POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n');
  assert.match(received[0]!, /\r\ntransfer-encoding: chunked\r\n\r\n(3\r\nabc\r\n2\r\nde\r\n|5\r\nabcde\r\n)0\r\n\r\n$/);
  const big = 'a'.repeat(800);
  const reply = await rawExchange(proxyPort, `POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n${big}\r\n320\r\n${big}\r\n0\r\n\r\n`);
  assert.match(reply, /^HTTP\/1\.1 413 /);
});

test('refused responses get 502 and close the upstream connection', async () => {
  reset((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'));
  const reply = await rawExchange(proxyPort, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.match(reply, /^HTTP\/1\.1 502 /);
  assert.match(reply, /the app demo sent a response the proxy refuses: Content-Length beside Transfer-Encoding/);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(appConnections[0]!.destroyed || appConnections[0]!.readableEnded, 'the upstream connection was closed');
});

test('a silent app gets 504 after the upstream timeout', async () => {
  reset(() => {});
  const t0 = Date.now();
  assert.match(await rawExchange(proxyPort, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 504 /);
  assert.ok(Date.now() - t0 >= 450, `after ${Date.now() - t0} ms`);
});

test('a client that goes away mid-response closes the upstream connection', async () => {
  reset((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial'));
  const client = net.connect(proxyPort, '127.0.0.1', () => client.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
  await new Promise((resolve) => client.once('data', resolve));
  const upstreamClosed = new Promise((resolve) => appConnections[0]!.once('close', resolve));
  client.destroy();
  await Promise.race([upstreamClosed, new Promise((_, reject) => setTimeout(() => reject(new Error('the upstream connection stayed open')), 1000))]);
});

test.run();
