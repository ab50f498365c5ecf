// Footprint: the four service bundles started as `make run` starts them (scripts/run-dev.ts, with
// its Podman service and loopback registry, on free loopback ports and a state folder of its own),
// each service's resident memory after IDLE_S seconds idle, and again at the end of LOAD_S seconds
// of light load through the proxy (the setup wizard's page and API, and the health service). Then
// each service's start alone (bench/footprint-start.ts): time to READY and RSS after it.
// Writes bench/results/footprint-<date>.json and .md with a goals map, as bench/proxy.ts does.
// Memory figures are meaningful on a loaded machine (the load average is recorded); times less so.
//   FOOTPRINT_IDLE_S (30), FOOTPRINT_LOAD_S (20), FOOTPRINT_START_RUNS (3; 0 skips), FOOTPRINT_NO_WRITE=1 (smoke run)
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { bundleServices, BUNDLE_DIR, REPO_ROOT, SERVICES, bundlePath, type ServiceName } from '../image/bundle.js';
import { resultsDir } from './results-dir.js';
import { freePort } from '../test/support/proxy-harness.js';
import { measureStart } from './footprint-start.js';

const IDLE_S = Number(process.env.FOOTPRINT_IDLE_S ?? 30);
const LOAD_S = Number(process.env.FOOTPRINT_LOAD_S ?? 20);
const START_RUNS = Number(process.env.FOOTPRINT_START_RUNS ?? 3);
/** Light load: this many clients, each one request at a time, with a pause between requests. */
const LOAD_CLIENTS = 4;
const LOAD_PAUSE_MS = 20;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;

/** VmRSS of a process in KiB, or undefined once it is gone. */
function rssKiB(pid: number): number | undefined {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  } catch {
    return undefined;
  }
}

/** Each service's process among root's descendants, found by its bundle path on the command line. */
function servicePids(root: number): Map<ServiceName, number> {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const ppid = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // exited meanwhile
    }
  }
  const found = new Map<ServiceName, number>();
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift()!;
    for (const child of children.get(pid) ?? []) {
      queue.push(child);
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${child}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      for (const service of SERVICES) if (cmdline.includes(bundlePath(service))) found.set(service, child);
    }
  }
  return found;
}

function snapshot(pids: Map<ServiceName, number>): Record<string, number> {
  const rss: Record<string, number> = {};
  for (const service of SERVICES) {
    const kib = rssKiB(pids.get(service)!);
    if (kib === undefined) throw new Error(`${service} exited during the bench`);
    rss[service] = mib(kib);
  }
  rss.total = Math.round(SERVICES.reduce((sum, service) => sum + rss[service]!, 0) * 10) / 10;
  return rss;
}

async function lightLoad(urls: string[], seconds: number): Promise<{ requests: number; failures: number }> {
  const until = Date.now() + seconds * 1000;
  let requests = 0;
  let failures = 0;
  await Promise.all(
    Array.from({ length: LOAD_CLIENTS }, async (_, client) => {
      for (let i = client; Date.now() < until; i++) {
        try {
          const res = await fetch(urls[i % urls.length]!);
          await res.arrayBuffer();
          requests++;
          if (res.status >= 500) failures++;
        } catch {
          failures++;
        }
        await sleep(LOAD_PAUSE_MS);
      }
    }),
  );
  return { requests, failures };
}

async function waitForPortal(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const status = await fetch(url).then((res) => res.status, () => 0);
    if (status === 200) return;
    await sleep(250);
  }
  throw new Error(`the portal at ${url} did not answer 200 within ${timeoutMs} ms`);
}

const loadAtStart = os.loadavg();
await bundleServices();
const devDir = mkdtempSync(path.join(os.tmpdir(), 'piccolo-footprint-'));
const ports = { daemon: await freePort(), proxy: await freePort(), health: await freePort(), tunnel: await freePort(), registry: await freePort() };
const proxyUrl = `http://127.0.0.1:${ports.proxy}`;
const healthUrl = `http://127.0.0.1:${ports.health}`;
// `make run` itself, on ports and a folder of its own so it runs beside another `make run`.
const run = spawn(path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), [path.join(REPO_ROOT, 'scripts', 'run-dev.ts')], {
  env: {
    ...process.env,
    PICCOLO_DEV_DIR: devDir,
    PICCOLO_BUNDLE_DIR: BUNDLE_DIR,
    PICCOLO_DEV_REGISTRY_PORT: String(ports.registry),
    PICCOLO_DAEMON_LISTEN: `127.0.0.1:${ports.daemon}`,
    PICCOLO_PROXY_LISTEN: `127.0.0.1:${ports.proxy}`,
    PICCOLO_HEALTH_LISTEN: `127.0.0.1:${ports.health}`,
    PICCOLO_TUNNEL_LISTEN: `127.0.0.1:${ports.tunnel}`,
  },
  stdio: ['ignore', 'ignore', 'pipe'],
});
let runErrors = '';
run.stderr!.on('data', (data: Buffer) => (runErrors = (runErrors + data.toString()).slice(-4000)));
const exited = new Promise<void>((resolve) => run.on('exit', () => resolve()));

