// One request to an app over a pooled raw connection: the head written as the forwarder built
// it, the client's body streamed after it (re-chunked when the client sent it chunked), the
// response read by the strict parser and streamed to the client's ServerResponse with
// backpressure both ways. The connection goes back to the pool only after a complete exchange
// that left nothing unread; anything else closes it.
import type http from 'node:http';
import { BadResponse, BodyReader, parseResponseHead, type ResponseHead } from './response-parser.js';
import type { ConnectionUser, UpstreamConnection, UpstreamPool } from './upstream-pool.js';

export class UpstreamTimeoutError extends Error {}

/** The app closed the connection before it answered. */
class ClosedBeforeAnswer extends Error {
  readonly code = 'ECONNRESET';
}

/** Only these methods are retried on a pooled connection the app had just closed. */
const RETRYABLE = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface ExchangeOptions {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  pool: UpstreamPool;
  /** The request line and header fields, final empty line included. */
  head: string;
  /** How the client's body goes on: none, as it came (Content-Length), or re-chunked. */
  body: 'none' | 'length' | 'chunked';
  timeoutMs: number;
  maxBodyBytes: number;
  /** The app's response headers as the client gets them (hop-by-hop removed, the middleware's added). */
  responseHeaders(head: ResponseHead): string[];
  /** Nothing was sent to the client yet and the app cannot answer: the forwarder's problem page. */
  failed(err: Error): void;
  /** The client's body went over maxBodyBytes: the forwarder's 413. */
  tooLarge(): void;
}

export class UpstreamExchange implements ConnectionUser {
  private connection: UpstreamConnection | undefined;
  private cancelWait: () => void = noop;
  /** A response head split across reads. */
  private pending: Buffer | undefined;
  private response: ResponseHead | undefined;
  private reader: BodyReader | undefined;
  private requestSent: boolean;
  private received = 0;
  private retried = false;
  private over = false;
  private clientFull = false;

  constructor(private readonly options: ExchangeOptions) {
    this.requestSent = options.body === 'none';
  }

  start(): void {
    // The client went away: stop the upstream exchange too.
    this.options.res.once('close', () => {
      if (!this.options.res.writableFinished) this.abandon();
    });
    this.acquire();
  }

  private acquire(): void {
    this.cancelWait = this.options.pool.acquire((connection) => this.use(connection));
  }

  private use(connection: UpstreamConnection): void {
    if (this.over) return connection.release();
    this.connection = connection;
    connection.user = this;
    const { socket } = connection;
    // A new connection gets the upstream timeout; a pooled one has it from its first exchange.
    if (!connection.reused) socket.setTimeout(this.options.timeoutMs);
    socket.write(this.options.head, 'latin1');
    if (this.options.body !== 'none') this.streamBody();
  }

  onData(chunk: Buffer): void {
    if (this.over) return;
    // What one read of the app's answer makes (head, body pieces, the end) leaves in one write
    // to the client: uncorked, Node writes the head and each piece apart, a syscall each.
    const client = this.options.res.socket;
    client?.cork();
    try {
      this.readAnswer(chunk);
    } finally {
      client?.uncork();
    }
  }

  private readAnswer(chunk: Buffer): void {
    let data = chunk;
    let offset = 0;
    try {
      if (!this.reader) {
        if (this.pending) data = Buffer.concat([this.pending, chunk]);
        this.pending = undefined;
        offset = this.readHead(data);
        if (offset < 0) return;
      }
      offset = this.reader!.read(data, offset, this.writeToClient);
    } catch (err) {
      return this.fail(err as Error);
    }
    // Bytes after the end of the body: the app speaks out of turn, the connection is not reusable.
    if (this.reader!.done) this.finish(offset === data.length);
  }

