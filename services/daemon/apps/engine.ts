// The container engine as the app runtime sees it: Podman through its Docker-compatible API
// (dockerode), reduced to the few operations the executor and the manager need. Nothing is
// remembered here: every answer is read back from the engine, by the runtime's labels
// (live-state.ts keeps the last such read fresh, following events()).
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { writeFile } from 'node:fs/promises';
import type Docker from 'dockerode';
import type { Logger } from '../../common/logger.js';
import { runTool, stderrTail } from '../../common/run-tool.js';
import type { PinnedImage } from '../control-document.js';
import { LABELS, type ContainerSpec, type NetworkSpec } from './container-spec.js';
import { EngineError, ImageUnavailableError } from './errors.js';
import type { EngineStorage } from './image-space.js';
import { PullTracker, type PullEvent, type PullProgress } from './pull-progress.js';
import type { CurrentContainer, CurrentNetwork, CurrentState } from './planner.js';

export interface ContainerStatus extends CurrentContainer {
  state: string;
  /** The piccolo.service label; "app" for containers made before services existed. */
  service: string;
  /** The engine's healthcheck verdict when the container has one: starting, healthy, unhealthy. */
  health: string | undefined;
  /** The image it runs, by ID. */
  imageId: string;
  exitCode: number | undefined;
  /** The engine's own words when the container failed to start. */
  error: string | undefined;
  startedAt: string | undefined;
  finishedAt: string | undefined;
}

export interface EngineState extends CurrentState {
  containers: ContainerStatus[];
}

/** One event of the engine's stream (what happened to which object), see Engine.events(). */
export interface EngineEvent {
  /** container, network, image... */
  type: string;
  /** create, start, die, remove, health_status... */
  action: string;
  id: string;
  /** The piccolo.app label, when it has one. */
  app: string;
}

export interface ContainerStats {
  cpuPercent: number;
  memoryBytes: number;
  memoryLimitBytes: number | undefined;
}

export interface TerminalSize {
  cols: number;
  rows: number;
}

export interface ShellSession {
  stream: Duplex;
  resize(size: TerminalSize): Promise<void>;
  /** Once the stream has ended; undefined when the engine cannot tell. */
  exitCode(): Promise<number | undefined>;
  /** Ends the session: the shell and the job in its foreground get SIGHUP. */
  close(): Promise<void>;
}

export interface LogOptions {
  /** Lines from the end; all when undefined. */
  tail?: number;
  follow: boolean;
}

export interface EngineOptions {
  docker: Docker;
  logger: Logger;
  /** How long a graceful stop may take before the engine kills the container. */
  stopTimeoutS?: number;
  /** Runs `ip`; a parameter so tests of other parts need no root. */
  ipTool?: string;
  /**
   * This daemon's mark (label piccolo.instance) on what it makes. state() sees only its own, so
   * daemons sharing one engine (tests, `make run`) never take each other's apps for strays.
   * Without it, every object is seen.
   */
  instance?: string;
  /** Whether an unmarked object (made before marks existed) of this app is this daemon's: its installed apps are. */
  adopts?: (app: string) => boolean;
  /** Before every pull: rejects (image-space.ts) when the image would not fit. */
  spaceCheck?: (image: string) => Promise<void>;
}

/** See EngineOptions.instance. */
export const INSTANCE_LABEL = 'piccolo.instance';

const NOT_FOUND = 404;
const NOT_MODIFIED = 304;

export class Engine {
  private readonly docker: Docker;

  constructor(private readonly options: EngineOptions) {
    this.docker = options.docker;
  }

  private owns(labels: Record<string, string> | undefined): boolean {
    if (!this.options.instance) return true;
    const mark = labels?.[INSTANCE_LABEL];
    if (mark !== undefined) return mark === this.options.instance;
    return this.options.adopts?.(labels?.[LABELS.app] ?? '') ?? false;
  }

  private instanceLabel(): Record<string, string> {
    return this.options.instance ? { [INSTANCE_LABEL]: this.options.instance } : {};
  }

