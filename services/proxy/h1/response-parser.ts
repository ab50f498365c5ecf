// A minimal, strict HTTP/1.1 response parser for the forwarder's upstream side (RFC 9112): the
// status line, the header fields as raw name/value pairs, and the body's framing (Content-Length,
// chunked, close-delimited; none for 1xx, 204, 304 and HEAD). It only has to read what apps send,
// so whatever an honest server never sends and a smuggling attempt would (obs-fold, bare LF or
// CR, NUL, Content-Length twice or beside Transfer-Encoding, a coding other than chunked) is
// refused: the forwarder answers 502 and drops the connection.

export class BadResponse extends Error {}

export type Framing = { kind: 'none' } | { kind: 'length'; bytes: number } | { kind: 'chunked' } | { kind: 'close' };

export interface ResponseHead {
  status: number;
  reason: string;
  /** The raw header fields, name then value, in the order the app sent them; names as sent. */
  headers: string[];
  framing: Framing;
  /** The Connection header's tokens, lower-cased and comma-separated, if it sent one. */
  connection: string | undefined;
  /** The app keeps the connection open after this response (HTTP/1.1 without Connection: close). */
  keepAlive: boolean;
  /** Bytes of the head, its final empty line included. */
  bytes: number;
}

/** Heads larger than this are refused (Node's own client allows 16 KiB). */
export const MAX_HEAD_BYTES = 64 * 1024;
/** A chunk-size line (with its extensions) or trailer line longer than this is refused. */
const MAX_LINE_BYTES = 4096;
const CR = 13;
const LF = 10;

/** tchar (RFC 9110 §5.6.2) by char code: what a header name may be made of. */
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TOKEN[c.charCodeAt(0)] = 1;

/**
 * The response head at the start of data, or undefined while it is incomplete. forHeadRequest:
 * the request was HEAD, so no body follows whatever the headers say.
 */
export function parseResponseHead(data: Buffer, forHeadRequest: boolean): ResponseHead | undefined {
  const end = data.indexOf('\r\n\r\n');
  // A bare LF anywhere in the head is refused at once rather than waited on until the size limit.
  const scanned = end < 0 ? data.length : end;
  for (let lf = data.indexOf(LF); lf >= 0 && lf < scanned; lf = data.indexOf(LF, lf + 1)) {
    if (lf === 0 || data[lf - 1] !== CR) throw new BadResponse('a bare LF in the response head');
  }
  if (end < 0) {
    if (data.length > MAX_HEAD_BYTES) throw new BadResponse('a response head over 64 KiB');
    return undefined;
  }
  if (end > MAX_HEAD_BYTES) throw new BadResponse('a response head over 64 KiB');
  const lines = data.toString('latin1', 0, end).split('\r\n');
  const statusLine = /^HTTP\/1\.([01]) ([1-5]\d\d) ([\t\x20-\x7e\x80-\xff]*)$/.exec(lines[0]!);
  if (!statusLine) throw new BadResponse('a malformed status line');
  const status = Number(statusLine[2]);
  const headers: string[] = [];
  let length: string | undefined;
  let coding: string | undefined;
  let connection: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new BadResponse(line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9 ? 'a folded header line (obs-fold)' : 'a header line without a name');
    for (let c = 0; c < colon; c++) {
      const code = line.charCodeAt(c);
      if (code > 127 || TOKEN[code] !== 1) throw new BadResponse('a header name that is not a token');
    }
    const value = trimValue(line, colon + 1);
    const name = line.slice(0, colon);
    const lower = name.length === 14 || name.length === 17 || name.length === 10 ? name.toLowerCase() : '';
    if (lower === 'content-length') {
      if (length !== undefined) throw new BadResponse('Content-Length twice');
      length = value;
    } else if (lower === 'transfer-encoding') {
      if (coding !== undefined) throw new BadResponse('Transfer-Encoding twice');
      coding = value;
    } else if (lower === 'connection') {
      connection = connection === undefined ? value.toLowerCase() : `${connection},${value.toLowerCase()}`;
    }
    headers.push(name, value);
  }
  if (length !== undefined && coding !== undefined) throw new BadResponse('Content-Length beside Transfer-Encoding');
  const http11 = statusLine[1] === '1';
  const keepAlive = http11 ? !hasToken(connection, 'close') : hasToken(connection, 'keep-alive');
  return { status, reason: statusLine[3]!, headers, framing: framingOf(status, forHeadRequest, length, coding), connection, keepAlive, bytes: end + 4 };
}

