// Socket plumbing shared by every flow: look at the first bytes of a connection without
// consuming them, and splice two sockets together.
import type net from 'node:net';

export interface PeekOptions {
  maxBytes: number;
  timeoutMs: number;
}

/**
 * Collects the first bytes of a socket until enough() says they suffice (or maxBytes arrive), then
 * puts them back, so whoever takes the socket next reads them again. Resolves undefined if the
 * peer closes or stays silent past timeoutMs; the caller then drops the connection.
 */
export function peek(socket: net.Socket, enough: (data: Buffer) => boolean, { maxBytes, timeoutMs }: PeekOptions): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    let data: Buffer = Buffer.alloc(0);
    const finish = (result: Buffer | undefined) => {
      clearTimeout(timer);
      socket.off('data', onData).off('end', onGone).off('close', onGone).off('error', onGone);
      if (result) {
        socket.pause();
        socket.unshift(result);
      }
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      data = data.length ? Buffer.concat([data, chunk]) : chunk;
      if (data.length >= maxBytes || enough(data)) finish(data);
    };
    const onGone = () => finish(undefined);
    const timer = setTimeout(onGone, timeoutMs);
    socket.on('data', onData).once('end', onGone).once('close', onGone).once('error', onGone);
    // A socket an earlier peek paused holds its bytes until resumed.
    socket.resume();
  });
}

/**
 * Joins two sockets both ways with backpressure (pipe pauses the faster side). A FIN from one
 * side is passed on as a FIN to the other (both must allow half-open), so protocols that
 * half-close keep working; an error or an abrupt close on either side tears both down.
 */
export function splice(a: net.Socket, b: net.Socket): void {
  a.pipe(b);
  b.pipe(a);
  const tearDown = () => {
    a.destroy();
    b.destroy();
  };
  a.once('error', tearDown);
  b.once('error', tearDown);
  // A side that closed after a clean exchange of FINs leaves the other to flush and close on its own.
  const closeOther = (other: net.Socket) => () => {
    if (!other.writableEnded || !other.readableEnded) other.destroy();
  };
  a.once('close', closeOther(b));
  b.once('close', closeOther(a));
}
