// Our tunnel client (services/tunnel TunnelClient: session, streams, credits, reconnect loop) as its
// own process for the tunnel bench. The remote table comes straight from the config instead of the
// daemon's long poll (that link only carries configuration); the data path is the real one, with a
// dialer that reaches the bench's targets over TCP instead of the proxy's ingress sockets.
// IPC: {gc: true} collects garbage first; every message is answered with the JS heap in use and
// the tunnel's status.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { Backoff } from '../services/common/backoff.js';
import { createLogger } from '../services/common/logger.js';
import { TunnelClient } from '../services/tunnel/client.js';
import type { Dialer } from '../services/tunnel/dialer.js';

export interface ClientHostConfig {
  relayUrl: string;
  secret: string;
  caFile: string;
  /** hostname -> TCP port on 127.0.0.1 */
  targets: Record<string, number>;
  /** Bytes every user sends first to name its target (see userPreface); stripped before the target. */
  prefaceBytes: Record<string, number>;
  /** The backoff's "stable link" time; the shipped 30 s would stretch 100 relay kills past the run. */
  stableMs: number;
}

const config = JSON.parse(process.argv[2]!) as ClientHostConfig;

/** Connects to the target named by the stream's hostname, dropping the naming preface it was sent. */
const dialer: Dialer = ({ hostname }) =>
  new Promise((resolve, reject) => {
    const port = config.targets[hostname];
    if (!port) return reject(new Error(`no bench target for ${hostname}`));
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(withoutFirstBytes(socket, config.prefaceBytes[hostname] ?? 0));
    });
  });

/**
 * The relay hands the sniffed bytes (the preface) to the stream first; raw targets such as iperf3
 * must not see them. Only the first writes are looked at, then the socket's own write is back.
 */
function withoutFirstBytes(socket: net.Socket, count: number): net.Socket {
  let left = count;
  if (!left) return socket;
  const write = socket.write;
  socket.write = ((chunk: Buffer, callback?: (err?: Error | null) => void) => {
    const skip = Math.min(left, chunk.length);
    left -= skip;
    if (!left) socket.write = write;
    if (skip === chunk.length) {
      process.nextTick(() => callback?.());
      return true;
    }
    return (write as (chunk: Buffer, callback?: (err?: Error | null) => void) => boolean).call(socket, chunk.subarray(skip), callback);
  }) as typeof socket.write;
  return socket;
}

const tunnel = new TunnelClient({
  logger: createLogger({ service: 'bench-tunnel', level: 'error' }),
  dialer,
  subject: 'bench',
  tls: { ca: readFileSync(config.caFile, 'utf8') },
  backoff: new Backoff({ initialMs: 1000, maxMs: 60_000, stableMs: config.stableMs, jitter: 'full' }),
});
await tunnel.start();
await tunnel.update({
  rev: 1,
  enabled: true,
  relayUrl: config.relayUrl,
  deviceSecret: config.secret,
  routes: Object.keys(config.targets).map((hostname) => ({ hostname, kind: 'app', mode: 'local' })),
});
process.on('message', (message: { gc?: boolean }) => {
  if (message.gc) (globalThis as { gc?: () => void }).gc?.();
  process.send!({ heapUsed: process.memoryUsage().heapUsed, status: tunnel.status() });
});
process.on('disconnect', () => process.exit(0));
console.log('ready');
