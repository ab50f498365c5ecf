// Footprint: the four service bundles started as `make run` starts them (scripts/run-dev.ts, with
// its Podman service and loopback registry, on free loopback ports and a state folder of its own),
// each service's resident memory after IDLE_S seconds idle, and again at the end of LOAD_S seconds
// of light load through the proxy (the setup wizard's page and API, and the health service). Then
// each service's start alone (bench/footprint-start.ts): time and CPU to READY, RSS after it.
// RSS (VmRSS) is the goal's measure; beside it RssAnon (the process's own pages) and PSS (shared
// pages split among their users: the node binary's ~35-45 MiB is counted once per process in VmRSS,
// and PSS also depends on how many other node processes the machine runs): bench/footprint-proc.ts.
// Writes bench/results/footprint-<date>.json and .md with a goals map, as bench/proxy.ts does.
// Memory figures are meaningful on a loaded machine (the load average is recorded); times less so.
//   FOOTPRINT_IDLE_S (30), FOOTPRINT_LOAD_S (20), FOOTPRINT_START_RUNS (3; 0 skips), FOOTPRINT_LATER_BOOT=0 (no second run), FOOTPRINT_NO_WRITE=1 (smoke run)
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { bundleServices, BUNDLE_DIR, REPO_ROOT, SERVICES, bundlePath, type ServiceName } from '../image/bundle.js';
import { NODE_FLAGS } from '../image/node-flags.js';
import { resultsDir } from './results-dir.js';
import { freePort } from '../test/support/proxy-harness.js';
import { measureStart, type StartSample } from './footprint-start.js';
import { procMemory, type ProcMemory } from './footprint-proc.js';
import { measureTcgStart, tcgAvailable, type TcgStartSample } from './footprint-tcg.js';

const IDLE_S = Number(process.env.FOOTPRINT_IDLE_S ?? 30);
const LOAD_S = Number(process.env.FOOTPRINT_LOAD_S ?? 20);
const START_RUNS = Number(process.env.FOOTPRINT_START_RUNS ?? 3);
/** Light load: this many clients, each one request at a time, with a pause between requests. */
const LOAD_CLIENTS = 4;
const LOAD_PAUSE_MS = 20;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

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

type Snapshot = Record<ServiceName | 'total', ProcMemory>;