  /** Every container and network carrying the runtime's labels, as they are now. */
  async state(): Promise<EngineState> {
    const filters = { label: [`${LABELS.managed}=true`] };
    const [allListed, allNetworks] = await Promise.all([
      this.call('list containers', () => this.docker.listContainers({ all: true, filters })),
      this.call('list networks', () => this.docker.listNetworks({ filters })),
    ]);
    const listed = allListed.filter((summary) => this.owns(summary.Labels));
    const networks = allNetworks.filter((network) => this.owns(network.Labels));
    const containers: ContainerStatus[] = [];
    for (const summary of listed) {
      // A container may vanish between list and inspect (someone removed it); skip it then.
      const info = await this.docker.getContainer(summary.Id).inspect().catch((err) => (statusOf(err) === NOT_FOUND ? undefined : Promise.reject(new EngineError('inspect container', err))));
      if (!info) continue;
      const labels = info.Config.Labels ?? {};
      containers.push({
        id: info.Id,
        name: info.Name.replace(/^\//, ''),
        app: labels[LABELS.app] ?? '',
        role: labels[LABELS.role],
        configHash: labels[LABELS.configHash],
        service: labels[LABELS.service] ?? 'app',
        stopTimeoutS: labels[LABELS.stopGrace] === undefined ? undefined : Number(labels[LABELS.stopGrace]),
        health: (info.State as { Health?: { Status?: string } }).Health?.Status || undefined,
        imageId: info.Image,
        // Podman says Running: false while a stop is under way ("stopping", the process still
        // holding its ports): counted as running, so a stop job resumed after a daemon restart
        // stops it again, which waits until the engine has really stopped it.
        running: info.State.Running || info.State.Status === 'stopping',
        networks: Object.keys(info.NetworkSettings.Networks ?? {}),
        state: info.State.Status,
        exitCode: info.State.Running ? undefined : info.State.ExitCode,
        error: info.State.Error || undefined,
        startedAt: validTime(info.State.StartedAt),
        finishedAt: validTime(info.State.FinishedAt),
      });
    }
    return {
      containers,
      networks: networks.map((network): CurrentNetwork => ({
        name: network.Name,
        app: network.Labels?.[LABELS.app] ?? '',
        subnet: network.IPAM?.Config?.[0]?.Subnet,
        internal: network.Internal,
      })),
    };
  }

  /**
   * The engine's event stream (GET /events) for the runtime's objects (label piccolo.managed), as
   * they happen: what changed, not the state itself, which state() reads back. Resolves once the
   * engine accepted the request; the iterable ends when the engine closes the stream or `signal` aborts.
   */
  async events(signal: AbortSignal): Promise<AsyncIterable<EngineEvent>> {
    const filters = { label: [`${LABELS.managed}=true`] };
    const raw = (await this.call('follow events', () => this.docker.getEvents({ filters, abortSignal: signal }))) as Readable;
    const owns = (labels: Record<string, string> | undefined) => this.owns(labels);
    async function* parsed(): AsyncIterable<EngineEvent> {
      try {
        for await (const line of createInterface({ input: raw, crlfDelay: Infinity })) {
          if (!line.trim()) continue;
          const event = JSON.parse(line) as { Type?: string; Action?: string; status?: string; Actor?: { ID?: string; Attributes?: Record<string, string> } };
          // Another daemon's apps on a shared engine are its business.
          if (!owns(event.Actor?.Attributes)) continue;
          yield { type: event.Type ?? 'container', action: event.Action ?? event.status ?? '', id: event.Actor?.ID ?? '', app: event.Actor?.Attributes?.[LABELS.app] ?? '' };
        }
      } catch (err) {
        if (!signal.aborted) throw new EngineError('follow events', err);
      } finally {
        raw.destroy();
      }
    }
    return parsed();
  }

  /**
   * Every host port that any container of the engine publishes, ours or not, running or not: a
   * stopped container (another daemon's too) gets its ports back when it starts.
   */
  async portsInUse(): Promise<number[]> {
    const containers = await this.call('list containers', () => this.docker.listContainers({ all: true }));
    return containers.flatMap((container) => (container.Ports ?? []).map((port) => port.PublicPort).filter((port): port is number => !!port));
  }

  /** Every IPv4 subnet in use by any engine network, ours or not. */
  async subnetsInUse(): Promise<string[]> {
    const networks = await this.call('list networks', () => this.docker.listNetworks());
    return networks.flatMap((network) => (network.IPAM?.Config ?? []).map((config) => config.Subnet).filter((s): s is string => !!s && s.includes('.')));
  }

  /**
   * The image as it will run: its ID and, when it came from a registry, its digest. A pinned
   * image is used as pinned (pulled again by digest if the engine lost it), so a tag that moved
   * on changes nothing; otherwise the reference is pulled when the engine does not have it.
   */
  async resolveImage(image: string, options: { pinned?: PinnedImage; onPull?: (progress: PullProgress) => void } = {}): Promise<PinnedImage> {
    const { pinned, onPull } = options;
    if (pinned && pinned.ref === image) {
      if (await this.imageInfo(pinned.id)) return pinned;
      if (pinned.digest) {
        const id = await this.pull(pinned.digest, onPull);
        if (id === pinned.id) return pinned;
        throw new ImageUnavailableError(image, `the registry's ${pinned.digest} is not the pinned image ${pinned.id}`);
      }
    }
    const found = await this.imageInfo(image);
    if (found) return { ref: image, id: found.Id, ...digestOf(found, image) };
    await this.pull(image, onPull);
    const pulled = await this.imageInfo(image);
    if (!pulled) throw new ImageUnavailableError(image, 'the pull finished but the image is not there');
    return { ref: image, id: pulled.Id, ...digestOf(pulled, image) };
  }

  /** Whether the engine holds the image (by reference or ID), so resolving it pulls nothing. */
  async hasImage(image: string): Promise<boolean> {
    return (await this.imageInfo(image)) !== undefined;
  }

  /** Where the engine keeps images, and which registries it speaks plain HTTP to (podman info). */
  async storage(): Promise<EngineStorage> {
    const info = (await this.call('engine info', () => this.libpod('/libpod/info'))) as {
      store?: { graphRoot?: string; imageCopyTmpDir?: string };
      registries?: Record<string, { Prefix?: string; Insecure?: boolean; Location?: string } | string[]>;
    };
    if (!info.store?.graphRoot) throw new EngineError('engine info', new Error('no graphRoot in the answer'));
    // Besides the [[registry]] entries, the answer lists "search" (a list of names): not a rule.
    const registries = Object.entries(info.registries ?? {}).flatMap(([key, entry]) =>
      Array.isArray(entry) || !entry ? [] : [{ prefix: entry.Prefix || key, location: entry.Location || entry.Prefix || key, insecure: entry.Insecure === true }],
    );
    return { graphRoot: info.store.graphRoot, copyDir: info.store.imageCopyTmpDir || '/var/tmp', registries };
  }

  /** Pulls a reference, reporting progress; resolves with the image's ID. */
  private async pull(image: string, onPull?: (progress: PullProgress) => void): Promise<string> {
    await this.options.spaceCheck?.(image);
    this.options.logger.info('pulling image', { image });
    const tracker = new PullTracker(image);
    try {
      const stream = await this.docker.pull(image);
      await new Promise<void>((resolve, reject) =>
        this.docker.modem.followProgress(
          stream,
          (err) => (err ? reject(err) : resolve()),
          (event: PullEvent) => {
            tracker.add(event);
            onPull?.(tracker.progress);
          },
        ),
      );
    } catch (err) {
      throw new ImageUnavailableError(image, (err as Error).message);
    }
    // The engine answers a failed pull (unknown tag, TLS) with 200 and an error line.
    if (tracker.error) throw new ImageUnavailableError(image, tracker.error);
    tracker.finish();
    onPull?.(tracker.progress);
    const pulled = await this.imageInfo(image);
    if (!pulled) throw new ImageUnavailableError(image, 'the pull finished but the image is not there');
    return pulled.Id;
  }

  async createNetwork(spec: NetworkSpec): Promise<void> {
    await this.call(`create network ${spec.name}`, () =>
      this.docker.createNetwork({
        Name: spec.name,
        Driver: 'bridge',
        Internal: spec.internal,
        Labels: { [LABELS.managed]: 'true', [LABELS.app]: spec.app, [LABELS.role]: 'network', ...this.instanceLabel() },
        // Blocks traffic between isolated networks: apps reach each other only through depends_on.
        Options: { isolate: 'true' },
        IPAM: { Driver: 'default', Config: [{ Subnet: spec.subnet, Gateway: spec.gateway }] },
      }),
    );
  }

  async removeNetwork(name: string): Promise<void> {
    await this.call(`remove network ${name}`, () => this.docker.getNetwork(name).remove(), [NOT_FOUND]);
  }

  async createContainer(spec: ContainerSpec, configHash: string): Promise<void> {
    const exposed = Object.fromEntries(spec.ports.map((port) => [`${port.guestPort}/${port.protocol ?? 'tcp'}`, {}]));
    const bindings = Object.fromEntries(
      // Fortress: published on loopback only; the proxy is what faces the network.
      spec.ports.map((port) => [`${port.guestPort}/${port.protocol ?? 'tcp'}`, [{ HostIp: '127.0.0.1', HostPort: String(port.hostPort) }]]),
    );
    const endpoints: Docker.EndpointsConfig = {};
    if (spec.network) endpoints[spec.network.name] = { IPAMConfig: { IPv4Address: spec.network.ip }, Aliases: spec.network.aliases };
    for (const network of spec.dependencyNetworks) endpoints[network] = {};
    const labels: Record<string, string> = { [LABELS.managed]: 'true', [LABELS.app]: spec.app, [LABELS.role]: 'app', [LABELS.service]: spec.service, [LABELS.configHash]: configHash, ...this.instanceLabel() };
    if (spec.stopTimeoutS !== undefined) labels[LABELS.stopGrace] = String(spec.stopTimeoutS);
    const check = spec.healthcheck;
    await this.call(`create container ${spec.name}`, () =>
      this.docker.createContainer({
        name: spec.name,
        Image: spec.imageId,
        Env: Object.entries(spec.env).map(([key, value]) => `${key}=${value}`),
        Labels: labels,
        ExposedPorts: exposed,
        ...(spec.command && { Cmd: spec.command }),
        ...(spec.entrypoint && { Entrypoint: spec.entrypoint }),
        ...(spec.user !== undefined && { User: spec.user }),
        ...(spec.workingDir !== undefined && { WorkingDir: spec.workingDir }),
        ...(spec.stopTimeoutS !== undefined && { StopTimeout: spec.stopTimeoutS }),
        ...(check && { Healthcheck: { Test: check.test, Interval: check.intervalNs, Timeout: check.timeoutNs, Retries: check.retries, StartPeriod: check.startPeriodNs } }),
        HostConfig: {
          PortBindings: bindings,
          Binds: spec.binds.map((bind) => `${bind.host}:${bind.container}${bind.readOnly ? ':ro' : ''}`),
          Tmpfs: Object.fromEntries(spec.tmpfs.map((mount) => [mount.container, mount.sizeBytes === undefined ? '' : `size=${mount.sizeBytes}`])),
          Memory: spec.memoryBytes,
          NanoCpus: spec.nanoCpus,
          // The daemon restarts crashed apps itself, with a backoff the engine does not have.
          RestartPolicy: { Name: 'no' },
          NetworkMode: spec.network?.name ?? 'host',
          ExtraHosts: spec.extraHosts,
          CapDrop: spec.capDrop,
          CapAdd: spec.capAdd,
          ReadonlyRootfs: spec.readOnly,
          Privileged: spec.privileged,
          Devices: spec.devices.map((device) => {
            const [host, inside = host] = device.split(':');
            return { PathOnHost: host!, PathInContainer: inside!, CgroupPermissions: 'rwm' };
          }),
          ...(spec.shmSizeBytes !== undefined && { ShmSize: spec.shmSizeBytes }),
        },
        ...(spec.network ? { NetworkingConfig: { EndpointsConfig: endpoints } } : {}),
      }),
    );
  }

  async startContainer(name: string): Promise<void> {
    await this.call(`start container ${name}`, () => this.docker.getContainer(name).start(), [NOT_MODIFIED]);
  }

  /** `timeoutS`: the service's own stop grace, else the engine's default. */
  async stopContainer(id: string, timeoutS?: number): Promise<void> {
    await this.call(`stop container ${id}`, () => this.docker.getContainer(id).stop({ t: timeoutS ?? this.options.stopTimeoutS ?? 10 }), [NOT_MODIFIED, NOT_FOUND]);
  }

  /** Stops it gracefully first, so an app being updated or removed can flush its data. */
  async removeContainer(id: string, timeoutS?: number): Promise<void> {
    await this.stopContainer(id, timeoutS);
    await this.call(`remove container ${id}`, () => this.docker.getContainer(id).remove({ force: true }), [NOT_FOUND]);
  }

  async renameContainer(id: string, name: string): Promise<void> {
    await this.call(`rename container ${id} to ${name}`, () => this.docker.getContainer(id).rename({ name }));
  }

  /** The engine's API socket on the host (for a service granted engine_socket). */
  get socketPath(): string | undefined {
    return (this.docker.modem as { socketPath?: string }).socketPath;
  }

  /**
   * Waits until the container is healthy (by its engine healthcheck) or has exited 0. The daemon
   * runs the healthcheck itself at the service's interval: Podman schedules checks through
   * systemd timers, which a device without systemd as the engine's parent does not have.
   * Rejects with what went wrong: exited, unhealthy (with the check's last output), or the time.
   */
  async waitForContainer(name: string, condition: 'service_healthy' | 'service_completed_successfully', timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const info = await this.call(`inspect container ${name}`, () => this.docker.getContainer(name).inspect());
      const state = info.State as Docker.ContainerInspectInfo['State'] & { Health?: { Status?: string; Log?: { ExitCode: number; Output: string }[] } };
      const exited = !state.Running && !['created', 'configured'].includes(state.Status);
      if (condition === 'service_completed_successfully') {
        if (exited) {
          if (state.ExitCode === 0) return;
          throw new Error(`exited with code ${state.ExitCode}${state.Error ? ` (${state.Error})` : ''}`);
        }
      } else {
        const check = info.Config.Healthcheck;
        if (!check?.Test?.length || check.Test[0] === 'NONE') throw new Error('has no healthcheck to wait for (service_healthy)');
        if (exited) throw new Error(`exited with code ${state.ExitCode} before it was healthy`);
        if (state.Health?.Status === 'healthy') return;
        if (state.Health?.Status === 'unhealthy') throw new Error(`is unhealthy: ${lastOutput(state.Health.Log)}`);
        if (state.Running) await this.runHealthcheck(name);
        const after = ((await this.call(`inspect container ${name}`, () => this.docker.getContainer(name).inspect())).State as typeof state).Health;
        if (after?.Status === 'healthy') return;
        if (after?.Status === 'unhealthy') throw new Error(`is unhealthy: ${lastOutput(after.Log)}`);
        if (Date.now() > deadline) throw new Error(`did not become healthy within ${Math.round(timeoutMs / 1000)} s: ${lastOutput(after?.Log)}`);
        await sleep(Math.min(Math.max((check.Interval ?? 0) / 1e6, 200), 30_000));
        continue;
      }
      if (Date.now() > deadline) throw new Error(`did not complete within ${Math.round(timeoutMs / 1000)} s`);
      await sleep(250);
    }
  }

