// `make run`: the four bundles on this machine in development mode (PICCOLO_DEV_RELAY=1: and the dev
// relay), with what apps need: a Podman API service of its own and a loopback registry to pull
// from. State and sockets live in .dev/ (PICCOLO_DEV_DIR), ports are on loopback. Ctrl-C (or
// SIGTERM) stops them all: the daemon stops its apps' containers and closes their encrypted
// volumes on the way out, then the engine and the registry stop.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { REPO_ROOT, SERVICES, bundlePath } from '../image/bundle.js';
import { SERVICE_ENVIRONMENT, serviceCommand } from '../image/node-flags.js';
// The test support's launchers, so that development and tests run pebble, Podman and the registry one way.
import { startPebble, type Pebble } from '../test/support/pebble.js';
import { containersConf, startPodmanService } from '../test/support/podman.js';
import { startRegistryService } from '../test/support/registry.js';
import { unmountAllUnder } from '../test/support/processes.js';

const devDir = path.resolve(process.env.PICCOLO_DEV_DIR ?? path.join(REPO_ROOT, '.dev'));
const registryPort = Number(process.env.PICCOLO_DEV_REGISTRY_PORT ?? 5000);
const podmanSocket = path.join(devDir, 'podman.sock');
const env = {
  ...process.env,
  PICCOLO_PODMAN_SOCKET: podmanSocket,
  // Stopping `make run` stops the apps too and closes their decrypted volumes.
  PICCOLO_STOP_APPS_ON_EXIT: 'true',
  PICCOLO_STATE_DIR: path.join(devDir, 'state'),
  PICCOLO_HEALTH_SOCKET: path.join(devDir, 'health.sock'),
  PICCOLO_CONFIG_FILE: path.join(devDir, 'config.json'),
  // No TPM and no system console in development: unlock with the password; the claim code is logged.
  PICCOLO_TPM_TCTI: process.env.PICCOLO_TPM_TCTI ?? 'none',
  PICCOLO_CONSOLE: 'none',
  PICCOLO_DAEMON_LISTEN: process.env.PICCOLO_DAEMON_LISTEN ?? '127.0.0.1:8080',
  PICCOLO_DAEMON_INTERNAL_SOCKET: path.join(devDir, 'daemon-internal.sock'),
  PICCOLO_PROXY_DAEMON_SOCKET: path.join(devDir, 'daemon-internal.sock'),
  PICCOLO_TUNNEL_DAEMON_SOCKET: path.join(devDir, 'daemon-internal.sock'),
  // The proxy forwards the portal over this socket, so the daemon learns each client's address.
  PICCOLO_DAEMON_PORTAL_SOCKET: path.join(devDir, 'daemon-portal.sock'),
  // The tunnel hands relay streams to the proxy here (each led by a PROXY v2 header).
  PICCOLO_PROXY_TUNNEL_TLS_SOCKET: path.join(devDir, 'proxy-tunnel-tls.sock'),
  PICCOLO_PROXY_TUNNEL_HTTP_SOCKET: path.join(devDir, 'proxy-tunnel-http.sock'),
  PICCOLO_TUNNEL_PROXY_TLS_SOCKET: path.join(devDir, 'proxy-tunnel-tls.sock'),
  PICCOLO_TUNNEL_PROXY_HTTP_SOCKET: path.join(devDir, 'proxy-tunnel-http.sock'),
  PICCOLO_PROXY_CERT_DIR: path.join(devDir, 'proxy-certs'),
  PICCOLO_HEALTH_LISTEN: process.env.PICCOLO_HEALTH_LISTEN ?? '127.0.0.1:4040',
  // The portal as in the image: through the proxy, which forwards it to the daemon.
  PICCOLO_PROXY_LISTEN: process.env.PICCOLO_PROXY_LISTEN ?? '127.0.0.1:8000',
  PICCOLO_PROXY_BIND_HOST: '127.0.0.1',
  PICCOLO_TUNNEL_LISTEN: process.env.PICCOLO_TUNNEL_LISTEN ?? '127.0.0.1:4041',
};
mkdirSync(devDir, { recursive: true });
// Mounts a crashed or killed earlier run left behind ("Transport endpoint is not connected").
for (const mountpoint of unmountAllUnder(devDir)) console.error(`run: detached a mount left by an earlier run: ${mountpoint}`);

// Health first, as systemd orders them in the image.
const order = ['health', ...SERVICES.filter((s) => s !== 'health')] as const;
const children: { name: string; child: ChildProcess; exited: Promise<void> }[] = [];
let stopping = false;
function launch(name: string, [command, ...args]: string[], childEnv: NodeJS.ProcessEnv): void {
  // Each in its own process group: a Ctrl-C reaches only this script, which stops them in order
  // (a daemon killed by the terminal's SIGINT with its gocryptfs children left dead mounts).
  const child = spawn(command!, args, { env: childEnv, stdio: 'inherit', detached: true });
  const exited = new Promise<void>((resolve) =>
    child.on('exit', (code, signal) => {
      console.error(`run: ${name} exited (${signal ?? code})`);
      resolve();
      if (!stopping) void stop(1);
    }),
  );
  children.push({ name, child, exited });
}

