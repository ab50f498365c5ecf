// The tunnels the tunnel bench compares: each starts its two ends on loopback, pinned to the
// tunnel core, forwarding one local port per target (iperf3, blaster, echo), and says which
// processes are its entrance (where the end user connects) and its exit (beside the targets).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../image/bundle.js';
import { freePort } from '../image/qemu.js';

export type Target = 'iperf' | 'blaster' | 'echo';
export const TARGETS: Target[] = ['iperf', 'blaster', 'echo'];

export interface BenchContext {
  dir: string;
  /** The core every tunnel process runs on. */
  core: string;
  /** The core of iperf3, the targets and the harness. */
  clientCore: string;
  targets: Record<Target, number>;
  tls: { keyFile: string; certFile: string; caFile: string };
  log: (line: string) => void;
}

export interface RunningPeer {
  name: string;
  /** Where the end user connects, per target. */
  entrances: Record<Target, number>;
  /** What a user sends first to name its target, where the tunnel routes by name. */
  preface?: Partial<Record<Target, Buffer>>;
  /** Collects garbage in the processes before memory is read, and says their JS heap (KiB); ours only. */
  settle?(): Promise<{ entranceHeapKb: number; exitHeapKb: number }>;
  /** Process trees at the user's side and at the targets' side (for memory counts). */
  entrancePids: number[];
  exitPids: number[];
  stop(): Promise<void>;
}

export interface Peer {
  name: string;
  /** What the tunnel is, for the results. */
  describe: string;
  /** Idle streams it can hold within the fd limit (default T5_STREAMS). */
  idleStreams?: number;
  /** A reason when it cannot run here (printed, never silent), else undefined. */
  unavailable(ctx: BenchContext): string | undefined;
  start(ctx: BenchContext): Promise<RunningPeer>;
}

export class ProcessGroup {
  readonly children: ChildProcess[] = [];

  constructor(private readonly ctx: BenchContext) {}

  /** Starts a command on the tunnel core (unless told otherwise); its stderr goes to a log file in the bench dir. */
  pinned(label: string, command: string, args: string[], options: { env?: NodeJS.ProcessEnv; core?: string; ipc?: boolean } = {}): ChildProcess {
    const log = path.join(this.ctx.dir, `${label}.log`);
    writeFileSync(log, '');
    const child = spawn('taskset', ['-c', options.core ?? this.ctx.core, command, ...args], { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe', ...(options.ipc ? ['ipc' as const] : [])], cwd: REPO_ROOT });
    child.stdout!.resume();
    child.stderr!.on('data', (chunk: Buffer) => writeFileSync(log, chunk, { flag: 'a' }));
    this.children.push(child);
    return child;
  }

  async stop(): Promise<void> {
    await Promise.all(this.children.map((child) => stopChild(child)));
  }
}

export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

export async function waitPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => (socket.destroy(), resolve(true)));
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`port ${port} never opened`);
}

async function portsFor(): Promise<Record<Target, number>> {
  return { iperf: await freePort(), blaster: await freePort(), echo: await freePort() };
}

// --- OpenSSH: ssh -L, one connection carrying every forward (as people use it), defaults otherwise.
export const sshPeer: Peer = {
  name: 'ssh',
  describe: 'OpenSSH ssh -L to a throwaway sshd (default ciphers, one connection for all forwards)',
  unavailable: () => (existsSync('/usr/sbin/sshd') && existsSync('/usr/bin/ssh') ? undefined : 'openssh-server/openssh-client not installed'),
  async start(ctx) {
    const dir = path.join(ctx.dir, 'ssh');
    mkdirSync(dir, { recursive: true });
    mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege separation directory
    for (const key of ['host', 'user']) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, key)]);
    writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(path.join(dir, 'user.pub')), { mode: 0o600 });
    const port = await freePort();
    const config = path.join(dir, 'sshd_config');
    writeFileSync(config, [`Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${dir}/host`, `PidFile ${dir}/sshd.pid`, `AuthorizedKeysFile ${dir}/authorized_keys`, 'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no', 'AllowTcpForwarding yes', 'MaxStartups 100', ''].join('\n'));
    const group = new ProcessGroup(ctx);
    const sshd = group.pinned('sshd', '/usr/sbin/sshd', ['-D', '-e', '-f', config]);
    await waitPort(port);
    const entrances = await portsFor();
    const forwards = TARGETS.flatMap((target) => ['-L', `127.0.0.1:${entrances[target]}:127.0.0.1:${ctx.targets[target]}`]);
    const ssh = group.pinned('ssh', 'ssh', ['-N', '-F', '/dev/null', '-i', `${dir}/user`, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ExitOnForwardFailure=yes', '-p', String(port), ...forwards, 'root@127.0.0.1']);
    await Promise.all(Object.values(entrances).map((p) => waitPort(p)));
    return { name: 'ssh', entrances, entrancePids: [ssh.pid!], exitPids: [sshd.pid!], stop: () => group.stop() };
  },
};