  /** Runs the container's healthcheck once (Podman's own API); resolves with the engine's verdict. */
  async runHealthcheck(name: string): Promise<string | undefined> {
    const result = (await this.call(`healthcheck of ${name}`, () => this.libpod(`/libpod/containers/${encodeURIComponent(name)}/healthcheck`), [409])) as { Status?: string } | undefined;
    return result?.Status;
  }

  /**
   * An internal network has no gateway on the host (CNI leaves the bridge without an address),
   * so ports published from it lead nowhere. Giving the bridge its gateway address and letting
   * it route loopback traffic makes them work; the container still has no route out.
   */
  async prepareInternalNetwork(name: string): Promise<void> {
    const info = (await this.call(`inspect network ${name}`, () => this.libpod(`/libpod/networks/${encodeURIComponent(name)}/json`))) as {
      network_interface?: string;
      subnets?: { subnet: string; gateway?: string }[];
    };
    const bridge = info.network_interface;
    const subnet = info.subnets?.[0]?.subnet;
    if (!bridge || !subnet) return;
    const [base, prefix] = subnet.split('/');
    const octets = base!.split('.').map(Number);
    const gateway = `${octets.slice(0, 3).join('.')}.${octets[3]! + 1}/${prefix}`;
    const result = await runTool(this.options.ipTool ?? 'ip', ['address', 'replace', gateway, 'dev', bridge]);
    if (result.code !== 0) throw new EngineError(`give bridge ${bridge} its gateway`, new Error(stderrTail(result.stderr)));
    await writeFile(`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`, '1');
  }

