// The upstream pool on real sockets: newest idle connection first, the idle bound, the connection
// limit (a request beyond it waits, and may give up waiting), idle connections that the app
// closes or speaks on are dropped, and destroy() closing the idle ones and those that come back.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { UpstreamPool, type UpstreamConnection } from '../../services/proxy/h1/upstream-pool.js';
import { listenOn } from '../support/proxy-harness.js';

let app: net.Server;
let port = 0;
const accepted: net.Socket[] = [];

test.before(async () => {
  app = net.createServer((socket) => {
    accepted.push(socket);
    socket.on('error', () => {});
  });
  port = await listenOn(app);
});

test.after(() => {
  for (const socket of accepted) socket.destroy();
  app.close();
});

const take = (pool: UpstreamPool) => new Promise<UpstreamConnection>((resolve) => pool.acquire(resolve));
const connected = (connection: UpstreamConnection) => new Promise((resolve) => (connection.socket.connecting ? connection.socket.once('connect', resolve) : resolve(undefined)));
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

test('a released connection is reused, newest first; beyond maxIdle it is closed', async () => {
  const pool = new UpstreamPool({ port }, { maxIdle: 1, maxConnections: 10 });
  const [a, b] = [await take(pool), await take(pool)];
  await Promise.all([connected(a), connected(b)]);
  a.release();
  b.release();
  assert.ok(b.socket.destroyed, 'the second idle one is over maxIdle');
  const again = await take(pool);
  assert.is(again, a);
  assert.is(again.reused, true);
  pool.destroy();
  again.release();
  assert.ok(a.socket.destroyed, 'a connection coming back to a destroyed pool is closed');
});

test('at the connection limit a request waits for a connection to come back, or gives up waiting', async () => {
  const pool = new UpstreamPool({ port }, { maxIdle: 4, maxConnections: 1 });
  const first = await take(pool);
  const handed: UpstreamConnection[] = [];
  const cancel = pool.acquire((connection) => handed.push(connection));
  const second = new Promise<UpstreamConnection>((resolve) => pool.acquire(resolve));
  assert.is(handed.length, 0);
  cancel();
  first.release();
  assert.is(await second, first, 'the waiter still waiting got it');
  assert.is(handed.length, 0, 'the one that gave up got nothing');
  // A connection that closes frees its slot: the next waiter gets a new one.
  const third = new Promise<UpstreamConnection>((resolve) => pool.acquire(resolve));
  first.socket.destroy();
  assert.is.not(await third, first);
  pool.destroy();
  (await third).socket.destroy();
});

test('an idle connection the app closes, or speaks on, leaves the pool', async () => {
  const pool = new UpstreamPool({ port }, { maxIdle: 4, maxConnections: 4 });
  const [a, b] = [await take(pool), await take(pool)];
  await Promise.all([connected(a), connected(b)]);
  await settle();
  a.release();
  b.release();
  const appSide = (connection: UpstreamConnection) => accepted.find((socket) => socket.remotePort === connection.socket.localPort)!;
  appSide(a).end();
  appSide(b).write('unasked');
  await settle();
  assert.ok(a.socket.destroyed && b.socket.destroyed);
  const fresh = await take(pool);
  assert.is(fresh.reused, false, 'neither came back out of the pool');
  fresh.socket.destroy();
  pool.destroy();
});

test.run();
