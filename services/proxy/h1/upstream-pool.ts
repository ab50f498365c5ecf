// Keep-alive connections to one upstream (an app's port, or the portal's unix socket), reused
// newest first: the busiest few stay warm and the rest time out, so a burst does not leave
// hundreds of idle connections behind. Each socket gets its listeners once, when it is made, and
// hands its events to whichever exchange holds it now; an idle socket that speaks, ends or times
// out is closed.
import net from 'node:net';

export type UpstreamTarget = { port: number } | { socketPath: string };

/** What an exchange does with its connection's events while it holds it. */
export interface ConnectionUser {
  onData(chunk: Buffer): void;
  onEnd(): void;
  onError(err: Error): void;
  /** No byte came or went for the socket's timeout (set by the first user of a new connection). */
  onTimeout(): void;
  onClose(): void;
}

export interface PoolLimits {
  /** Idle connections kept beyond this are closed. */
  maxIdle: number;
  /** Connections open at once; a request beyond them waits for one to come back. */
  maxConnections: number;
}

export const DEFAULT_POOL_LIMITS: PoolLimits = { maxIdle: 64, maxConnections: 512 };

export class UpstreamConnection {
  user: ConnectionUser | undefined;
  /** It has carried an exchange before: the app may have closed it while it sat idle. */
  reused = false;

  constructor(
    readonly socket: net.Socket,
    private readonly pool: UpstreamPool,
  ) {
    socket.on('data', (chunk: Buffer) => (this.user ? this.user.onData(chunk) : socket.destroy()));
    socket.on('end', () => (this.user ? this.user.onEnd() : socket.destroy()));
    socket.on('error', (err) => this.user?.onError(err));
    socket.on('timeout', () => (this.user ? this.user.onTimeout() : socket.destroy()));
    socket.on('close', () => {
      const user = this.user;
      this.user = undefined;
      pool.closed(this);
      user?.onClose();
    });
  }

  /** The exchange is over and the connection is clean: back to the pool, or closed if the pool is full. */
  release(): void {
    this.user = undefined;
    this.reused = true;
    this.pool.released(this);
  }
}

type Waiter = (connection: UpstreamConnection) => void;

export class UpstreamPool {
  private readonly idle: UpstreamConnection[] = [];
  private readonly waiters: Waiter[] = [];
  private open = 0;
  private destroyed = false;

  constructor(
    private readonly target: UpstreamTarget,
    private readonly limits: PoolLimits = DEFAULT_POOL_LIMITS,
  ) {}

  /**
   * A connection for user, now (an idle one, else a new one) or, at the connection limit, once
   * one comes back; returns a function that gives up the wait (a no-op once it was handed over).
   */
  acquire(use: Waiter): () => void {
    const connection = this.idle.pop() ?? (this.open < this.limits.maxConnections ? this.connect() : undefined);
    if (connection) {
      use(connection);
      return noop;
    }
    this.waiters.push(use);
    return () => {
      const index = this.waiters.indexOf(use);
      if (index >= 0) this.waiters.splice(index, 1);
    };
  }

  /** Closes the idle connections; busy ones finish their exchange, then close. */
  destroy(): void {
    this.destroyed = true;
    for (const connection of this.idle.splice(0)) connection.socket.destroy();
  }

  /** @internal by UpstreamConnection */
  released(connection: UpstreamConnection): void {
    const waiter = this.waiters.shift();
    if (waiter) return waiter(connection);
    if (this.destroyed || this.idle.length >= this.limits.maxIdle) return void connection.socket.destroy();
    this.idle.push(connection);
  }

  /** @internal by UpstreamConnection */
  closed(connection: UpstreamConnection): void {
    this.open--;
    const index = this.idle.indexOf(connection);
    if (index >= 0) this.idle.splice(index, 1);
    const waiter = this.waiters.shift();
    if (waiter) waiter(this.connect());
  }

  private connect(): UpstreamConnection {
    this.open++;
    const where = 'port' in this.target ? { host: '127.0.0.1', port: this.target.port } : { path: this.target.socketPath };
    // noDelay: a small request must not wait for the ACK of the previous one (Nagle).
    const socket = net.connect({ ...where, noDelay: true });
    return new UpstreamConnection(socket, this);
  }
}

function noop(): void {}