  /**
   * A replaced container comes back on the same fixed address with a new MAC; until the host's
   * stale neighbour entry for it times out, the proxy's connections to the new one go nowhere
   * (seen: 5-9 s after each update). Forgetting the entry makes the host ask again at once.
   */
  async forgetNeighbour(address: string): Promise<void> {
    const result = await runTool(this.options.ipTool ?? 'ip', ['neigh', 'flush', 'to', address]);
    if (result.code !== 0) this.options.logger.debug('could not flush the neighbour entry', { address, err: stderrTail(result.stderr) });
  }

  /** The container's output, stdout and stderr merged. */
  async logs(name: string, options: LogOptions): Promise<Readable> {
    const container = this.docker.getContainer(name);
    const common = { stdout: true, stderr: true, timestamps: true, ...(options.tail === undefined ? {} : { tail: options.tail }) } as const;
    const out = new PassThrough();
    const attach = (raw: NodeJS.ReadableStream) => {
      // A client that went away, or goes away later, must not leave the engine's stream open.
      if (out.destroyed) return (raw as Readable).destroy?.();
      this.docker.modem.demuxStream(raw, out, out);
      raw.on('end', () => out.end());
      raw.on('error', (err) => out.destroy(err));
      out.on('close', () => (raw as Readable).destroy?.());
    };
    if (!options.follow) {
      attach(PassThrough.from([await this.call(`logs of ${name}`, () => container.logs({ ...common, follow: false }))]));
      return out;
    }
    // Podman answers a follow request only once the container writes something. Check the container
    // now (a missing one is a 404 here), then hand the stream back at once, so the response starts
    // and a proxy in between does not time out waiting for a silent app's first line.
    await this.call(`logs of ${name}`, () => container.inspect());
    this.call(`logs of ${name}`, () => container.logs({ ...common, follow: true })).then(attach, (err: Error) => out.destroy(err));
    return out;
  }