function framingOf(status: number, forHeadRequest: boolean, length: string | undefined, coding: string | undefined): Framing {
  if (coding !== undefined && coding.toLowerCase() !== 'chunked') throw new BadResponse(`Transfer-Encoding ${coding}: only chunked is accepted`);
  if (length !== undefined && !/^\d{1,15}$/.test(length)) throw new BadResponse('a Content-Length that is not a number');
  if (forHeadRequest || status < 200 || status === 204 || status === 304) return { kind: 'none' };
  if (coding !== undefined) return { kind: 'chunked' };
  if (length !== undefined) return { kind: 'length', bytes: Number(length) };
  return { kind: 'close' };
}

/** The field value without the optional whitespace around it; control characters but HTAB refused. */
function trimValue(line: string, from: number): string {
  let start = from;
  let end = line.length;
  while (start < end && (line.charCodeAt(start) === 32 || line.charCodeAt(start) === 9)) start++;
  while (end > start && (line.charCodeAt(end - 1) === 32 || line.charCodeAt(end - 1) === 9)) end--;
  for (let c = start; c < end; c++) {
    const code = line.charCodeAt(c);
    if ((code < 32 && code !== 9) || code === 127) throw new BadResponse('a control character in a header value');
  }
  return line.slice(start, end);
}

/** Whether a comma-separated, lower-cased list holds token. */
function hasToken(list: string | undefined, token: string): boolean {
  return list !== undefined && list.split(',').some((item) => item.trim() === token);
}

const enum Chunked {
  Size,
  Data,
  DataEnd,
  Trailer,
}

/**
 * Takes a response body off the wire as it arrives, by its framing: pieces of the body (chunk
 * framing removed) go to onData; done turns true at its end, and what followed it is left unread.
 */
export class BodyReader {
  done: boolean;
  private remaining: number;
  private state = Chunked.Size;
  /** A chunk-size or trailer line split across reads. */
  private line = '';

  constructor(private readonly framing: Framing) {
    this.done = framing.kind === 'none' || (framing.kind === 'length' && framing.bytes === 0);
    this.remaining = framing.kind === 'length' ? framing.bytes : 0;
  }

  /** Reads from data at offset; returns the offset it stopped at (data.length unless the body ended). */
  read(data: Buffer, offset: number, onData: (piece: Buffer) => void): number {
    if (this.done) return offset;
    if (this.framing.kind === 'close') {
      if (offset < data.length) onData(offset ? data.subarray(offset) : data);
      return data.length;
    }
    if (this.framing.kind === 'length') {
      const take = Math.min(this.remaining, data.length - offset);
      if (take > 0) onData(offset === 0 && take === data.length ? data : data.subarray(offset, offset + take));
      this.remaining -= take;
      this.done = this.remaining === 0;
      return offset + take;
    }
    return this.readChunked(data, offset, onData);
  }

  /** The app closed its side: fine only for a close-delimited body, else the body was cut. */
  endOfStream(): boolean {
    if (this.framing.kind === 'close') this.done = true;
    return this.done;
  }

  private readChunked(data: Buffer, start: number, onData: (piece: Buffer) => void): number {
    let offset = start;
    while (offset < data.length && !this.done) {
      if (this.state === Chunked.Data) {
        const take = Math.min(this.remaining, data.length - offset);
        onData(data.subarray(offset, offset + take));
        offset += take;
        this.remaining -= take;
        if (this.remaining === 0) this.state = Chunked.DataEnd;
        continue;
      }
      const lf = data.indexOf(LF, offset);
      const upTo = lf < 0 ? data.length : lf + 1;
      this.line += data.toString('latin1', offset, upTo);
      offset = upTo;
      if (this.line.length > MAX_LINE_BYTES) throw new BadResponse('a chunk-size or trailer line over 4 KiB');
      if (lf < 0) break;
      if (this.line.length < 2 || this.line.charCodeAt(this.line.length - 2) !== CR) throw new BadResponse('a bare LF in the chunked body');
      const line = this.line.slice(0, -2);
      this.line = '';
      if (this.state === Chunked.DataEnd) {
        if (line !== '') throw new BadResponse('a chunk not ended by CRLF');
        this.state = Chunked.Size;
      } else if (this.state === Chunked.Size) {
        this.remaining = chunkSize(line);
        this.state = this.remaining === 0 ? Chunked.Trailer : Chunked.Data;
      } else if (line === '') {
        this.done = true;
      } else if (line.includes('\r') || line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9) {
        throw new BadResponse('a malformed trailer line');
      }
      // Trailer fields are dropped, as they were by Node's client: nothing on the device uses them.
    }
    return offset;
  }
}

/** A chunk-size line: hex digits (at most 12, so the number stays exact), then optional extensions. */
function chunkSize(line: string): number {
  const match = /^([0-9a-fA-F]{1,12})(?:[\t ]*;[\t\x20-\x7e\x80-\xff]*)?$/.exec(line);
  if (!match) throw new BadResponse('a malformed chunk size');
  return parseInt(match[1]!, 16);
}
