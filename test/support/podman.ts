// A private Podman API service for integration tests (root, `podman system service` on a socket
// in a temp folder) and busybox httpd images built locally: no registry is reachable here.
// Everything made through it carries a run-unique prefix, so cleanup touches nothing else.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, copyFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';

const execFileAsync = promisify(execFile);
const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'httpd', 'echo', 'cat', 'ls', 'sleep', 'nc', 'printf', 'ip'];

export interface TestPodman {
  docker: Docker;
  /** The API socket, for a daemon process (PICCOLO_PODMAN_SOCKET). */
  socketPath: string;
  /** Unique to this run: app names start with it, images are tagged with it. */
  prefix: string;
  /**
   * Builds localhost/<prefix>-httpd:<tag>, serving `page` as /index.html on port 80 and logging
   * each request (-v). `applets` replaces the busybox links (leave out sh for an image without a shell).
   */
  buildHttpdImage(tag: string, page: string, applets?: readonly string[]): Promise<string>;
  /**
   * Builds localhost/<prefix>-<name>: busybox (with `applets`, default the httpd image's), the
   * given files (path in the image → text, or text and mode), and `cmd` as its command.
   */
  buildBusyboxImage(name: string, options: BusyboxImageOptions): Promise<string>;
  /** Removes every container, network and image of this run; then stops the service. */
  stop(): Promise<void>;
}

export interface BusyboxImageOptions {
  files: Record<string, string | { content: string; mode: number }>;
  cmd: string[];
  applets?: readonly string[];
}

export interface PodmanOptions {
  /** A registries.conf for the service (test/support/registry.ts), e.g. to pull over plain HTTP. */
  registriesConf?: string;
}

/** A `podman system service` answering the Docker-compatible API on a unix socket. */
export interface PodmanService {
  docker: Docker;
  socketPath: string;
  /** SIGTERM, then resolves once the service has exited. */
  stop(): Promise<void>;
}

export interface PodmanServiceOptions {
  socketPath: string;
  /** A registries.conf (CONTAINERS_REGISTRIES_CONF), e.g. to pull from a loopback registry over plain HTTP. */
  registriesConf?: string;
  /** A containers.conf (CONTAINERS_CONF) read instead of the system's, e.g. from containersConf(). */
  containersConf?: string;
  /** Its own process group: a Ctrl-C at the terminal then reaches only whoever started it. */
  detached?: boolean;
  /** Its own image and container storage (podman --root, with --runroot beside it), e.g. on a small tmpfs. */
  storageRoot?: string;
}

