// Request smuggling through the real proxy bundle: each ambiguous framing (RFC 9112 §6.3, §11.2)
// sent by a client is refused with 400, and the app, a raw TCP server that parses and records
// every request it receives, never sees the hidden second request. Unambiguous framings that
// look odd but are valid (chunk extensions, a differently cased "Chunked") go through as exactly
// one request with the body the client meant.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { bundleServices } from '../../image/bundle.js';
import { freePort, listenOn, rawExchange, route, startProxy, type ProxyHarness } from '../support/proxy-harness.js';

interface Received {
  method: string;
  url: string;
  headers: [string, string][];
  body: string;
}

let harness: ProxyHarness;
let app: net.Server;
let publicPort = 0;
/** Every request the app parsed, in order; a framing it could not parse is recorded as url '<unparseable>'. */
const received: Received[] = [];

/**
 * A strict HTTP/1.1 request reader over raw bytes: what the proxy sends upstream is parsed here,
 * not by Node's parser, so a leniency shared by both parsers cannot hide a second request.
 */
function recordingApp(): net.Server {
  return net.createServer((socket) => {
    let buffer = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (data: Buffer) => {
      buffer = Buffer.concat([buffer, data]);
      for (;;) {
        const parsed = parseOne(buffer);
        if (parsed === 'incomplete') return;
        if (parsed === 'bad') {
          received.push({ method: '', url: '<unparseable>', headers: [], body: buffer.toString('latin1') });
          return void socket.destroy();
        }
        received.push(parsed.request);
        buffer = buffer.subarray(parsed.used);
        const body = `seen ${parsed.request.url}`;
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      }
    });
  });
}

function parseOne(buffer: Buffer): { request: Received; used: number } | 'incomplete' | 'bad' {
  const headEnd = buffer.indexOf('\r\n\r\n');
  if (headEnd < 0) return 'incomplete';
  const lines = buffer.subarray(0, headEnd).toString('latin1').split('\r\n');
  const requestLine = /^([A-Z]+) (\S+) HTTP\/1\.1$/.exec(lines[0]!);
  if (!requestLine) return 'bad';
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const field = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (!field || /[\0\r\n]/.test(field[2]!)) return 'bad';
    headers.push([field[1]!.toLowerCase(), field[2]!]);
  }
  const lengths = headers.filter(([name]) => name === 'content-length');
  const encodings = headers.filter(([name]) => name === 'transfer-encoding');
  if (lengths.length > 1 || (lengths.length && encodings.length)) return 'bad';
  let offset = headEnd + 4;
  let body = '';
  if (encodings.length) {
    if (encodings.length > 1 || encodings[0]![1].toLowerCase() !== 'chunked') return 'bad';
    for (;;) {
      const lineEnd = buffer.indexOf('\r\n', offset);
      if (lineEnd < 0) return 'incomplete';
      const size = /^([0-9a-fA-F]+)(;.*)?$/.exec(buffer.subarray(offset, lineEnd).toString('latin1'));
      if (!size) return 'bad';
      const length = parseInt(size[1]!, 16);
      offset = lineEnd + 2;
      if (length === 0) {
        // No trailers from the proxy: the chunked body ends with an empty line.
        if (buffer.length < offset + 2) return 'incomplete';
        if (buffer.subarray(offset, offset + 2).toString() !== '\r\n') return 'bad';
        offset += 2;
        break;
      }
      if (buffer.length < offset + length + 2) return 'incomplete';
      body += buffer.subarray(offset, offset + length).toString('latin1');
      if (buffer.subarray(offset + length, offset + length + 2).toString() !== '\r\n') return 'bad';
      offset += length + 2;
    }
  } else if (lengths.length) {
    if (!/^\d+$/.test(lengths[0]![1])) return 'bad';
    const length = Number(lengths[0]![1]);
    if (buffer.length < offset + length) return 'incomplete';
    body = buffer.subarray(offset, offset + length).toString('latin1');
    offset += length;
  }
  return { request: { method: requestLine[1]!, url: requestLine[2]!, headers, body }, used: offset };
}

test.before(async () => {
  await bundleServices();
  app = recordingApp();
  const appPort = await listenOn(app);
  // The lenient parser flag in the environment: the proxy pins the strict one itself, and this proves it.
  harness = await startProxy({ NODE_OPTIONS: '--insecure-http-parser' });
  publicPort = await freePort();
  await harness.setRoutes({ routes: [route({ app: 'recorder', publicPort, hostBindPort: appPort })] });
});

test.after(async () => {
  await harness?.stop();
  app?.close();
});

