// The forwarder's response parser: heads in one read or split, each framing (Content-Length,
// chunked, close-delimited, none for HEAD/204/304/1xx), chunked bodies split at every byte, and
// the ambiguous or malformed responses it refuses (obs-fold, bare LF, bare CR, NUL, Content-Length
// twice or beside Transfer-Encoding, codings other than chunked, bad chunk sizes).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BadResponse, BodyReader, parseResponseHead, type Framing } from '../../services/proxy/h1/response-parser.js';

const head = (text: string, forHead = false) => parseResponseHead(Buffer.from(text, 'latin1'), forHead);

/** Reads a whole body through a BodyReader, fed in pieces of the given size. */
function readBody(framing: Framing, wire: string, pieceSize: number): { body: string; done: boolean; rest: string } {
  const reader = new BodyReader(framing);
  const data = Buffer.from(wire, 'latin1');
  let body = '';
  let rest = '';
  for (let at = 0; at < data.length; at += pieceSize) {
    const piece = data.subarray(at, at + pieceSize);
    const stopped = reader.read(piece, 0, (part) => (body += part.toString('latin1')));
    if (reader.done) {
      rest = Buffer.concat([piece.subarray(stopped), data.subarray(at + pieceSize)]).toString('latin1');
      break;
    }
  }
  return { body, done: reader.done, rest };
}

test('a complete head: status, reason, raw headers in order with their case, Content-Length framing, keep-alive', () => {
  const parsed = head('HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nX-Empty:\r\n\r\nhello');
  assert.ok(parsed);
  assert.is(parsed.status, 200);
  assert.is(parsed.reason, 'OK');
  assert.equal(parsed.headers, ['Server', 'nginx', 'Content-Length', '5', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'X-Empty', '']);
  assert.equal(parsed.framing, { kind: 'length', bytes: 5 });
  assert.is(parsed.keepAlive, true);
  assert.is(parsed.bytes, 'HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nX-Empty:\r\n\r\n'.length);
});

test('an incomplete head is undefined until its empty line arrives', () => {
  assert.is(head('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n'), undefined);
  assert.is(head('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r'), undefined);
  assert.ok(head('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n'));
});

test('framing: chunked, close-delimited, and none for HEAD, 204, 304 and 1xx whatever the headers say', () => {
  assert.equal(head('HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n')!.framing, { kind: 'chunked' });
  assert.equal(head('HTTP/1.1 200 OK\r\n\r\n')!.framing, { kind: 'close' });
  assert.equal(head('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', true)!.framing, { kind: 'none' });
  assert.equal(head('HTTP/1.1 204 No Content\r\n\r\n')!.framing, { kind: 'none' });
  assert.equal(head('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n')!.framing, { kind: 'none' });
  assert.equal(head('HTTP/1.1 100 Continue\r\n\r\n')!.framing, { kind: 'none' });
  assert.equal(head('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')!.framing, { kind: 'length', bytes: 0 });
});

test('keep-alive: HTTP/1.1 unless Connection lists close; HTTP/1.0 only with keep-alive', () => {
  assert.is(head('HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n')!.keepAlive, false);
  assert.is(head('HTTP/1.1 200 OK\r\nConnection: x-a\r\nContent-Length: 0\r\n\r\n')!.connection, 'x-a');
  assert.is(head('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n')!.keepAlive, false);
  assert.is(head('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n')!.keepAlive, true);
});

test('optional whitespace around a value is trimmed; an empty reason is kept empty', () => {
  const parsed = head('HTTP/1.1 404 \r\nX-A: \t spaced \t\r\nContent-Length: 0\r\n\r\n')!;
  assert.is(parsed.reason, '');
  assert.equal(parsed.headers.slice(0, 2), ['X-A', 'spaced']);
});