  async stats(name: string): Promise<ContainerStats> {
    const stats = await this.call(`stats of ${name}`, () => this.docker.getContainer(name).stats({ stream: false }));
    const cpuDelta = stats.cpu_stats.cpu_usage.total_usage - (stats.precpu_stats?.cpu_usage?.total_usage ?? 0);
    const systemDelta = stats.cpu_stats.system_cpu_usage - (stats.precpu_stats?.system_cpu_usage ?? 0);
    const cpus = stats.cpu_stats.online_cpus || stats.cpu_stats.cpu_usage.percpu_usage?.length || 1;
    const limit = stats.memory_stats.limit;
    return {
      cpuPercent: systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * cpus * 100 : 0,
      memoryBytes: stats.memory_stats.usage ?? 0,
      // Without a limit the engine reports the host's memory or a huge sentinel.
      memoryLimitBytes: limit && limit < Number.MAX_SAFE_INTEGER / 2 ? limit : undefined,
    };
  }

  /** Whether `file` runs in the container: a short exec of `file -c 'exit 0'` (127: not found). */
  async canRun(name: string, file: string): Promise<boolean> {
    const exec = await this.call(`exec in ${name}`, () => this.docker.getContainer(name).exec({ Cmd: [file, '-c', 'exit 0'], AttachStdout: true, AttachStderr: true }));
    const output = (await this.call(`exec in ${name}`, () => exec.start({ hijack: true, stdin: false }))) as Duplex;
    output.resume();
    await new Promise((resolve) => output.once('end', resolve).once('close', resolve).once('error', resolve));
    const info = await this.call(`inspect exec in ${name}`, () => exec.inspect());
    return info.ExitCode === 0;
  }

