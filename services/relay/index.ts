// Composition root of the development relay: a Nexus server stand-in on this machine, so remote
// access can be tried without a public relay (`PICCOLO_DEV_RELAY=1 make run`). Never in the image.
// Without certificate files it makes a self-signed pair for localhost/127.0.0.1 in its dev folder
// (kept across runs); clients trust it with NODE_EXTRA_CA_CERTS=<dev folder>/ca.crt.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { field, loadConfig, parseAbsolutePath, parseList, parseListen, parseLogLevel, type ListenAddress, type Parse } from '../common/config.js';
import { ConfigError } from '../common/errors.js';
import { writeFileDurable } from '../common/durable.js';
import { runMain, startService } from '../common/lifecycle.js';
import { createLogger, type LogLevel } from '../common/logger.js';
import { createNotifier } from '../common/notify.js';
import { LocalCa, type KeyAndCert } from '../proxy/local-ca.js';
import { Relay } from './relay.js';

const parseListenList: Parse<ListenAddress[]> = (raw) => parseList(raw).map(parseListen);

const parsePorts: Parse<number[]> = (raw) =>
  parseList(raw).map((item) => {
    const port = Number(item);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${item} is not a port`);
    return port;
  });

const parseSwitch: Parse<boolean> = (raw) => {
  if (raw !== '0' && raw !== '1') throw new Error('must be 0 or 1');
  return raw === '1';
};

const parseSeconds: Parse<number> = (raw) => {
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds < 0) throw new Error('must be a number of seconds, 0 or more');
  return seconds;
};

async function main(env: NodeJS.ProcessEnv) {
  const config = loadConfig(
    {
      logLevel: field('PICCOLO_LOG_LEVEL', parseLogLevel, 'info' as LogLevel),
      hub: field('PICCOLO_RELAY_HUB_LISTEN', parseListen, parseListen('127.0.0.1:9443')),
      relayPorts: field('PICCOLO_RELAY_PORTS', parseListenList, parseListenList('127.0.0.1:8443,127.0.0.1:8480')),
      secret: field('PICCOLO_RELAY_SECRET', (raw) => raw),
      certFile: field('PICCOLO_RELAY_TLS_CERT', parseAbsolutePath, ''),
      keyFile: field('PICCOLO_RELAY_TLS_KEY', parseAbsolutePath, ''),
      devDir: field('PICCOLO_RELAY_DEV_DIR', parseAbsolutePath, path.resolve('.dev', 'relay')),
      allowedTcpPortClaims: field('PICCOLO_RELAY_ALLOWED_TCP_PORTS', parsePorts, [] as number[]),
      udpRelayPorts: field('PICCOLO_RELAY_UDP_PORTS', parseListenList, [] as ListenAddress[]),
      allowedUdpPortClaims: field('PICCOLO_RELAY_ALLOWED_UDP_PORTS', parsePorts, [] as number[]),
      allowOutbound: field('PICCOLO_RELAY_ALLOW_OUTBOUND', parseSwitch, false),
      allowedOutboundPorts: field('PICCOLO_RELAY_ALLOWED_OUTBOUND_PORTS', parsePorts, [] as number[]),
      idleTimeoutSeconds: field('PICCOLO_RELAY_IDLE_TIMEOUT_SECONDS', parseSeconds, 60),
    },
    { env },
  );
  if (Boolean(config.certFile) !== Boolean(config.keyFile)) throw new ConfigError(['PICCOLO_RELAY_TLS_CERT and PICCOLO_RELAY_TLS_KEY: give both or neither']);
  const logger = createLogger({ service: 'relay', level: config.logLevel });
  const tls = config.certFile ? { cert: readFileSync(config.certFile, 'utf8'), key: readFileSync(config.keyFile, 'utf8') } : await devCertificate(config.devDir);
  if (!config.certFile) logger.info('self-signed hub certificate', { trust: `NODE_EXTRA_CA_CERTS=${path.join(config.devDir, 'ca.crt')}` });
  const { hub, secret, relayPorts, allowedTcpPortClaims, udpRelayPorts, allowedUdpPortClaims, allowOutbound, allowedOutboundPorts, idleTimeoutSeconds } = config;
  const relay = new Relay({ hub, tls, secret, relayPorts, allowedTcpPortClaims, udpRelayPorts, allowedUdpPortClaims, allowOutbound, allowedOutboundPorts, idleTimeoutSeconds, logger });
  return startService({ logger, notifier: createNotifier({ env, pid: process.pid }), modules: [relay] });
}

/** The dev folder's certificate for localhost and 127.0.0.1, made once so trust in ca.crt lasts. */
async function devCertificate(dir: string): Promise<KeyAndCert> {
  const files = { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'hub.crt'), key: path.join(dir, 'hub.key') };
  if (Object.values(files).every(existsSync)) return { cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8') };
  await mkdir(dir, { recursive: true });
  const ca = await LocalCa.create('dev relay');
  const leaf = await ca.issue(['localhost', '127.0.0.1']);
  await writeFileDurable(files.key, leaf.key);
  await writeFileDurable(files.cert, leaf.cert, 0o644);
  // Last: its presence says the pair is complete.
  await writeFileDurable(files.ca, ca.root.cert, 0o644);
  return leaf;
}

void runMain('relay', () => main(process.env));