const REFUSED: [string, string][] = [
  ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 0\r\n\r\n'],
  ['a bare LF ending a header', 'HTTP/1.1 200 OK\r\nX-A: b\nContent-Length: 0\r\n\r\n'],
  ['bare LF line endings', 'HTTP/1.1 200 OK\nContent-Length: 0\n\n'],
  ['a bare CR inside a value', 'HTTP/1.1 200 OK\r\nX-A: b\rc\r\nContent-Length: 0\r\n\r\n'],
  ['a NUL in a value', 'HTTP/1.1 200 OK\r\nX-A: b\0c\r\nContent-Length: 0\r\n\r\n'],
  ['Content-Length twice, even equal', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx'],
  ['a Content-Length list', 'HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx'],
  ['a signed Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx'],
  ['Content-Length beside Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ['Transfer-Encoding twice', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ['a coding other than chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'],
  ['a space before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n'],
  ['a header without a name', 'HTTP/1.1 200 OK\r\n: x\r\n\r\n'],
  ['a header without a colon', 'HTTP/1.1 200 OK\r\nno colon\r\n\r\n'],
  ['HTTP/2 in the status line', 'HTTP/2 200 OK\r\n\r\n'],
  ['a two-digit status', 'HTTP/1.1 20 OK\r\n\r\n'],
  ['a status line without a space after the code', 'HTTP/1.1 200\r\n\r\n'],
];

for (const [name, text] of REFUSED) {
  test(`refused: ${name}`, () => {
    assert.throws(() => head(text), (err: unknown) => err instanceof BadResponse);
  });
}

test('a head over 64 KiB is refused, complete or not', () => {
  const big = `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70 * 1024)}`;
  assert.throws(() => head(big), (err: unknown) => err instanceof BadResponse);
  assert.throws(() => head(`${big}\r\n\r\n`), (err: unknown) => err instanceof BadResponse);
});

test('Content-Length bodies end at their length, split at any byte; what follows is left unread', () => {
  for (const size of [1, 2, 3, 100]) {
    assert.equal(readBody({ kind: 'length', bytes: 5 }, 'helloHTTP/1.1', size), { body: 'hello', done: true, rest: 'HTTP/1.1' });
  }
});

test('chunked bodies: extensions, trailers dropped, split at every byte', () => {
  const wire = '5;name=value\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\nNEXT';
  for (const size of [1, 2, 3, 7, 1000]) {
    assert.equal(readBody({ kind: 'chunked' }, wire, size), { body: 'hello 0123456789', done: true, rest: 'NEXT' }, `pieces of ${size}`);
  }
});

test('a chunked body is not done until its last chunk and empty line', () => {
  assert.is(readBody({ kind: 'chunked' }, '5\r\nhello\r\n0\r\n', 1).done, false);
  const reader = new BodyReader({ kind: 'chunked' });
  reader.read(Buffer.from('5\r\nhel'), 0, () => {});
  assert.is(reader.endOfStream(), false, 'a FIN mid-body cuts it');
});

const BAD_CHUNKS: [string, string][] = [
  ['junk after the size', '5zz\r\nhello\r\n0\r\n\r\n'],
  ['a 0x prefix', '0x5\r\nhello\r\n0\r\n\r\n'],
  ['a size over 12 hex digits', '10000000000000005\r\nhello\r\n0\r\n\r\n'],
  ['a negative size', '-5\r\nhello\r\n0\r\n\r\n'],
  ['an empty size line', '\r\nhello\r\n0\r\n\r\n'],
  ['data longer than its size', '3\r\nhello\r\n0\r\n\r\n'],
  ['a bare LF after the size', '5\nhello\r\n0\r\n\r\n'],
  ['a bare LF after the data', '5\r\nhello\n0\r\n\r\n'],
  ['a folded trailer', '0\r\nX-T: a\r\n b\r\n\r\n'],
];

for (const [name, wire] of BAD_CHUNKS) {
  test(`chunked refused: ${name}`, () => {
    for (const size of [1, 1000]) assert.throws(() => readBody({ kind: 'chunked' }, wire, size), (err: unknown) => err instanceof BadResponse, `pieces of ${size}`);
  });
}

test('a chunk-size line that never ends is refused past 4 KiB', () => {
  assert.throws(() => readBody({ kind: 'chunked' }, `5;${'x'.repeat(5000)}`, 100), (err: unknown) => err instanceof BadResponse);
});

test('close-delimited bodies take everything until the FIN', () => {
  const reader = new BodyReader({ kind: 'close' });
  let body = '';
  reader.read(Buffer.from('xxhello'), 2, (part) => (body += part));
  reader.read(Buffer.from(' world'), 0, (part) => (body += part));
  assert.is(reader.done, false);
  assert.is(reader.endOfStream(), true);
  assert.is(body, 'hello world');
});

test.run();
