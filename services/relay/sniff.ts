// What an end user's connection is, from its first bytes (§5): a TLS ClientHello with SNI routes by
// that name, else an HTTP/1.x head with a Host routes by the host, else the port claim tcp:N.
// The bytes read on the way (the prelude) go to the backend first, so nothing is lost.
import type net from 'node:net';
import { normalizeHostname } from '../tunnel/protocol.js';
// The proxy's parser: bounds-checked, one record, which is all a ClientHello ever needs in practice.
import { parseClientHello } from '../proxy/client-hello.js';

export const MAX_CLIENT_HELLO_BYTES = 32 * 1024;
export const MAX_HTTP_HEAD_BYTES = 64 * 1024;

export type SniffResult =
  | { route: 'host'; name: string; isTls: boolean; prelude: Buffer }
  | { route: 'port'; isTls: boolean; prelude: Buffer }
  /** Too large a hello or head: the user is dropped. */
  | { route: 'drop'; reason: string };

/**
 * Classifies the bytes read so far; undefined while more are needed. `final` (deadline passed, or
 * the user stopped sending) forces an answer from what there is.
 */
export function classify(bytes: Buffer, final: boolean): SniffResult | undefined {
  if (bytes.length === 0) return final ? { route: 'port', isTls: false, prelude: bytes } : undefined;
  const hello = parseClientHello(bytes);
  if (hello.kind === 'incomplete') {
    if (bytes.length > MAX_CLIENT_HELLO_BYTES) return { route: 'drop', reason: 'client hello too large' };
    return final ? { route: 'port', isTls: false, prelude: bytes } : undefined;
  }
  if (hello.kind === 'hello') {
    const name = hello.serverName === undefined ? undefined : normalizeHostname(hello.serverName);
    return name ? { route: 'host', name, isTls: true, prelude: bytes } : { route: 'port', isTls: true, prelude: bytes };
  }
  const head = parseHttpHead(bytes);
  if (head.kind === 'incomplete') {
    if (bytes.length > MAX_HTTP_HEAD_BYTES) return { route: 'drop', reason: 'http head too large' };
    return final ? { route: 'port', isTls: false, prelude: bytes } : undefined;
  }
  if (head.kind === 'request') {
    const name = head.host === undefined ? undefined : normalizeHostname(hostWithoutPort(head.host));
    if (name) return { route: 'host', name, isTls: false, prelude: bytes };
    // Nexus quirk kept on purpose (http_sniff.go:88-93): a request that parses without a Host
    // falls back to the port claim with an EMPTY prelude; the head is lost.
    if (head.host === undefined) return { route: 'port', isTls: false, prelude: Buffer.alloc(0) };
  }
  return { route: 'port', isTls: false, prelude: bytes };
}

export type HttpHead = { kind: 'incomplete' } | { kind: 'not-http' } | { kind: 'request'; host: string | undefined };

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const REQUEST_LINE = new RegExp(`^(${TOKEN}) (\\S+) HTTP/1\\.\\d$`);
/** What a request line can look like before its end has arrived. */
const REQUEST_LINE_START = new RegExp(`^(${TOKEN}( \\S*( H(T(T(P(/(1(\\.\\d?)?)?)?)?)?)?)?)?)?$`);
const HEADER_LINE = new RegExp(`^(${TOKEN}):[ \\t]*(.*?)[ \\t]*$`);

/** An HTTP/1.x request head: its Host (the absolute-form target's first, as Go's ReadRequest does). */
export function parseHttpHead(bytes: Buffer): HttpHead {
  const text = bytes.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const lines = (end < 0 ? text : text.slice(0, end)).split(/\r?\n/);
  const requestLine = lines[0]!;
  if (end < 0 && lines.length === 1) return REQUEST_LINE_START.test(requestLine) ? { kind: 'incomplete' } : { kind: 'not-http' };
  const request = REQUEST_LINE.exec(requestLine);
  if (!request) return { kind: 'not-http' };
  if (end < 0) return { kind: 'incomplete' };
  const hosts: string[] = [];
  for (const line of lines.slice(1)) {
    const header = HEADER_LINE.exec(line);
    if (!header) return { kind: 'not-http' };
    if (header[1]!.toLowerCase() === 'host') hosts.push(header[2]!);
  }
  if (hosts.length > 1) return { kind: 'not-http' };
  const absolute = /^https?:\/\/([^/?#]+)/i.exec(request[2]!);
  const host = absolute?.[1] ?? hosts[0];
  // Read as latin1 to keep byte offsets; a name is UTF-8 (IDNA comes later).
  return { kind: 'request', host: host === undefined ? undefined : Buffer.from(host, 'latin1').toString('utf8') };
}

/** "name:port" and "[v6]:port" without the port. */
export function hostWithoutPort(host: string): string {
  const v6 = /^\[([^\]]*)\](:\d*)?$/.exec(host);
  if (v6) return v6[1]!;
  return host.replace(/:\d*$/, '');
}

export interface SniffTimeouts {
  /** Wait for the first byte, per peek (TLS, then HTTP): a silent user waits two of these. */
  firstByteMs: number;
  /** Each read extends the deadline to at least this far ahead. */
  extensionMs: number;
  /** The absolute cap over both peeks. */
  capMs: number;
}

export const NEXUS_SNIFF_TIMEOUTS: SniffTimeouts = { firstByteMs: 15_000, extensionMs: 5_000, capMs: 30_000 };

/** Reads a fresh user connection until classify() can answer; the socket is left paused. */
export function sniffConnection(socket: net.Socket, timeouts: SniffTimeouts): Promise<SniffResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    let length = 0;
    let timer: NodeJS.Timeout | undefined;
    const settle = (result: SniffResult) => {
      clearTimeout(timer);
      socket.off('data', onData).off('end', onEnd).off('close', onClose);
      socket.pause();
      resolve(result);
    };
    const deadline = (delay: number) => {
      clearTimeout(timer);
      const remaining = Math.max(0, timeouts.capMs - (Date.now() - started));
      timer = setTimeout(() => settle(classify(Buffer.concat(chunks, length), true)!), Math.min(delay, remaining));
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      const result = classify(Buffer.concat(chunks, length), false);
      if (result) settle(result);
      else deadline(timeouts.extensionMs);
    };
    // The user finished sending: route what came (its FIN then becomes the stream's disconnect).
    const onEnd = () => settle(classify(Buffer.concat(chunks, length), true)!);
    const onClose = () => settle({ route: 'drop', reason: 'user closed while sniffing' });
    socket.on('data', onData).on('end', onEnd).on('close', onClose);
    deadline(2 * timeouts.firstByteMs);
  });
}
