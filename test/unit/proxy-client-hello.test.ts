// The ClientHello SNI parser against real hellos from node:tls, then truncated, corrupted and
// random input: it must answer incomplete / not-tls / hello, never throw or read out of bounds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import tls from 'node:tls';
import { parseClientHello, type ClientHelloResult } from '../../services/proxy/client-hello.js';

async function captureHello(servername?: string): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const received = new Promise<Buffer>((resolve) => server.once('connection', (socket) => socket.once('data', (d: Buffer) => (resolve(d), socket.destroy()))));
  const client = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
  client.on('error', () => {});
  const hello = await received;
  client.destroy();
  server.close();
  return hello;
}

let hello: Buffer;

test.before(async () => {
  hello = await captureHello('web-blog.piccolo.local');
});

test('a real ClientHello yields its server name, lower-cased', async () => {
  assert.equal(parseClientHello(hello), { kind: 'hello', serverName: 'web-blog.piccolo.local' });
  assert.equal(parseClientHello(await captureHello('MiXeD.Example')), { kind: 'hello', serverName: 'mixed.example' });
});

test('a hello without SNI parses with no name', async () => {
  assert.equal(parseClientHello(await captureHello()), { kind: 'hello', serverName: undefined });
});

test('every truncation is incomplete, never a wrong answer', () => {
  for (let n = 0; n < hello.length; n++) assert.equal(parseClientHello(hello.subarray(0, n)), { kind: 'incomplete' }, `at ${n} bytes`);
});

test('plain HTTP and other protocols are not TLS', () => {
  for (const text of ['GET / HTTP/1.1\r\n', 'SSH-2.0-OpenSSH', '\x16\x02\x00\x00\x05hello']) {
    assert.is(parseClientHello(Buffer.from(text, 'latin1')).kind, 'not-tls', JSON.stringify(text));
  }
  // A record header that claims a huge hello is refused rather than waited for.
  assert.is(parseClientHello(Buffer.from([22, 3, 1, 0xff, 0xff])).kind, 'not-tls');
});

test('corrupting any single byte never throws, and lengths pointing past the end are caught', () => {
  for (let i = 0; i < hello.length; i++) {
    for (const value of [0x00, 0xff, hello[i]! ^ 0x5a]) {
      const corrupt = Buffer.from(hello);
      corrupt[i] = value;
      const result: ClientHelloResult = parseClientHello(corrupt);
      assert.ok(['incomplete', 'not-tls', 'hello'].includes(result.kind));
      if (result.kind === 'hello' && result.serverName !== undefined) assert.match(result.serverName, /^[a-z0-9.-]+$/);
    }
  }
});

test('random garbage, with and without a TLS record header in front, never throws', () => {
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let round = 0; round < 20_000; round++) {
    const length = Math.floor(random() * 600);
    const data = Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)));
    if (round % 2 && length >= 6) {
      data[0] = 22;
      data[1] = 3;
      data.writeUInt16BE(length - 5, 3);
      data[5] = 1;
    }
    assert.ok(['incomplete', 'not-tls', 'hello'].includes(parseClientHello(data).kind));
  }
});

test.run();