let idle: Record<string, number>;
let loaded: Record<string, number>;
let load: { requests: number; failures: number };
try {
  await waitForPortal(`${proxyUrl}/`, 120_000).catch((err) => {
    throw new Error(`${(err as Error).message}\n${runErrors}`);
  });
  const pids = servicePids(run.pid!);
  if (pids.size !== SERVICES.length) throw new Error(`found ${[...pids.keys()].join(', ')} of ${SERVICES.join(', ')} under make run`);
  console.log(`all four up; idle for ${IDLE_S} s`);
  await sleep(IDLE_S * 1000);
  idle = snapshot(pids);
  console.log('idle RSS MiB', idle);
  load = await lightLoad([`${proxyUrl}/`, `${proxyUrl}/api/v1/setup/status`, `${healthUrl}/health/ready`], LOAD_S);
  loaded = snapshot(pids);
  console.log(`RSS MiB after ${LOAD_S} s of light load (${load.requests} requests, ${load.failures} failed)`, loaded);
} finally {
  run.kill('SIGTERM');
  await Promise.race([exited, sleep(120_000)]);
  rmSync(devDir, { recursive: true, force: true });
}

const start: Record<string, { readyMs: number; rssMiB: number; samples: { readyMs: number; rssMiB: number }[] }> = {};
for (const service of START_RUNS > 0 ? (['proxy', 'daemon'] as const) : []) {
  const samples = await measureStart(service, START_RUNS);
  start[service] = { readyMs: Math.round(median(samples.map((s) => s.readyMs))), rssMiB: median(samples.map((s) => s.rssMiB)), samples };
  console.log(`${service} alone: READY median ${start[service]!.readyMs} ms, RSS after READY ${start[service]!.rssMiB.toFixed(1)} MiB`);
}

const loadAtEnd = os.loadavg();
const results = {
  date: new Date().toISOString(),
  machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, node: process.version, kernel: os.release(), loadavgAtStart: loadAtStart, loadavgAtEnd: loadAtEnd },
  settings: { idleSeconds: IDLE_S, loadSeconds: LOAD_S, loadClients: LOAD_CLIENTS, loadPauseMs: LOAD_PAUSE_MS, startRuns: START_RUNS, how: 'scripts/run-dev.ts (make run) on free loopback ports; RSS is VmRSS in MiB' },
  idleRssMiB: idle,
  loadedRssMiB: loaded,
  lightLoad: load,
  start,
  goals: {
    'R1 idle RSS MB <= 200': idle.total!,
    'R1 daemon idle RSS MB <= 80': idle.daemon!,
    'R1 proxy idle RSS MB <= 60': idle.proxy!,
    'R1 (info) RSS under light load MB': loaded.total!,
  },
};
const lines = [
  `# Footprint benchmark ${results.date}`,
  '',
  `Machine: ${results.machine.cpu}, ${results.machine.cores} cores, Node ${process.version}, load average at start ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}, at end ${loadAtEnd.map((l) => l.toFixed(2)).join(' ')}.`,
  `The four bundles under scripts/run-dev.ts (make run); RSS (VmRSS, MiB) after ${IDLE_S} s idle, then after ${LOAD_S} s of light load (${LOAD_CLIENTS} clients, ${LOAD_PAUSE_MS} ms pause, ${load.requests} requests, ${load.failures} failed).`,
  '',
  '| goal | measured |',
  '| --- | --- |',
  ...Object.entries(results.goals).map(([goal, value]) => `| ${goal} | ${value.toFixed(1)} |`),
  '',
  '| service | idle RSS MiB | RSS under light load MiB |',
  '| --- | --- | --- |',
  ...[...SERVICES, 'total'].map((service) => `| ${service} | ${idle[service]!.toFixed(1)} | ${loaded[service]!.toFixed(1)} |`),
  '',
  ...(Object.keys(start).length
    ? ['| started alone | READY median ms | RSS 1 s after READY MiB | runs |', '| --- | --- | --- | --- |', ...Object.entries(start).map(([service, s]) => `| ${service} | ${s.readyMs} | ${s.rssMiB.toFixed(1)} | ${s.samples.map((x) => `${x.readyMs.toFixed(0)} ms/${x.rssMiB.toFixed(1)}`).join(', ')} |`), '']
    : []),
];
console.log(lines.join('\n'));
if (process.env.FOOTPRINT_NO_WRITE !== '1') {
  const outDir = resultsDir();
  mkdirSync(outDir, { recursive: true });
  const stamp = results.date.slice(0, 10);
  writeFileSync(path.join(outDir, `footprint-${stamp}.json`), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(path.join(outDir, `footprint-${stamp}.md`), lines.join('\n') + '\n');
  console.log(`wrote bench/results/footprint-${stamp}.json and .md`);
}