  /**
   * An interactive TTY session in a running container (the web terminal): the hijacked stream
   * carries raw terminal bytes both ways (a TTY exec is not multiplexed).
   */
  async openShell(name: string, shell: string, size: TerminalSize): Promise<ShellSession> {
    const exec = await this.call(`exec in ${name}`, () =>
      this.docker.getContainer(name).exec({ Cmd: [shell], Tty: true, AttachStdin: true, AttachStdout: true, AttachStderr: true, Env: ['TERM=xterm-256color'] }),
    );
    const stream = (await this.call(`exec in ${name}`, () => exec.start({ hijack: true, stdin: true, Tty: true }))) as Duplex;
    const resize = async ({ cols, rows }: TerminalSize) => {
      // dockerode's exec.resize wants a 200; Podman answers 201.
      await new Promise<void>((resolve, reject) =>
        this.docker.modem.dial(
          { path: `/exec/${exec.id}/resize?`, method: 'POST', statusCodes: { 200: true, 201: true, 404: 'no such exec session', 500: 'server error' }, options: { h: rows, w: cols } },
          (err) => (err ? reject(new EngineError(`resize terminal in ${name}`, err)) : resolve()),
        ),
      );
    };
    await resize(size);
    return {
      stream,
      resize,
      exitCode: async () => (await exec.inspect().catch(() => undefined))?.ExitCode ?? undefined,
      close: async () => {
        stream.destroy();
        // Dropping the attach leaves the shell running: hang it up as a closed terminal would.
        const info = await exec.inspect().catch(() => undefined);
        if (info?.Running && info.Pid) hangUp(info.Pid, this.options.logger);
      },
    };
  }

