// Runs the real service bundles as child processes for integration tests, each with its own
// systemd notification socket (test/support/notify-receiver.py) and captured JSON logs.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TEST_BUNDLE_DIR, bundlePath, type ServiceName } from '../../image/bundle.js';
import { SERVICE_ENVIRONMENT, serviceCommand } from '../../image/node-flags.js';

const RECEIVER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'notify-receiver.py');

export interface NotifyMessage {
  t: number;
  message: string;
}

export class ServiceProcess {
  readonly logs: Record<string, unknown>[] = [];
  readonly notifications: NotifyMessage[] = [];
  readonly exited: Promise<number | null>;

  private constructor(
    readonly service: ServiceName,
    receiverLines: Interface,
    receiver: ChildProcess,
    private readonly child: ChildProcess,
    dir: string,
  ) {
    receiverLines.on('line', (line) => {
      const parsed = JSON.parse(line);
      if (parsed.message !== undefined) this.notifications.push(parsed);
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        this.logs.push(JSON.parse(line));
      } catch {
        this.logs.push({ msg: line, unparsed: true });
      }
    });
    this.exited = new Promise((resolve) =>
      child.on('exit', (code) => {
        receiver.kill();
        rmSync(dir, { recursive: true, force: true });
        resolve(code);
      }),
    );
  }

  /**
   * Starts the bundle once its notification socket is bound, as systemd would; in the network
   * namespace `netns` when given (`ip netns exec` execs the bundle, so signals reach it).
   * A variable given as undefined is left unset, so the service falls back to its default.
   */
  static async start(service: ServiceName, env: Record<string, string | undefined>, bundleDir?: string, options: { netns?: string } = {}): Promise<ServiceProcess> {
    const dir = mkdtempSync(path.join(tmpdir(), `piccolo-${service}-`));
    const notifySocket = path.join(dir, 'notify.sock');
    const receiver = spawn('python3', [RECEIVER, notifySocket], { stdio: ['ignore', 'pipe', 'inherit'] });
    const receiverLines = createInterface({ input: receiver.stdout! });
    await new Promise((resolve) => receiverLines.once('line', resolve));
    // The image's Node flags and environment, so a test runs the service as its unit does.
    const command = serviceCommand(service, process.execPath, bundlePath(service, bundleDir));
    if (options.netns) command.unshift('ip', 'netns', 'exec', options.netns);
    const child = spawn(command[0]!, command.slice(1), {
      env: {
        PATH: process.env.PATH!,
        NOTIFY_SOCKET: notifySocket,
        PICCOLO_CONFIG_FILE: path.join(dir, 'none.json'),
        // Each daemon its own internal socket: a second one would take over a shared path.
        PICCOLO_DAEMON_INTERNAL_SOCKET: path.join(dir, 'internal.sock'),
        // The same for the daemon's portal socket and the proxy's tunnel ingress.
        PICCOLO_DAEMON_PORTAL_SOCKET: path.join(dir, 'portal.sock'),
        PICCOLO_PROXY_TUNNEL_TLS_SOCKET: path.join(dir, 'tunnel-tls.sock'),
        PICCOLO_PROXY_TUNNEL_HTTP_SOCKET: path.join(dir, 'tunnel-http.sock'),
        ...SERVICE_ENVIRONMENT[service],
        ...env,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    return new ServiceProcess(service, receiverLines, receiver, child, dir);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves with the first notification containing text, or rejects after timeoutMs. */
  notified(text: string, timeoutMs = 10_000): Promise<NotifyMessage> {
    return waitFor(() => this.notifications.find((n) => n.message.includes(text)), timeoutMs, `${this.service}: no "${text}" notification`);
  }

  /** The address a listener bound (services log it), e.g. "127.0.0.1:43121". */
  async address(listener: string, timeoutMs = 10_000): Promise<string> {
    const entry = await waitFor(() => this.logs.find((l) => l.msg === 'listening' && l.listener === listener), timeoutMs, `${this.service}: ${listener} not listening`);
    return entry.address as string;
  }

  /**
   * Sends the signal and resolves with the exit code. A service still there 20 s after a SIGTERM
   * (systemd would wait 90 s, then kill it) is a fault: it is killed, and the call throws.
   */
  async kill(signal: NodeJS.Signals = 'SIGTERM', stopTimeoutMs = 20_000): Promise<number | null> {
    this.child.kill(signal);
    if (signal === 'SIGKILL') return this.exited;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), stopTimeoutMs)));
    const outcome = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    if (outcome !== 'late') return outcome;
    this.child.kill('SIGKILL');
    await this.exited;
    throw new Error(`${this.service} did not exit within ${stopTimeoutMs / 1000} s of ${signal}; killed`);
  }
}

export async function waitFor<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

/**
 * The daemon's test build with its state in stateDir: no TPM, no system console, and no health
 * service unless env names one. Resolves once it is READY, with its HTTP base URL.
 */
export async function startTestDaemon(stateDir: string, env: Record<string, string> = {}): Promise<{ proc: ServiceProcess; api: string }> {
  const proc = await ServiceProcess.start(
    'daemon',
    {
      PICCOLO_HEALTH_SOCKET: path.join(stateDir, '..', 'no-health.sock'),
      PICCOLO_DAEMON_LISTEN: '127.0.0.1:0',
      PICCOLO_STATE_DIR: stateDir,
      PICCOLO_TPM_TCTI: 'none',
      PICCOLO_CONSOLE: 'none',
      ...env,
    },
    TEST_BUNDLE_DIR,
  );
  await proc.notified('READY=1', 20_000);
  return { proc, api: `http://${await proc.address('http')}` };
}

/** Every mount point under dir, deepest (latest) first. */
export function mountsUnder(dir: string): string[] {
  const mountpoints = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((line) => line.split(' ')[4]);
  return mountpoints.filter((mountpoint): mountpoint is string => !!mountpoint && (mountpoint === dir || mountpoint.startsWith(`${dir}/`))).reverse();
}

/** Detaches every FUSE mount left under dir (lazily: a dead or busy one too); resolves with them. */
export function unmountAllUnder(dir: string): string[] {
  const found = mountsUnder(dir);
  for (const mountpoint of found) execFileSync('fusermount', ['-u', '-z', mountpoint]);
  return found;
}

/** Volumes outlive the daemon by design: a test unmounts every FUSE mount it left under dir, then removes dir. */
export function removeTestDir(dir: string): void {
  unmountAllUnder(dir);
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The proxy bundle in front of a test daemon (its internal socket), on loopback: the portal on a
 * portal listener at a random port (no PICCOLO_PROXY_LOGIN_URL, as in `make run`), apps on their
 * public ports. Resolves once it is READY, with the portal's base URL through it.
 */
export async function startTestProxy(daemonInternalSocket: string, dir: string, env: Record<string, string> = {}): Promise<{ proc: ServiceProcess; portal: string }> {
  const proc = await ServiceProcess.start(
    'proxy',
    {
      PICCOLO_PROXY_LISTEN: '127.0.0.1:0',
      PICCOLO_PROXY_BIND_HOST: '127.0.0.1',
      PICCOLO_PROXY_DAEMON_SOCKET: daemonInternalSocket,
      PICCOLO_PROXY_CERT_DIR: path.join(dir, 'proxy-certs'),
      PICCOLO_HEALTH_SOCKET: path.join(dir, 'no-health.sock'),
      ...env,
    },
    TEST_BUNDLE_DIR,
  );
  await proc.notified('READY=1', 20_000);
  return { proc, portal: `http://127.0.0.1:${(await proc.address('listener-0')).split(':').pop()}` };
}