/** Starts the service and resolves once it answers a ping. */
export async function startPodmanService(options: PodmanServiceOptions): Promise<PodmanService> {
  const { socketPath } = options;
  const env = {
    ...process.env,
    ...(options.registriesConf ? { CONTAINERS_REGISTRIES_CONF: options.registriesConf } : {}),
    ...(options.containersConf ? { CONTAINERS_CONF: options.containersConf } : {}),
  };
  const storage = options.storageRoot ? ['--root', options.storageRoot, '--runroot', `${options.storageRoot.replace(/\/$/, '')}-run`] : [];
  const service: ChildProcess = spawn('podman', [...storage, 'system', 'service', '--time=0', `unix://${socketPath}`], { env, stdio: ['ignore', 'ignore', 'pipe'], detached: options.detached });
  let stderr = '';
  service.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => service.once('exit', () => resolve()));
  const docker = new Docker({ socketPath });
  const deadline = Date.now() + 10_000;
  while (!(await docker.ping().then(() => true, () => false))) {
    if (Date.now() > deadline || service.exitCode !== null) {
      service.kill('SIGTERM');
      throw new Error(`podman service did not answer: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    docker,
    socketPath,
    async stop() {
      if (service.exitCode === null && service.signalCode === null) service.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * The containers.conf this machine needs (/work/shared/notes/platform.md, as scripts/setup.sh
 * writes it): Podman's default rlimits are refused here, so they are set to the host's hard
 * limits; crun fails on hybrid cgroups, so runc with cgroupfs.
 */
export async function containersConf(): Promise<string> {
  // Capped as setup.sh caps them: 'unlimited' or more than Podman needs is refused too.
  const limit = async (flag: string, cap: number) => {
    const raw = (await execFileAsync('bash', ['-c', `ulimit -H${flag}`])).stdout.trim();
    return raw === 'unlimited' ? cap : Math.min(cap, Number(raw));
  };
  const [nofile, nproc] = await Promise.all([limit('n', 20000), limit('u', 4096)]);
  return [
    '[containers]',
    `default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]`,
    '[engine]',
    'runtime = "runc"',
    'cgroup_manager = "cgroupfs"',
    '',
  ].join('\n');
}

export async function startPodman(options: PodmanOptions = {}): Promise<TestPodman> {
  const dir = await mkdtemp(path.join(tmpdir(), 'piccolo-podman-'));
  const service = await startPodmanService({ socketPath: path.join(dir, 'podman.sock'), registriesConf: options.registriesConf });
  const { docker, socketPath } = service;
  const prefix = `t${Date.now().toString(36).slice(-5)}`;
  const images: string[] = [];
  const buildBusyboxImage = async (name: string, { files, cmd, applets = APPLETS }: BusyboxImageOptions): Promise<string> => {
    const root = path.join(dir, `root-${name.replace(/[^a-z0-9.-]/gi, '_')}`);
    await mkdir(path.join(root, 'bin'), { recursive: true });
    await mkdir(path.join(root, 'www'), { recursive: true });
    await mkdir(path.join(root, 'tmp'), { recursive: true });
    await copyFile(BUSYBOX, path.join(root, 'bin', 'busybox'));
    for (const applet of applets) await symlink('busybox', path.join(root, 'bin', applet)).catch(() => {});
    for (const [file, body] of Object.entries(files)) {
      const target = path.join(root, file);
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, typeof body === 'string' ? body : body.content, typeof body === 'string' ? {} : { mode: body.mode });
    }
    const tar = `${root}.tar`;
    await execFileAsync('tar', ['-C', root, '-cf', tar, '.']);
    const image = `localhost/${prefix}-${name}`;
    await execFileAsync('podman', ['import', '-q', '--change', `CMD ${JSON.stringify(cmd)}`, tar, image]);
    images.push(image);
    return image;
  };

  return {
    docker,
    socketPath,
    prefix,
    buildHttpdImage(tag, page, applets = APPLETS) {
      return buildBusyboxImage(`httpd:${tag}`, { files: { '/www/index.html': page }, cmd: ['/bin/httpd', '-f', '-v', '-p', '80', '-h', '/www'], applets });
    },
    buildBusyboxImage,
    async stop() {
      await removeRunObjects(docker, prefix);
      for (const image of images) await docker.getImage(image).remove({ force: true }).catch(() => {});
      await service.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Containers first (they hold the networks), then networks of apps named with the prefix. */
export async function removeRunObjects(docker: Docker, prefix: string): Promise<void> {
  const ours = (labels: Record<string, string> | undefined) => labels?.['piccolo.app']?.startsWith(prefix) ?? false;
  for (const container of await docker.listContainers({ all: true })) {
    if (ours(container.Labels) || container.Names.some((name) => name.includes(prefix))) await docker.getContainer(container.Id).remove({ force: true }).catch(() => {});
  }
  for (const network of await docker.listNetworks()) {
    if (ours(network.Labels)) await docker.getNetwork(network.Id).remove().catch(() => {});
  }
}

/** Listening TCP sockets on these ports bound to anything but 127.0.0.1, from `ss -ltn`. */
export async function exposedBeyondLoopback(ports: readonly number[]): Promise<string[]> {
  const { stdout } = await execFileAsync('ss', ['-ltnH']);
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[3] ?? '')
    .filter((local) => {
      const at = local.lastIndexOf(':');
      return ports.includes(Number(local.slice(at + 1))) && local.slice(0, at) !== '127.0.0.1';
    });
}