/** The hidden request each payload carries after its first one; it must never reach the app. */
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n';

/** Ambiguous framings: each must get 400 with nothing at all reaching the app. */
const REFUSED: [string, string][] = [
  ['Content-Length and Transfer-Encoding together', `POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['Transfer-Encoding before Content-Length', `POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['two Content-Length values', `POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  ['a Content-Length list with two values', `POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: 0, ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  ['a signed Content-Length', `POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: +${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  ['Transfer-Encoding folded onto the next line (obs-fold)', `POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: ${SMUGGLED.length}\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['Transfer-Encoding: chunked, identity (chunked not last)', `POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['Transfer-Encoding: xchunked', `POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['Transfer-Encoding: identity', `POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n${SMUGGLED}`],
  ['two Transfer-Encoding headers, chunked then identity', `POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['a space before the colon of Transfer-Encoding', `POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: ${SMUGGLED.length + 5}\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['a space before the colon of Content-Length', `POST /first HTTP/1.1\r\nHost: a\r\nContent-Length : ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  ['bare LF line endings', `POST /first HTTP/1.1\nHost: a\nContent-Length: ${SMUGGLED.length}\n\n${SMUGGLED}`],
  ['a bare LF ending one header', `POST /first HTTP/1.1\r\nHost: a\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['a bare CR inside a header', `POST /first HTTP/1.1\r\nHost: a\r\nX-A: b\rTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['a NUL in a header value', `POST /first HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\nContent-Length: 0\r\n\r\n${SMUGGLED}`],
  ['a NUL in Transfer-Encoding', `POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\0\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['a chunk size with junk after it', `POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5zz\r\nhello\r\n0\r\n\r\n${SMUGGLED}`],
  ['a chunk size with a 0x prefix', `POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n${SMUGGLED}`],
  ['a chunk size that overflows 64 bits', `POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n${SMUGGLED}`],
  ['a chunk not ended by CRLF', `POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n${SMUGGLED}`],
];

for (const [name, payload] of REFUSED) {
  test(`refused with 400, nothing reaches the app: ${name}`, async () => {
    received.length = 0;
    const reply = await rawExchange(publicPort, payload, 3000);
    assert.match(reply, /^HTTP\/1\.1 400 /, `reply: ${JSON.stringify(reply.slice(0, 80))}`);
    // The 400 closes the connection: no second response follows it.
    assert.is(reply.match(/HTTP\/1\.1 \d{3} /g)!.length, 1, JSON.stringify(reply));
    // The app answers within milliseconds; a smuggled request would have arrived by now.
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(received.map((r) => r.url), []);
  });
}

/** Valid, if unusual, framings: exactly one request arrives, with the body the client framed. */
const ONE_REQUEST: [string, string, string][] = [
  ['chunked with a chunk extension', `POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;name=value\r\nhello\r\n0\r\n\r\n`, 'hello'],
  ['Transfer-Encoding: Chunked in another case', `POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, 'hello'],
  ['a body that looks like a request', `POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: ${SMUGGLED.length}\r\nConnection: close\r\n\r\n${SMUGGLED}`, SMUGGLED],
];

for (const [name, payload, body] of ONE_REQUEST) {
  test(`one request with its framed body: ${name}`, async () => {
    received.length = 0;
    const reply = await rawExchange(publicPort, payload, 3000);
    assert.match(reply, /^HTTP\/1\.1 200 /, JSON.stringify(reply.slice(0, 80)));
    assert.match(reply, /seen \/first$/);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(received.map((r) => [r.url, r.body]), [['/first', body]]);
    // The app gets one framing only, never both.
    const framing = received[0]!.headers.filter(([header]) => header === 'content-length' || header === 'transfer-encoding');
    assert.is(framing.length, 1, JSON.stringify(framing));
  });
}

test('on a keep-alive connection, a served request then an ambiguous one: 400, the connection closes, nothing more reaches the app', async () => {
  received.length = 0;
  const socket = net.connect(publicPort, '127.0.0.1');
  socket.on('error', () => {});
  let reply = '';
  socket.on('data', (d: Buffer) => (reply += d.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.write('GET /ok HTTP/1.1\r\nHost: a\r\n\r\n');
  const deadline = Date.now() + 3000;
  while (!reply.includes('seen /ok') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  socket.write(`POST /bad HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx${SMUGGLED}`);
  await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 3000))]);
  assert.ok(socket.destroyed, 'the proxy closed the connection');
  assert.equal(reply.match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 200', 'HTTP/1.1 400']);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(received.map((r) => r.url), ['/ok']);
});

test.run();
