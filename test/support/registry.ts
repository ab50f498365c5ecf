// A real OCI registry on loopback for pull tests: Debian's docker-registry (distribution 2.8) on a
// random port with its storage in a temp folder, and a registries.conf that lets Podman pull from
// it over plain HTTP. Optionally behind a relay that throttles what the registry sends, because a
// loopback pull finishes before Podman reports any byte progress (it reports about once a second).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../image/qemu.js';

const execFileAsync = promisify(execFile);

export interface TestRegistry {
  /** host:port that pulls should name (the throttled relay when there is one). */
  host: string;
  /** For CONTAINERS_REGISTRIES_CONF of a Podman service: `host` is insecure (plain HTTP). */
  registriesConf: string;
  /** Pushes a local image (`localhost/x:1`) as `<host>/<target>`; resolves with that reference. */
  push(localImage: string, target: string): Promise<string>;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** Caps what the registry sends to clients (pulls); uploads (pushes) are not slowed. */
  bytesPerSecond?: number;
}

/** Debian's docker-registry serving `dataDir` on 127.0.0.1:`port` without auth. */
export interface RegistryService {
  port: number;
  /** A registries.conf naming `host` (default: this registry) insecure, for Podman's CONTAINERS_REGISTRIES_CONF. */
  writeRegistriesConf(file: string, host?: string): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the registry with its config in `dir` and resolves once /v2/ answers. */
export async function startRegistryService(options: { dir: string; port: number; detached?: boolean }): Promise<RegistryService> {
  const { dir, port } = options;
  await mkdir(dir, { recursive: true });
  const config = path.join(dir, 'config.yml');
  // The package's own config turns on htpasswd auth; this one has none.
  await writeFile(config, [
    'version: 0.1',
    `storage: {filesystem: {rootdirectory: ${path.join(dir, 'data')}}, delete: {enabled: true}}`,
    `http: {addr: 127.0.0.1:${port}}`,
    'log: {level: error, accesslog: {disabled: true}}',
    '',
  ].join('\n'));
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'], detached: options.detached });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!(await fetch(`http://127.0.0.1:${port}/v2/`).then((res) => res.ok, () => false))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGTERM');
      throw new Error(`docker-registry did not answer: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    port,
    writeRegistriesConf: (file, host = `127.0.0.1:${port}`) =>
      writeFile(file, `unqualified-search-registries = []\n[[registry]]\nlocation = "${host}"\ninsecure = true\n`),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

export async function startRegistry(options: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(path.join(tmpdir(), 'piccolo-registry-'));
  const port = await freePort();
  const service = await startRegistryService({ dir, port });
  const relay = options.bytesPerSecond ? await throttlingRelay(port, options.bytesPerSecond) : undefined;
  const host = `127.0.0.1:${relay?.port ?? port}`;
  const registriesConf = path.join(dir, 'registries.conf');
  await service.writeRegistriesConf(registriesConf, host);

  return {
    host,
    registriesConf,
    async push(localImage, target) {
      // Straight to the registry: the repository path is the same whichever port serves it.
      await execFileAsync('podman', ['push', '-q', '--tls-verify=false', localImage, `127.0.0.1:${port}/${target}`]);
      return `${host}/${target}`;
    },
    async stop() {
      relay?.server.close();
      for (const socket of relay?.sockets ?? []) socket.destroy();
      await service.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Forwards TCP to the registry, pacing each connection's downstream to bytesPerSecond. */
async function throttlingRelay(target: number, bytesPerSecond: number): Promise<{ server: net.Server; port: number; sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      client.write(chunk);
      upstream.pause();
      setTimeout(() => upstream.resume(), (chunk.length / bytesPerSecond) * 1000);
    });
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as net.AddressInfo).port, sockets };
}