  /** Reads the final response head (skipping 1xx), writes it to the client; the offset after it, or -1 for more. */
  private readHead(data: Buffer): number {
    let offset = 0;
    for (;;) {
      const rest = offset ? data.subarray(offset) : data;
      const head = parseResponseHead(rest, this.options.req.method === 'HEAD');
      if (!head) {
        this.pending = rest;
        return -1;
      }
      offset += head.bytes;
      if (head.status === 101) throw new BadResponse('101 Switching Protocols to a request that asked for no upgrade');
      // 100 Continue and 103 Early Hints: the client's own server already answered Expect itself.
      if (head.status < 200) continue;
      this.response = head;
      this.reader = new BodyReader(head.framing);
      this.options.res.writeHead(head.status, head.reason, this.options.responseHeaders(head));
      return offset;
    }
  }

  private readonly writeToClient = (piece: Buffer): void => {
    const { res } = this.options;
    if (res.write(piece) || this.clientFull) return;
    // Several pieces of one read may each find the client full: one wait for its drain.
    this.clientFull = true;
    const socket = this.connection!.socket;
    socket.pause();
    res.once('drain', () => {
      this.clientFull = false;
      socket.resume();
    });
  };

  onEnd(): void {
    if (this.over) return;
    // Close-delimited: the app's FIN ends the body.
    if (this.reader?.endOfStream()) this.finish(false);
  }

  onError(err: Error): void {
    this.fail(err);
  }

  onTimeout(): void {
    this.fail(new UpstreamTimeoutError());
  }

  onClose(): void {
    this.fail(new ClosedBeforeAnswer('the app closed the connection'));
  }

  /** The response is complete: the client's ends, the connection goes back if it is clean. */
  private finish(clean: boolean): void {
    this.over = true;
    this.options.res.end();
    if (clean && this.requestSent && this.response!.keepAlive) {
      this.connection!.release();
      this.connection = undefined;
      return;
    }
    this.stopBody();
    this.dropConnection();
  }

  private fail(err: Error): void {
    if (this.over) return;
    const connection = this.connection;
    const { req, res } = this.options;
    const answered = this.response !== undefined || this.pending !== undefined;
    if (connection?.reused && !answered && !this.retried && this.options.body === 'none' && RETRYABLE.has(req.method!) && !(err instanceof UpstreamTimeoutError) && !(err instanceof BadResponse)) {
      // A pooled connection the app closed while it sat idle: the request never reached it.
      this.retried = true;
      this.dropConnection();
      return this.acquire();
    }
    this.over = true;
    this.stopBody();
    this.dropConnection();
    // The app died (or went silent) mid-response: nothing honest can be sent but a cut connection.
    if (res.headersSent) return void res.destroy();
    this.options.failed(err);
  }

  private abandon(): void {
    if (this.over) return;
    this.over = true;
    this.cancelWait();
    this.stopBody();
    this.dropConnection();
  }

  /** Closes the connection without hearing from it again. */
  private dropConnection(): void {
    const connection = this.connection;
    this.connection = undefined;
    if (!connection) return;
    connection.user = undefined;
    connection.socket.destroy();
  }

  private streamBody(): void {
    const { req } = this.options;
    req.on('data', this.sendBodyPiece);
    req.once('end', this.endBody);
    req.resume();
  }

  private stopBody(): void {
    const { req } = this.options;
    req.off('data', this.sendBodyPiece);
    req.off('end', this.endBody);
  }

  private readonly sendBodyPiece = (chunk: Buffer): void => {
    this.received += chunk.length;
    if (this.received > this.options.maxBodyBytes) return this.refuseBody();
    const { socket } = this.connection!;
    let flowing: boolean;
    if (this.options.body === 'chunked') {
      socket.cork();
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      flowing = socket.write('\r\n', 'latin1');
      socket.uncork();
    } else {
      flowing = socket.write(chunk);
    }
    if (flowing) return;
    const { req } = this.options;
    req.pause();
    socket.once('drain', () => req.resume());
  };

  private readonly endBody = (): void => {
    this.requestSent = true;
    if (this.options.body === 'chunked') this.connection!.socket.write('0\r\n\r\n', 'latin1');
  };

  private refuseBody(): void {
    const { res } = this.options;
    this.abandon();
    if (res.headersSent) return void res.destroy();
    res.shouldKeepAlive = false;
    this.options.tooLarge();
  }
}

function noop(): void {}
