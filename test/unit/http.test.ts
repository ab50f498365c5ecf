import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import net from 'node:net';
import { BadRequestError } from '../../services/common/errors.js';
import { HttpServerModule, Router, readJson } from '../../services/common/http.js';
import { createLogger } from '../../services/common/logger.js';

const logged: string[] = [];
const logger = createLogger({ service: 'test', write: (line) => void logged.push(line) });

const router = new Router(logger)
  .on('GET', '/items/:id', (_req, params) => ({ body: { id: params.id } }))
  .on('POST', '/items', async (req) => ({ status: 201, body: await readJson(req, 64) }))
  .on('GET', '/bad', () => {
    throw new BadRequestError('bad thing', ['field: wrong']);
  })
  .on('GET', '/boom', () => {
    throw new Error('secret internals');
  });
const server = new HttpServerModule({ name: 'test', address: { host: '127.0.0.1', port: 0 }, listener: router.listener, logger });

async function call(method: string, path: string, body?: string, type = 'application/json') {
  const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { method, body, headers: body ? { 'content-type': type } : {} });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

test.before(() => server.start());
test.after(() => server.stop());

test('routes with parameters', async () => {
  assert.equal((await call('GET', '/items/a%20b')).json, { id: 'a b' });
});

test('unknown path is 404, wrong method 405 with Allow', async () => {
  const missing = await call('GET', '/nope');
  assert.is(missing.status, 404);
  assert.is(missing.json.error.code, 'not_found');
  const wrong = await call('DELETE', '/items');
  assert.is(wrong.status, 405);
  assert.is(wrong.headers.get('allow'), 'POST');
});

test('typed errors map to their status with details', async () => {
  const res = await call('GET', '/bad');
  assert.is(res.status, 400);
  assert.equal(res.json.error, { code: 'bad_request', message: 'bad thing', details: ['field: wrong'] });
});

test('unexpected errors are a 500 that leaks nothing, and are logged', async () => {
  const res = await call('GET', '/boom');
  assert.is(res.status, 500);
  assert.equal(res.json.error, { code: 'internal', message: 'internal error' });
  assert.match(logged.join(''), /secret internals/);
});

test('JSON bodies: checked type, size limit, syntax', async () => {
  const created = await call('POST', '/items', '{"a":1}');
  assert.is(created.status, 201);
  assert.equal(created.json, { a: 1 });
  assert.is((await call('POST', '/items', '{"a":1}', 'text/plain')).status, 415);
  assert.is((await call('POST', '/items', JSON.stringify({ a: 'x'.repeat(100) }))).status, 413);
  const broken = await call('POST', '/items', '{"a":');
  assert.is(broken.status, 400);
  assert.match(broken.json.error.message, /not valid JSON/);
});

test('a port in use fails start with EADDRINUSE', async () => {
  const other = new HttpServerModule({ name: 'clash', address: { host: '127.0.0.1', port: server.port }, listener: router.listener, logger });
  try {
    await other.start();
    assert.unreachable();
  } catch (err) {
    assert.is((err as NodeJS.ErrnoException).code, 'EADDRINUSE');
  }
});

test('stop ends after its grace although a client holds an upgraded socket open (a WebSocket that reconnected as its module stopped)', async () => {
  const upgrading = new HttpServerModule({
    name: 'upgrades',
    address: { host: '127.0.0.1', port: 0 },
    listener: router.listener,
    logger,
    stopGraceMs: 300,
    onUpgrade: (_req, socket) => void socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n'),
  });
  await upgrading.start();
  const client = net.connect(upgrading.port, '127.0.0.1');
  client.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n');
  await new Promise((resolve) => client.once('data', resolve));
  const clientClosed = new Promise((resolve) => client.once('close', resolve));
  client.on('error', () => {});
  const begun = Date.now();
  await upgrading.stop();
  const took = Date.now() - begun;
  assert.ok(took >= 250 && took < 2000, `stopped after ${took} ms`);
  await clientClosed;
});

test('HEAD is answered like GET without a body', async () => {
  const res = await new Promise<http.IncomingMessage>((resolve) => http.request({ port: server.port, path: '/items/1', method: 'HEAD' }, resolve).end());
  assert.is(res.statusCode, 200);
  assert.ok(Number(res.headers['content-length']) > 0);
});

test.run();
