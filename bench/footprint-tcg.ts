// Each service bundle started under TCG, the CPU emulator the guest runs on: qemu-user's
// qemu-x86_64-static runs the same translator without the rest of a machine (no emulated disk, no
// boot around it), so it measures what B1 (health unit start -> ready <= 4 s in the guest) owes to
// the service's own start: the time from spawn to its "ready" log line (logged once READY is sent)
// and the CPU the emulated process spent. With the image's Node flags and environment; no health service, no
// daemon for the proxy and tunnel (they start without one). The runs of a service share one state
// folder, as a device's restarts do: the first is a first boot (the proxy makes its CA and device
// certificate then), the others are later starts. Skipped where qemu-user is missing.
//   tsx bench/footprint-tcg.ts [restarts=3] [services=daemon,proxy,tunnel,health]   (FOOTPRINT_PREBUILT=1: no build first)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { BUNDLE_DIR, SERVICES, bundlePath, bundleServices, type ServiceName } from '../image/bundle.js';
import { SERVICE_ENVIRONMENT, serviceCommand } from '../image/node-flags.js';
import { cpuMs } from './footprint-proc.js';

const QEMU_USER = 'qemu-x86_64-static';
const READY_TIMEOUT_MS = 120_000;

export interface TcgStartSample {
  readyMs: number;
  cpuMs: number;
}

export const tcgAvailable = () => process.arch === 'x64' && spawnSync(QEMU_USER, ['--version']).status === 0;

/** The service's own sockets, listeners and state under dir, on loopback ports of its choosing. */
function serviceEnv(service: ServiceName, dir: string): Record<string, string> {
  const common = { PATH: process.env.PATH!, PICCOLO_HEALTH_SOCKET: path.join(dir, 'no-health.sock'), PICCOLO_CONFIG_FILE: path.join(dir, 'none.json') };
  const own: Record<ServiceName, Record<string, string>> = {
    health: { PICCOLO_HEALTH_LISTEN: '127.0.0.1:0' },
    tunnel: { PICCOLO_TUNNEL_LISTEN: '127.0.0.1:0', PICCOLO_TUNNEL_DAEMON_SOCKET: path.join(dir, 'internal.sock') },
    proxy: {
      PICCOLO_PROXY_LISTEN: '127.0.0.1:0',
      PICCOLO_PROXY_BIND_HOST: '127.0.0.1',
      PICCOLO_PROXY_DAEMON_SOCKET: path.join(dir, 'internal.sock'),
      PICCOLO_PROXY_CERT_DIR: path.join(dir, 'certs'),
      PICCOLO_PROXY_TUNNEL_TLS_SOCKET: path.join(dir, 'tunnel-tls.sock'),
      PICCOLO_PROXY_TUNNEL_HTTP_SOCKET: path.join(dir, 'tunnel-http.sock'),
    },
    daemon: {
      PICCOLO_DAEMON_LISTEN: '127.0.0.1:0',
      PICCOLO_STATE_DIR: path.join(dir, 'state'),
      PICCOLO_TPM_TCTI: 'none',
      PICCOLO_CONSOLE: 'none',
      PICCOLO_MDNS: 'false',
      PICCOLO_DAEMON_INTERNAL_SOCKET: path.join(dir, 'daemon-internal.sock'),
      PICCOLO_DAEMON_PORTAL_SOCKET: path.join(dir, 'portal.sock'),
    },
  };
  return { ...common, ...own[service], ...SERVICE_ENVIRONMENT[service] };
}

async function startOnce(service: ServiceName, dir: string): Promise<TcgStartSample> {
  const [node, ...args] = serviceCommand(service, process.execPath, bundlePath(service, BUNDLE_DIR));
  const spawnedAt = performance.now();
  const child = spawn(QEMU_USER, [node!, ...args], { env: serviceEnv(service, dir), stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const lines = createInterface({ input: child.stdout! });
    const readyMs = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${service} under ${QEMU_USER}: no "ready" within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      child.on('exit', (code) => reject(new Error(`${service} under ${QEMU_USER} exited (${code}) before "ready"`)));
      lines.on('line', (line) => {
        if (!line.includes('"msg":"ready"')) return;
        clearTimeout(timer);
        resolve(performance.now() - spawnedAt);
      });
    });
    return { readyMs: Math.round(readyMs), cpuMs: cpuMs(child.pid!) };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once('exit', resolve)));
  }
}

/** 1 + restarts starts of one service under TCG, one after another, on one state folder. */
export async function measureTcgStart(service: ServiceName, restarts: number): Promise<{ first: TcgStartSample; restarts: TcgStartSample[] }> {
  const dir = mkdtempSync(path.join(tmpdir(), `piccolo-tcg-${service}-`));
  try {
    const first = await startOnce(service, dir);
    const later: TcgStartSample[] = [];
    for (let i = 0; i < restarts; i++) later.push(await startOnce(service, dir));
    return { first, restarts: later };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const show = (s: TcgStartSample) => `ready ${s.readyMs} ms / CPU ${s.cpuMs} ms`;

if (import.meta.url === `file://${process.argv[1]}`) {
  const restarts = Number(process.argv[2] ?? 3);
  const services = (process.argv[3]?.split(',') ?? SERVICES) as ServiceName[];
  if (!tcgAvailable()) throw new Error(`${QEMU_USER} is not installed (Debian's qemu-user-static)`);
  if (process.env.FOOTPRINT_PREBUILT !== '1') await bundleServices();
  for (const service of services) {
    const { first, restarts: later } = await measureTcgStart(service, restarts);
    console.log(`${service} under TCG: first start ${show(first)}; later starts ${later.map(show).join(', ')}`);
  }
}