// The engine and the registry first: the daemon reconciles its apps as soon as it unlocks.
// Both run in their own process groups, so a failure on the way up must stop the registry itself.
const registry = await startRegistryService({ dir: path.join(devDir, 'registry'), port: registryPort, detached: true });
const podman = await (async () => {
  const registriesConf = path.join(devDir, 'registries.conf');
  await registry.writeRegistriesConf(registriesConf);
  const podmanConf = path.join(devDir, 'containers.conf');
  writeFileSync(podmanConf, await containersConf());
  rmSync(podmanSocket, { force: true });
  return startPodmanService({ socketPath: podmanSocket, registriesConf, containersConf: podmanConf, detached: true });
})().catch(async (err) => {
  await registry.stop();
  throw err;
});

// PICCOLO_DEV_RELAY=1: also a local Nexus relay (services/relay, never in the image), started first
// so its self-signed CA exists before the services that must trust it start.
let pebble: Pebble | undefined;
const relay = process.env.PICCOLO_DEV_RELAY === '1' ? await startDevRelay() : undefined;
// With the dev relay, certificates come from Debian's pebble on loopback (every name resolves to
// this machine there), validated through the relay's plain-HTTP port: never a public CA.
pebble = relay ? await startPebble({ httpPort: Number(relay.httpPort), defaultAddress: '127.0.0.1' }) : undefined;
let serviceEnv: NodeJS.ProcessEnv = env;
if (relay && pebble) {
  const trust = path.join(devDir, 'trust.pem');
  writeFileSync(trust, readFileSync(relay.caFile, 'utf8') + pebble.apiCa);
  serviceEnv = { ...env, NODE_EXTRA_CA_CERTS: trust, PICCOLO_ACME_DIRECTORY_URL: pebble.directoryUrl };
}
// With the image's Node flags and environment (image/node-flags.ts), so `make run` and bench-footprint measure what ships.
for (const service of order) launch(service, serviceCommand(service, process.execPath, bundlePath(service)), { ...serviceEnv, ...SERVICE_ENVIRONMENT[service] });
console.log(`\nPiccolo OS (dev) setup wizard: http://${env.PICCOLO_PROXY_LISTEN}/`);
console.log(`health: http://${env.PICCOLO_HEALTH_LISTEN}/health/ready  state: ${env.PICCOLO_STATE_DIR}`);
console.log(`engine: ${podmanSocket}  registry: 127.0.0.1:${registryPort} (podman push --tls-verify=false IMAGE 127.0.0.1:${registryPort}/NAME:TAG, then install image 127.0.0.1:${registryPort}/NAME:TAG)\n`);
if (relay) {
  console.log(`dev relay: configure remote access with relay wss://localhost:${relay.hubPort}/connect and device secret "${relay.secret}",`);
  console.log('  portal hostname e.g. piccolo.localhost, app domain e.g. apps.localhost (*.localhost resolves to this machine);');
  console.log(`  then open https://piccolo.localhost:${relay.tlsPort}/ (relay ports: ${relay.ports}); certificates come from pebble: ${pebble?.directoryUrl}\n`);
}

async function startDevRelay() {
  const relayDir = path.join(devDir, 'relay');
  const relayEnv = {
    ...env,
    PICCOLO_RELAY_DEV_DIR: relayDir,
    PICCOLO_RELAY_SECRET: process.env.PICCOLO_RELAY_SECRET ?? 'piccolo-dev-relay-secret',
    PICCOLO_RELAY_HUB_LISTEN: process.env.PICCOLO_RELAY_HUB_LISTEN ?? '127.0.0.1:9443',
    PICCOLO_RELAY_PORTS: process.env.PICCOLO_RELAY_PORTS ?? '127.0.0.1:8443,127.0.0.1:8480',
  };
  launch('relay', [process.execPath, '--enable-source-maps', bundlePath('relay')], relayEnv);
  const caFile = path.join(relayDir, 'ca.crt');
  for (let waited = 0; !existsSync(caFile) && !stopping && waited < 15_000; waited += 100) await sleep(100);
  return {
    caFile,
    secret: relayEnv.PICCOLO_RELAY_SECRET,
    ports: relayEnv.PICCOLO_RELAY_PORTS,
    hubPort: relayEnv.PICCOLO_RELAY_HUB_LISTEN.split(':').pop(),
    tlsPort: relayEnv.PICCOLO_RELAY_PORTS.split(',')[0]!.split(':').pop(),
    httpPort: relayEnv.PICCOLO_RELAY_PORTS.split(',')[1]?.split(':').pop(),
  };
}

/** The services first (the daemon stops its apps and closes their volumes), then what they used. */
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.exitCode = code;
  void pebble?.stop();
  for (const { child } of [...children].reverse()) child.kill('SIGTERM');
  const allExited = Promise.all(children.map(({ exited }) => exited));
  // Stopping apps waits for each container's grace period; beyond that, the services are stuck.
  if ((await Promise.race([allExited.then(() => true), sleep(90_000).then(() => false)])) === false) {
    for (const { name, child } of children) if (child.exitCode === null && child.signalCode === null) {
      console.error(`run: ${name} did not stop; killing it`);
      child.kill('SIGKILL');
    }
    await allExited;
  }
  for (const mountpoint of unmountAllUnder(devDir)) console.error(`run: detached a mount the daemon left: ${mountpoint}`);
  await podman.stop();
  await registry.stop();
  console.error('run: stopped');
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
