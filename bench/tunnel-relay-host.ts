// Our relay (services/relay) as its own process for the tunnel bench, so it can be pinned,
// measured (RSS) and killed. Argument: a JSON config. Prints "ready" once it listens.
// IPC: {gc: true} collects garbage (run with --expose-gc), so memory counts what is retained;
// every message is answered with the JS heap in use.
import { readFileSync } from 'node:fs';
import { createLogger } from '../services/common/logger.js';
import { Relay } from '../services/relay/relay.js';

export interface RelayHostConfig {
  hubPort: number;
  relayPort: number;
  keyFile: string;
  certFile: string;
  secret: string;
}

const config = JSON.parse(process.argv[2]!) as RelayHostConfig;
const relay = new Relay({
  hub: { host: '127.0.0.1', port: config.hubPort },
  tls: { key: readFileSync(config.keyFile, 'utf8'), cert: readFileSync(config.certFile, 'utf8') },
  secret: config.secret,
  relayPorts: [config.relayPort],
  // T5 holds idle streams longer than the server's usual 60 s.
  idleTimeoutSeconds: 3600,
  logger: createLogger({ service: 'bench-relay', level: 'error' }),
});
await relay.start();
process.on('message', (message: { gc?: boolean }) => {
  if (message.gc) (globalThis as { gc?: () => void }).gc?.();
  process.send!({ heapUsed: process.memoryUsage().heapUsed });
});
process.on('disconnect', () => process.exit(0));
console.log('ready');
