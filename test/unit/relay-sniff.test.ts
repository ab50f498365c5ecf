// The relay's sniffing (§5): real ClientHellos from node:tls, HTTP heads, other protocols, and the
// rolling deadlines, through sniffConnection on real loopback sockets and classify() directly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import tls from 'node:tls';
import { MAX_HTTP_HEAD_BYTES, classify, hostWithoutPort, parseHttpHead, sniffConnection, type SniffResult, type SniffTimeouts } from '../../services/relay/sniff.js';

const QUICK: SniffTimeouts = { firstByteMs: 100, extensionMs: 100, capMs: 1000 };

/** Accepts one connection, lets `speak` talk into it, and sniffs what arrives. */
async function sniff(speak: (port: number) => net.Socket, timeouts = QUICK): Promise<{ result: SniffResult; ms: number }> {
  const server = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = speak((server.address() as net.AddressInfo).port);
  client.on('error', () => {});
  const socket = await accepted;
  const started = Date.now();
  const result = await sniffConnection(socket, timeouts);
  const ms = Date.now() - started;
  socket.destroy();
  client.destroy();
  server.close();
  return { result, ms };
}

const helloTo = (servername?: string) => (port: number) => tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
const sending = (bytes: string | Buffer) => (port: number) => net.connect(port, '127.0.0.1', function (this: net.Socket) {
  this.write(bytes);
});

test('a ClientHello with SNI routes by the normalized name, is_tls, the whole hello as prelude', async () => {
  const { result } = await sniff(helloTo('App.Example.COM'));
  assert.is(result.route, 'host');
  if (result.route !== 'host') return;
  assert.is(result.name, 'app.example.com');
  assert.is(result.isTls, true);
  assert.is(result.prelude[0], 0x16);
  assert.is(result.prelude.length, result.prelude.readUInt16BE(3) + 5, 'exactly the hello record');
});

test('a ClientHello without SNI takes the port claim with is_tls', async () => {
  const { result } = await sniff(helloTo());
  assert.equal({ route: result.route, isTls: (result as { isTls: boolean }).isTls }, { route: 'port', isTls: true });
});

test('an HTTP head routes by Host without its port, is_tls false, prelude = every byte read', async () => {
  const head = 'GET /x HTTP/1.1\r\nUser-Agent: t\r\nHost: Shop.Example.com.:8080\r\n\r\nbody-bytes';
  const { result } = await sniff(sending(head));
  assert.equal(result, { route: 'host', name: 'shop.example.com', isTls: false, prelude: Buffer.from(head) });
});

test('an HTTP head split over several writes is awaited until complete', async () => {
  const { result } = await sniff((port) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write('POST / HT');
      setTimeout(() => socket.write('TP/1.1\r\nhost: a.test\r\n'), 30);
      setTimeout(() => socket.write('\r\n'), 60);
    });
    return socket;
  });
  assert.is(result.route, 'host');
  assert.is((result as { name: string }).name, 'a.test');
});

test('a protocol that is neither goes to the port claim at once, bytes kept', async () => {
  const { result, ms } = await sniff(sending('SSH-2.0-OpenSSH_9.2\r\n'), { firstByteMs: 5000, extensionMs: 5000, capMs: 10_000 });
  assert.equal(result, { route: 'port', isTls: false, prelude: Buffer.from('SSH-2.0-OpenSSH_9.2\r\n') });
  assert.ok(ms < 1000, `decided in ${ms} ms, not at a deadline`);
});

test('a silent user waits for both peeks (two first-byte waits), then takes the port claim', async () => {
  const { result, ms } = await sniff((port) => net.connect(port, '127.0.0.1'));
  assert.equal(result, { route: 'port', isTls: false, prelude: Buffer.alloc(0) });
  assert.ok(ms >= 190 && ms < 900, `waited ${ms} ms (expected about 200)`);
});

test('each read extends the deadline, up to the absolute cap', async () => {
  // A head that never ends, a byte every 50 ms: only the cap (400 ms) stops it.
  const { result, ms } = await sniff(
    (port) => {
      const socket = net.connect(port, '127.0.0.1');
      const timer = setInterval(() => socket.writable && socket.write('X-A: b\r\n'), 50);
      socket.write('GET / HTTP/1.1\r\n');
      socket.on('close', () => clearInterval(timer));
      return socket;
    },
    { firstByteMs: 100, extensionMs: 100, capMs: 400 },
  );
  assert.is(result.route, 'port');
  assert.ok(ms >= 380 && ms < 1500, `capped at ${ms} ms`);
  assert.ok((result as { prelude: Buffer }).prelude.toString().startsWith('GET / HTTP/1.1\r\n'), 'the bytes read so far are the prelude');
});

test('an HTTP head over 64 KiB drops the user', () => {
  const huge = Buffer.from(`GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: ${'a'.repeat(MAX_HTTP_HEAD_BYTES)}`);
  assert.equal(classify(huge, false), { route: 'drop', reason: 'http head too large' });
  // Just under the limit it still waits for the end of the head.
  assert.is(classify(huge.subarray(0, MAX_HTTP_HEAD_BYTES - 10), false), undefined);
});

test('a request without Host falls back to the port claim with an empty prelude (the Nexus quirk)', () => {
  assert.equal(classify(Buffer.from('GET / HTTP/1.0\r\n\r\n'), false), { route: 'port', isTls: false, prelude: Buffer.alloc(0) });
});

test('an absolute-form target names the host before the Host header', () => {
  assert.equal(parseHttpHead(Buffer.from('GET http://proxy.test:81/x HTTP/1.1\r\nHost: other.test\r\n\r\n')), { kind: 'request', host: 'proxy.test:81' });
});

test('malformed heads are not HTTP: their bytes stay the prelude of the port route', () => {
  for (const text of ['GET / HTTP/1.1\r\nno colon here\r\n\r\n', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 'GET /\r\n\r\n', '\x00\x01binary']) {
    assert.equal(classify(Buffer.from(text), false), { route: 'port', isTls: false, prelude: Buffer.from(text) }, JSON.stringify(text));
  }
  // A prefix that could still become a request line waits.
  for (const text of ['G', 'GET', 'GET /a', 'GET /a HTTP/1.']) assert.is(classify(Buffer.from(text), false), undefined, text);
});

test('Host values: ports, IPv6 literals and IDNA', () => {
  assert.is(hostWithoutPort('a.test:8080'), 'a.test');
  assert.is(hostWithoutPort('[2001:db8::1]:443'), '2001:db8::1');
  assert.is(hostWithoutPort('a.test'), 'a.test');
  assert.equal(classify(Buffer.from('GET / HTTP/1.1\r\nHost: Bücher.Example\r\n\r\n'), false), {
    route: 'host',
    name: 'xn--bcher-kva.example',
    isTls: false,
    prelude: Buffer.from('GET / HTTP/1.1\r\nHost: Bücher.Example\r\n\r\n'),
  });
});

test.run();