// --- shadowsocks-libev ss-tunnel with v2ray-plugin over wss (TLS on loopback); one ss-tunnel per
// target since ss-tunnel forwards to one destination. aes-128-gcm: the fastest cipher here (AES-NI).
const SS_CIPHER = 'aes-128-gcm';
export const v2rayPeer: Peer = {
  name: 'v2ray',
  describe: `ss-tunnel + v2ray-plugin (websocket over TLS) to ss-server + v2ray-plugin, ${SS_CIPHER}`,
  // ss-tunnel and its plugin each hold two sockets per stream (one websocket per stream, mux=1):
  // 10,000 streams would pass the 20,000 fd limit.
  idleStreams: 2000,
  unavailable: () => (['/usr/bin/ss-server', '/usr/bin/ss-tunnel', '/usr/bin/ss-v2ray-plugin'].every((file) => existsSync(file)) ? undefined : 'shadowsocks-libev or shadowsocks-v2ray-plugin not installed'),
  async start(ctx) {
    const group = new ProcessGroup(ctx);
    const port = await freePort();
    const password = 'bench-' + Math.random().toString(36).slice(2);
    const common = ['-k', password, '-m', SS_CIPHER, '-n', '20000', '--plugin', 'ss-v2ray-plugin'];
    const server = group.pinned('ss-server', 'ss-server', ['-s', '127.0.0.1', '-p', String(port), ...common, '--plugin-opts', `server;tls;host=localhost;cert=${ctx.tls.certFile};key=${ctx.tls.keyFile};loglevel=error`]);
    await waitPort(port);
    const entrances = await portsFor();
    const tunnels = TARGETS.map((target) =>
      group.pinned(`ss-tunnel-${target}`, 'ss-tunnel', ['-s', '127.0.0.1', '-p', String(port), '-b', '127.0.0.1', '-l', String(entrances[target]), '-L', `127.0.0.1:${ctx.targets[target]}`, ...common, '--plugin-opts', `tls;host=localhost;cert=${ctx.tls.caFile};loglevel=error`]),
    );
    await Promise.all(Object.values(entrances).map((p) => waitPort(p)));
    return { name: 'v2ray', entrances, entrancePids: tunnels.map((tunnel) => tunnel.pid!), exitPids: [server.pid!], stop: () => group.stop() };
  },
};

// --- Go peers that the Go module proxy may refuse (it does for chisel here): installed at run time.
export function goBinary(name: string, module: string, log: (line: string) => void): { file?: string; reason?: string } {
  const goPath = [process.env.PATH, '/usr/local/go/bin'].join(':');
  const gobin = path.join(os.homedir(), 'go', 'bin');
  const file = path.join(gobin, name);
  if (existsSync(file)) return { file };
  let go: string;
  try {
    go = execFileSync('sh', ['-c', 'command -v go'], { encoding: 'utf8', env: { ...process.env, PATH: goPath } }).trim();
  } catch {
    return { reason: 'Go is not installed (needs Go >= 1.24 to build it)' };
  }
  log(`installing ${module} with ${go} ...`);
  try {
    execFileSync(go, ['install', module], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 180_000, env: { ...process.env, PATH: goPath, GOBIN: gobin } });
  } catch (error) {
    const text = String((error as { stderr?: string }).stderr || (error as Error).message);
    // Go repeats the module path before the cause: keep the cause (e.g. the proxy's 403 and its reason).
    const cause = /\d{3} [^\n]*(\n\s*server response: [^\n]*)?/.exec(text)?.[0] ?? text.trim().split('\n').at(-1)!;
    return { reason: `go install ${module} failed: ${cause.replace(/\s+/g, ' ').trim()}` };
  }
  return existsSync(file) ? { file } : { reason: `go install ${module} produced no ${file}` };
}

const CHISEL_MODULE = 'github.com/jpillora/chisel@latest';
let chisel: { file?: string; reason?: string } | undefined;
export const chiselPeer: Peer = {
  name: 'chisel',
  describe: 'chisel client to chisel server over wss (TLS on loopback)',
  unavailable(ctx) {
    chisel ??= goBinary('chisel', CHISEL_MODULE, ctx.log);
    return chisel.reason;
  },
  async start(ctx) {
    const group = new ProcessGroup(ctx);
    const port = await freePort();
    const server = group.pinned('chisel-server', chisel!.file!, ['server', '--host', '127.0.0.1', '--port', String(port), '--tls-key', ctx.tls.keyFile, '--tls-cert', ctx.tls.certFile]);
    await waitPort(port);
    const entrances = await portsFor();
    const remotes = TARGETS.map((target) => `127.0.0.1:${entrances[target]}:127.0.0.1:${ctx.targets[target]}`);
    const client = group.pinned('chisel-client', chisel!.file!, ['client', '--tls-ca', ctx.tls.caFile, `https://localhost:${port}`, ...remotes]);
    await Promise.all(Object.values(entrances).map((p) => waitPort(p)));
    return { name: 'chisel', entrances, entrancePids: [client.pid!], exitPids: [server.pid!], stop: () => group.stop() };
  },
};

/** A process and all its descendants (sshd forks a child per connection, ss-tunnel its plugin). */
export function processTree(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      (parents.get(ppid) ?? parents.set(ppid, []).get(ppid)!).push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(parents.get(tree[i]!) ?? []));
  return tree;
}

/** Resident memory of a process tree, in KiB (taskset has exec'd into the command, same pid). */
export function treeRssKb(pids: number[]): number {
  let total = 0;
  for (const member of pids.flatMap(processTree)) {
    try {
      total += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${member}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}