function snapshot(pids: Map<ServiceName, number>): Snapshot {
  const memory = {} as Snapshot;
  for (const service of SERVICES) {
    const measured = procMemory(pids.get(service)!);
    if (!measured) throw new Error(`${service} exited during the bench`);
    memory[service] = measured;
  }
  const sum = (key: keyof ProcMemory) => Math.round(SERVICES.reduce((total, service) => total + memory[service][key], 0) * 10) / 10;
  memory.total = { rss: sum('rss'), anon: sum('anon'), pss: sum('pss') };
  return memory;
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

/** `make run` once on devDir: idle memory after IDLE_S, and (withLoad) after LOAD_S of light load. */
async function makeRun(withLoad: boolean): Promise<{ idle: Snapshot; loaded?: Snapshot; load?: { requests: number; failures: number } }> {
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
  try {
    await waitForPortal(`${proxyUrl}/`, 120_000).catch((err) => {
      throw new Error(`${(err as Error).message}\n${runErrors}`);
    });
    const pids = servicePids(run.pid!);
    if (pids.size !== SERVICES.length) throw new Error(`found ${[...pids.keys()].join(', ')} of ${SERVICES.join(', ')} under make run`);
    console.log(`all four up; idle for ${IDLE_S} s`);
    await sleep(IDLE_S * 1000);
    const idle = snapshot(pids);
    console.log('idle MiB', idle);
    if (!withLoad) return { idle };
    const load = await lightLoad([`${proxyUrl}/`, `${proxyUrl}/api/v1/setup/status`, `${healthUrl}/health/ready`], LOAD_S);
    const loaded = snapshot(pids);
    console.log(`MiB after ${LOAD_S} s of light load (${load.requests} requests, ${load.failures} failed)`, loaded);
    return { idle, loaded, load };
  } finally {
    run.kill('SIGTERM');
    await Promise.race([exited, sleep(120_000)]);
  }
}

let first: Awaited<ReturnType<typeof makeRun>>;
let later: Snapshot | undefined;
try {
  first = await makeRun(true);
  // A later boot of the same device: the proxy's certificates are on disk then (FOOTPRINT_LATER_BOOT=0 skips it).
  if (process.env.FOOTPRINT_LATER_BOOT !== '0') later = (await makeRun(false)).idle;
} finally {
  rmSync(devDir, { recursive: true, force: true });
}
const { idle } = first;
const loaded = first.loaded!;
const load = first.load!;

const start: Record<string, { readyMs: number; cpuMs: number; rssMiB: number; samples: StartSample[] }> = {};
for (const service of START_RUNS > 0 ? (['proxy', 'daemon'] as const) : []) {
  const samples = await measureStart(service, START_RUNS);
  start[service] = { readyMs: Math.round(median(samples.map((s) => s.readyMs))), cpuMs: median(samples.map((s) => s.cpuMs)), rssMiB: median(samples.map((s) => s.rssMiB)), samples };
  console.log(`${service} alone: READY median ${start[service]!.readyMs} ms, CPU to READY ${start[service]!.cpuMs} ms, RSS after READY ${start[service]!.rssMiB.toFixed(1)} MiB`);
}

// The same starts under TCG, the guest's CPU emulator (bench/footprint-tcg.ts): what B1 owes to each service.
const tcg: Record<string, { first: TcgStartSample; restarts: TcgStartSample[]; readyMs: number; cpuMs: number }> = {};
for (const service of START_RUNS > 0 && tcgAvailable() ? SERVICES : []) {
  const { first, restarts } = await measureTcgStart(service, START_RUNS);
  tcg[service] = { first, restarts, readyMs: median(restarts.map((s) => s.readyMs)), cpuMs: median(restarts.map((s) => s.cpuMs)) };
  console.log(`${service} under TCG: first start ${first.readyMs} ms (CPU ${first.cpuMs}), later starts READY median ${tcg[service]!.readyMs} ms (CPU ${tcg[service]!.cpuMs})`);
}

const loadAtEnd = os.loadavg();
const results = {
  date: new Date().toISOString(),
  machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, node: process.version, kernel: os.release(), loadavgAtStart: loadAtStart, loadavgAtEnd: loadAtEnd },
  settings: { idleSeconds: IDLE_S, loadSeconds: LOAD_S, loadClients: LOAD_CLIENTS, loadPauseMs: LOAD_PAUSE_MS, startRuns: START_RUNS, nodeFlags: NODE_FLAGS, how: 'scripts/run-dev.ts (make run) on free loopback ports; rss is VmRSS, anon RssAnon, pss Pss, in MiB' },
  idleMiB: idle,
  laterBootIdleMiB: later,
  loadedMiB: loaded,
  lightLoad: load,
  start,
  tcgStart: tcg,
  goals: {
    'R1 idle RSS MB <= 200': idle.total.rss,
    'R1 daemon idle RSS MB <= 80': idle.daemon.rss,
    'R1 proxy idle RSS MB <= 60': idle.proxy.rss,
    'R1 (info) RSS under light load MB': loaded.total.rss,
    ...(later && { 'R1 (info) later boot idle RSS MB': later.total.rss, 'R1 (info) later boot proxy idle RSS MB': later.proxy.rss }),
    'R1 (info) idle PSS total MB': idle.total.pss,
    'R1 (info) idle RssAnon total MB': idle.total.anon,
    ...Object.fromEntries(Object.entries(start).map(([service, s]) => [`B1 (info) ${service} CPU to READY ms (here, not TCG)`, s.cpuMs])),
    ...Object.fromEntries(Object.entries(tcg).map(([service, s]) => [`B1 (info) ${service} start to READY under TCG (qemu-user), later start ms`, s.readyMs])),
  },
};
const lines = [
  `# Footprint benchmark ${results.date}`,
  '',
  `Machine: ${results.machine.cpu}, ${results.machine.cores} cores, Node ${process.version}, load average at start ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}, at end ${loadAtEnd.map((l) => l.toFixed(2)).join(' ')}.`,
  `The four bundles under scripts/run-dev.ts (make run) with the image's Node flags (${SERVICES.map((service) => `${service}: ${NODE_FLAGS[service].join(' ') || 'none'}`).join(', ')}); memory in MiB after ${IDLE_S} s idle, then after ${LOAD_S} s of light load (${LOAD_CLIENTS} clients, ${LOAD_PAUSE_MS} ms pause, ${load.requests} requests, ${load.failures} failed).`,
  'RSS is VmRSS (the goal); anon is RssAnon (the process\'s own pages); PSS is its own pages plus its share of the pages it shares with other processes (the node binary\'s), so the sum of PSS is what the four cost the machine. As on a first boot, the daemon is unclaimed and the proxy makes its CA and device certificate; the later boot is a second make run on the same state (certificates on disk).',
  '',
  '| goal | measured |',
  '| --- | --- |',
  ...Object.entries(results.goals).map(([goal, value]) => `| ${goal} | ${value.toFixed(1)} |`),
  '',
  '| service | idle RSS MiB | idle anon MiB | idle PSS MiB | RSS under light load MiB | later boot idle RSS MiB |',
  '| --- | --- | --- | --- | --- | --- |',
  ...([...SERVICES, 'total'] as const).map((service) => `| ${service} | ${idle[service].rss.toFixed(1)} | ${idle[service].anon.toFixed(1)} | ${idle[service].pss.toFixed(1)} | ${loaded[service].rss.toFixed(1)} | ${later ? later[service].rss.toFixed(1) : '-'} |`),
  '',
  ...(Object.keys(start).length
    ? ['| started alone | READY median ms | CPU to READY ms | RSS 1 s after READY MiB | runs (READY/CPU/RSS) |', '| --- | --- | --- | --- | --- |', ...Object.entries(start).map(([service, s]) => `| ${service} | ${s.readyMs} | ${s.cpuMs} | ${s.rssMiB.toFixed(1)} | ${s.samples.map((x) => `${x.readyMs.toFixed(0)}/${x.cpuMs}/${x.rssMiB.toFixed(1)}`).join(', ')} |`), '']
    : []),
  ...(Object.keys(tcg).length
    ? [
        '| under TCG (qemu-user) | first start READY ms / CPU ms | later starts READY median ms | CPU ms | later starts (READY/CPU) |',
        '| --- | --- | --- | --- | --- |',
        ...Object.entries(tcg).map(([service, s]) => `| ${service} | ${s.first.readyMs} / ${s.first.cpuMs} | ${s.readyMs} | ${s.cpuMs} | ${s.restarts.map((x) => `${x.readyMs}/${x.cpuMs}`).join(', ')} |`),
        '',
      ]
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
