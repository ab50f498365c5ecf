// Reads the server name (SNI) from a TLS ClientHello without terminating TLS, so that a
// passthrough connection can be routed by name and then spliced to the app unchanged.
// Everything here comes from the network: every length is checked against the bytes that are
// really there, and anything out of shape is "not a ClientHello", never an exception.
//
// Layout (RFC 8446 §4.1.2, RFC 6066 §3): record header (type 22, version, length), handshake
// header (type 1, 24-bit length), version, random[32], session id<0..32>, cipher suites<2..2^16-2>,
// compression methods<1..2^8-1>, extensions<0..2^16-1>; extension 0 (server_name) holds a list of
// (type 0 = host_name, name<1..2^16-1>).

export type ClientHelloResult =
  /** More bytes are needed before anything can be said. */
  | { kind: 'incomplete' }
  | { kind: 'not-tls' }
  | { kind: 'hello'; serverName: string | undefined };

const RECORD_HEADER = 5;
const HANDSHAKE_RECORD = 22;
const CLIENT_HELLO = 1;
const SERVER_NAME_EXTENSION = 0;
const HOST_NAME = 0;
/** A ClientHello larger than this (many extensions, post-quantum key shares) is refused. */
export const MAX_CLIENT_HELLO = 16 * 1024;

/** Whether these first bytes can start a TLS connection; a plain HTTP request starts with a letter. */
export function looksLikeTls(first: Buffer): boolean {
  return first.length > 0 && first[0] === HANDSHAKE_RECORD;
}

export function parseClientHello(data: Buffer): ClientHelloResult {
  if (data.length === 0) return { kind: 'incomplete' };
  if (data[0] !== HANDSHAKE_RECORD) return { kind: 'not-tls' };
  if (data.length < RECORD_HEADER) return { kind: 'incomplete' };
  // TLS 1.0-1.3 all put 3.x in the record version.
  if (data[1] !== 3) return { kind: 'not-tls' };
  // The ClientHello may span records; only the common case of one record is supported, which
  // every mainstream client sends. A hello split across records is refused rather than guessed.
  const recordLength = data.readUInt16BE(3);
  if (recordLength === 0 || recordLength > MAX_CLIENT_HELLO) return { kind: 'not-tls' };
  if (data.length < RECORD_HEADER + recordLength) return { kind: 'incomplete' };
  return parseHandshake(data.subarray(RECORD_HEADER, RECORD_HEADER + recordLength));
}

function parseHandshake(record: Buffer): ClientHelloResult {
  const reader = new Reader(record);
  if (reader.u8() !== CLIENT_HELLO) return { kind: 'not-tls' };
  const length = reader.u24();
  if (length === undefined || length > reader.remaining) return { kind: 'not-tls' };
  const hello = new Reader(reader.bytes(length)!);
  if (hello.bytes(2 + 32) === undefined) return { kind: 'not-tls' }; // version, random
  const sessionId = hello.u8();
  if (sessionId === undefined || sessionId > 32 || hello.bytes(sessionId) === undefined) return { kind: 'not-tls' };
  const suites = hello.u16();
  if (suites === undefined || suites < 2 || suites % 2 !== 0 || hello.bytes(suites) === undefined) return { kind: 'not-tls' };
  const compression = hello.u8();
  if (compression === undefined || compression < 1 || hello.bytes(compression) === undefined) return { kind: 'not-tls' };
  if (hello.remaining === 0) return { kind: 'hello', serverName: undefined }; // no extensions at all
  const extensionsLength = hello.u16();
  if (extensionsLength === undefined || extensionsLength !== hello.remaining) return { kind: 'not-tls' };
  const extensions = new Reader(hello.bytes(extensionsLength)!);
  while (extensions.remaining > 0) {
    const type = extensions.u16();
    const size = extensions.u16();
    if (type === undefined || size === undefined) return { kind: 'not-tls' };
    const body = extensions.bytes(size);
    if (body === undefined) return { kind: 'not-tls' };
    if (type === SERVER_NAME_EXTENSION) {
      const serverName = parseServerName(body);
      return serverName === null ? { kind: 'not-tls' } : { kind: 'hello', serverName };
    }
  }
  return { kind: 'hello', serverName: undefined };
}

/** The host_name entry, undefined if the list has none, null if the extension is malformed. */
function parseServerName(body: Buffer): string | undefined | null {
  const ext = new Reader(body);
  const listLength = ext.u16();
  if (listLength === undefined || listLength !== ext.remaining) return null;
  while (ext.remaining > 0) {
    const type = ext.u8();
    const length = ext.u16();
    if (type === undefined || length === undefined || length === 0) return null;
    const name = ext.bytes(length);
    if (name === undefined) return null;
    if (type !== HOST_NAME) continue;
    // A DNS name in ASCII (RFC 6066: no trailing dot); anything else cannot match a route.
    if (length > 253 || !/^[A-Za-z0-9.-]+$/.test(name.toString('latin1'))) return null;
    return name.toString('latin1').toLowerCase();
  }
  return undefined;
}

/** Bounds-checked big-endian reads: each returns undefined instead of reading past the end. */
class Reader {
  private offset = 0;

  constructor(private readonly data: Buffer) {}

  get remaining(): number {
    return this.data.length - this.offset;
  }

  u8(): number | undefined {
    return this.remaining >= 1 ? this.data[this.offset++] : undefined;
  }

  u16(): number | undefined {
    if (this.remaining < 2) return undefined;
    const value = this.data.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  u24(): number | undefined {
    if (this.remaining < 3) return undefined;
    const value = this.data.readUIntBE(this.offset, 3);
    this.offset += 3;
    return value;
  }

  bytes(length: number): Buffer | undefined {
    if (this.remaining < length) return undefined;
    const slice = this.data.subarray(this.offset, this.offset + length);
    this.offset += length;
    return slice;
  }
}
