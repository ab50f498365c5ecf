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

export interface AppListenersOptions {
  bindHost: string;
  onConnection: (socket: net.Socket) => void;
  logger: Logger;
}

/** The apps' public ports, opened and closed as the route table changes. */
export class AppListeners implements Module {
  readonly name = 'app-listeners';
  private readonly open = new Map<number, PortListener>();

  constructor(private readonly options: AppListenersOptions) {}

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    await Promise.all([...this.open.values()].map((listener) => listener.stop()));
    this.open.clear();
  }

  /** Opens the ports that are new and closes the ones gone; a port that cannot bind is logged and retried on the next table. */
  async reconcile(wanted: Map<number, string>): Promise<void> {
    const closing = [...this.open].filter(([port]) => !wanted.has(port));
    for (const [port, listener] of closing) {
      this.open.delete(port);
      await listener.stop();
    }
    const opening = [...wanted].filter(([port]) => !this.open.has(port));
    await Promise.all(
      opening.map(async ([port, name]) => {
        const listener = new PortListener(name, { host: this.options.bindHost, port }, this.options.onConnection, this.options.logger);
        try {
          await listener.start();
          this.open.set(port, listener);
        } catch (err) {
          this.options.logger.error('cannot open a public port', { listener: name, port, err });
        }
      }),
    );
  }
}
