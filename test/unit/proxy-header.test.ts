// readProxyHeader on real sockets: headers built with proxy-protocol-js (as the tunnel builds
// them), split across writes or followed by data in the same write, IPv6 sources, and what it refuses.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command, IPv4Address, IPv4ProxyAddress, IPv6Address, IPv6ProxyAddress, TransportProtocol, V2ProxyProtocol } from 'proxy-protocol-js';
import { readProxyHeader } from '../../services/proxy/proxy-header.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-proxy-header-'));
const socketPath = path.join(dir, 'ingress.sock');
let server: net.Server;
let accepted: (socket: net.Socket) => void = () => {};

test.before(async () => {
  server = net.createServer((socket) => accepted(socket));
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
});

test.after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Sends the chunks one write at a time; resolves with what the header said and the bytes read after it. */
async function receive(chunks: Buffer[], timeoutMs = 1000): Promise<{ client: string | undefined; rest: string }> {
  const serverSide = new Promise<net.Socket>((resolve) => (accepted = resolve));
  const client = net.connect(socketPath);
  const socket = await serverSide;
  for (const chunk of chunks) {
    client.write(chunk);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const address = await readProxyHeader(socket, timeoutMs);
  let rest = '';
  if (address !== undefined) {
    // The reader leaves the socket paused, as peek does, for whoever takes it next.
    socket.on('data', (d) => (rest += d)).resume();
    client.end();
    await new Promise((resolve) => socket.once('end', resolve));
  }
  client.destroy();
  socket.destroy();
  return { client: address, rest };
}

const v4 = (source: number[], command = Command.PROXY) =>
  Buffer.from(new V2ProxyProtocol(command, TransportProtocol.STREAM, new IPv4ProxyAddress(IPv4Address.createFrom(source), 51000, IPv4Address.createFrom([10, 0, 0, 1]), 443)).build());

test('an IPv4 source; the bytes after the header, in the same write, stay for the next reader', async () => {
  assert.equal(await receive([Buffer.concat([v4([203, 0, 113, 7]), Buffer.from('GET / HTTP/1.1\r\n')])]), { client: '203.0.113.7', rest: 'GET / HTTP/1.1\r\n' });
});

test('a header split across writes', async () => {
  const header = v4([198, 51, 100, 2]);
  assert.equal(await receive([header.subarray(0, 5), header.subarray(5, 15), Buffer.concat([header.subarray(15), Buffer.from('hello')])]), { client: '198.51.100.2', rest: 'hello' });
});

test('an IPv6 source in canonical form, an IPv4-mapped one as IPv4', async () => {
  const v6 = (bytes: number[]) => Buffer.from(new V2ProxyProtocol(Command.PROXY, TransportProtocol.STREAM, new IPv6ProxyAddress(IPv6Address.createFrom(bytes), 1, IPv6Address.createFrom(Array(16).fill(0)), 443)).build());
  const doc = [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 0x05];
  assert.is((await receive([v6(doc)])).client, '2001:db8::5');
  assert.is((await receive([v6([...Array(10).fill(0), 0xff, 0xff, 203, 0, 113, 9])])).client, '203.0.113.9');
});

test('refused: no signature, a LOCAL command, a header that never completes', async () => {
  assert.is((await receive([Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')])).client, undefined);
  assert.is((await receive([v4([203, 0, 113, 7], Command.LOCAL)])).client, undefined);
  const startedAt = Date.now();
  assert.is((await receive([v4([203, 0, 113, 7]).subarray(0, 20)], 300)).client, undefined);
  assert.ok(Date.now() - startedAt >= 300, 'gave up at the timeout, not before');
});

test.run();
