// The ports the proxy listens on. A PortListener only accepts and hands each connection to the
// front door, which looks up the port's route per connection; so a route may change without
// rebinding, and opening or closing one port never touches the connections of another.
import net from 'node:net';
import type { Module } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import type { ListenAddress } from '../common/config.js';

export class PortListener implements Module {
  private readonly server: net.Server;

  constructor(
    readonly name: string,
    private readonly address: ListenAddress,
    onConnection: (socket: net.Socket) => void,
    private readonly logger: Logger,
  ) {
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, onConnection);
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: this.address.host, port: this.address.port, backlog: 4096 }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.logger.info('listening', { listener: this.name, address: `${this.address.host}:${this.port}` });
  }

  /** Stops accepting; connections already accepted carry on until they end. */
  async stop(): Promise<void> {
    if (this.server.listening) this.server.close();
    this.logger.info('stopped listening', { listener: this.name });
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }
}

/** One open port of a PortSet: a TCP listener, or a UDP one (udp-relay.ts). */
export interface OpenPort<T> {
  readonly name: string;
  /** Binds; rejects when the port cannot be had, leaving nothing open. */
  start(): Promise<void>;
  stop(): Promise<void> | void;
  /** The route table changed what this port serves; without it the port keeps what it was made with. */
  update?(wanted: T): void;
}

/** Ports opened and closed as the route table changes; a port that cannot bind is logged and retried on the next table. */
export class PortSet<T> implements Module {
  private readonly open = new Map<number, OpenPort<T>>();

  constructor(
    readonly name: string,
    private readonly make: (port: number, wanted: T) => OpenPort<T>,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    await Promise.all([...this.open.values()].map((listener) => listener.stop()));
    this.open.clear();
  }

  async reconcile(wanted: ReadonlyMap<number, T>): Promise<void> {
    for (const [port, listener] of [...this.open]) {
      const next = wanted.get(port);
      if (next !== undefined) listener.update?.(next);
      else {
        this.open.delete(port);
        await listener.stop();
      }
    }
    const opening = [...wanted].filter(([port]) => !this.open.has(port));
    await Promise.all(
      opening.map(async ([port, next]) => {
        const listener = this.make(port, next);
        try {
          await listener.start();
          this.open.set(port, listener);
        } catch (err) {
          this.logger.error('cannot open a public port', { listener: listener.name, port, err });
        }
      }),
    );
  }
}

export interface AppListenersOptions {
  bindHost: string;
  onConnection: (socket: net.Socket) => void;
  logger: Logger;
}

/** The apps' public TCP ports, by the name of the route each serves. */
export class AppListeners extends PortSet<string> {
  constructor(options: AppListenersOptions) {
    super('app-listeners', (port, name) => new PortListener(name, { host: options.bindHost, port }, options.onConnection, options.logger), options.logger);
  }
}
