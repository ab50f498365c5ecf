// Start cost of one service bundle, started alone as the tests start it (ServiceProcess: a
// notification socket like systemd's, the image's Node flags): the time from spawn to READY=1, the
// CPU the process spent until then (what the guest's TCG multiplies), and the resident memory
// 1 s after READY. Runs each service `runs` times one after another and prints the medians, so a
// change to start-up can be measured before and after on the same (possibly loaded) machine.
//   tsx bench/footprint-start.ts [runs=5] [services=proxy,daemon]   (FOOTPRINT_PREBUILT=1: no build first)
// The proxy runs with a certificate folder its first run filled (the device's steady state: the
// local CA and device certificate on disk); the daemon with a fresh state folder (locked, not set up).
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { bundleServices, BUNDLE_DIR } from '../image/bundle.js';
import { InternalApi } from '../services/daemon/internal/internal-api.js';
import { InMemoryRouteSource } from '../services/daemon/internal/memory-route-source.js';
import { createLogger } from '../services/common/logger.js';
import { cpuMs, procMemory } from './footprint-proc.js';
import { ServiceProcess } from '../test/support/processes.js';

export interface StartSample {
  readyMs: number;
  /** User + system CPU of the service until READY. */
  cpuMs: number;
  rssMiB: number;
  pssMiB: number;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function startOnce(service: 'proxy' | 'daemon', dir: string): Promise<StartSample> {
  const env: Record<string, string> =
    service === 'proxy'
      ? {
          PICCOLO_PROXY_LISTEN: '127.0.0.1:0',
          PICCOLO_PROXY_BIND_HOST: '127.0.0.1',
          PICCOLO_PROXY_DAEMON_SOCKET: path.join(dir, 'internal.sock'),
          PICCOLO_PROXY_CERT_DIR: path.join(dir, 'certs'),
          PICCOLO_HEALTH_SOCKET: path.join(dir, 'no-health.sock'),
        }
      : {
          PICCOLO_HEALTH_SOCKET: path.join(dir, 'no-health.sock'),
          PICCOLO_DAEMON_LISTEN: '127.0.0.1:0',
          PICCOLO_STATE_DIR: mkdtempSync(path.join(dir, 'state-')),
          PICCOLO_TPM_TCTI: 'none',
          PICCOLO_CONSOLE: 'none',
          PICCOLO_DAEMON_INTERNAL_SOCKET: path.join(dir, 'daemon-internal.sock'),
        };
  // FOOTPRINT_NODE_OPTIONS: Node flags to try (e.g. --max-semi-space-size=2), measured against none.
  if (process.env.FOOTPRINT_NODE_OPTIONS) env.NODE_OPTIONS = process.env.FOOTPRINT_NODE_OPTIONS;
  const spawnedAt = Date.now();
  const proc = await ServiceProcess.start(service, env, BUNDLE_DIR);
  const ready = await proc.notified('READY=1', 60_000);
  const readyMs = ready.t * 1000 - spawnedAt;
  const cpu = cpuMs(proc.pid);
  await sleep(1000);
  const memory = procMemory(proc.pid)!;
  await proc.kill('SIGTERM');
  return { readyMs, cpuMs: cpu, rssMiB: memory.rss, pssMiB: memory.pss };
}

/** The daemon's internal API on dir/internal.sock while fn runs: the proxy's route long-poll needs an answer. */
async function withInternalApi<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const api = new InternalApi({ socketPath: path.join(dir, 'internal.sock'), routes: new InMemoryRouteSource(), sessions: { check: async () => ({ valid: false }) }, challenges: { get: () => undefined }, logger: createLogger({ service: 'bench', level: 'error' }), longPollMs: 2000 });
  await api.start();
  try {
    return await fn();
  } finally {
    await api.stop();
  }
}

export async function measureStart(service: 'proxy' | 'daemon', runs: number): Promise<StartSample[]> {
  const dir = mkdtempSync(path.join(tmpdir(), `piccolo-start-${service}-`));
  const runAll = async () => {
    // The first proxy run creates the CA and device certificate; it is not counted.
    if (service === 'proxy') await startOnce(service, dir);
    const samples: StartSample[] = [];
    for (let i = 0; i < runs; i++) samples.push(await startOnce(service, dir));
    return samples;
  };
  try {
    return service === 'proxy' ? await withInternalApi(dir, runAll) : await runAll();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const runs = Number(process.argv[2] ?? 5);
  const services = (process.argv[3] ?? 'proxy,daemon').split(',') as ('proxy' | 'daemon')[];
  // FOOTPRINT_PREBUILT=1: measure the bundles already in PICCOLO_BUNDLE_DIR (a build from before a change).
  if (process.env.FOOTPRINT_PREBUILT !== '1') await bundleServices();
  console.log(`load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  for (const service of services) {
    const samples = await measureStart(service, runs);
    console.log(
      `${service}: READY median ${median(samples.map((s) => s.readyMs)).toFixed(0)} ms, CPU to READY ${median(samples.map((s) => s.cpuMs))} ms, RSS median ${median(samples.map((s) => s.rssMiB)).toFixed(1)} MiB, PSS ${median(samples.map((s) => s.pssMiB)).toFixed(1)} ` +
        `(runs: ${samples.map((s) => `${s.readyMs.toFixed(0)} ms/${s.cpuMs} ms CPU/${s.rssMiB.toFixed(1)} MiB`).join(', ')})`,
    );
  }
  console.log(`load average at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}