  private async imageInfo(image: string): Promise<Docker.ImageInspectInfo | undefined> {
    try {
      return await this.docker.getImage(image).inspect();
    } catch (err) {
      if (statusOf(err) === NOT_FOUND) return undefined;
      throw new EngineError(`inspect image ${image}`, err);
    }
  }

  /** Podman's own API, for what the Docker-compatible one does not tell (the bridge's name). */
  private libpod(path: string): Promise<unknown> {
    return new Promise((resolve, reject) =>
      this.docker.modem.dial({ path: `/v4.0.0${path}`, method: 'GET', statusCodes: { 200: true, 404: 'not found', 409: 'conflict', 500: 'server error' } }, (err, data) =>
        err ? reject(err) : resolve(data),
      ),
    );
  }

  /** Runs an engine call; the listed HTTP statuses mean "already so" and are not errors. */
  private async call<T>(operation: string, run: () => Promise<T>, harmless: number[] = []): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (harmless.includes(statusOf(err) ?? 0)) return undefined as T;
      this.options.logger.debug('engine call failed', { operation, err });
      throw new EngineError(operation, err);
    }
  }
}

/**
 * SIGHUP to the shell (a host process: the daemon and Podman share the host's PID namespace) and
 * to its terminal's foreground process group, read from /proc/<pid>/stat (field 8, tpgid).
 */
function hangUp(pid: number, logger: Logger): void {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const foreground = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[5]);
    if (foreground > 0 && foreground !== pid) process.kill(-foreground, 'SIGHUP');
    process.kill(pid, 'SIGHUP');
  } catch (err) {
    logger.debug('could not hang up a terminal shell', { pid, err });
  }
}

/** repo@sha256:... of the image as the registry knows it, when it came from one. */
function digestOf(info: Docker.ImageInspectInfo, ref: string): { digest?: string } {
  const repo = ref.replace(/@.*$/, '').replace(/:[^/:]+$/, '');
  const digest = (info.RepoDigests ?? []).find((candidate) => candidate.startsWith(`${repo}@`)) ?? (ref.includes('@sha256:') ? ref : undefined);
  return digest ? { digest } : {};
}

function lastOutput(log: { ExitCode: number; Output: string }[] | undefined): string {
  const last = log?.at(-1);
  if (!last) return 'no check has run yet';
  return `exit code ${last.ExitCode}${last.Output.trim() ? `, ${last.Output.trim().slice(-200)}` : ''}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

/** The engine reports "0001-01-01T00:00:00Z" for never. */
function validTime(value: string | undefined): string | undefined {
  return value && !value.startsWith('0001-') ? value : undefined;
}
