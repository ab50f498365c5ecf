// make bench-apps: GET /api/v1/apps with 20 apps installed on real Podman (one tiny busybox httpd
// image), under N concurrent keep-alive clients with a signed-in session (wrk), against the goal
// (>= 1,000 req/s at p99 <= 50 ms) and against nginx serving the same body as a static file on
// the same core, in the same run. The daemon is pinned to core 0 with nginx; wrk and Podman run on
// core 1. Also measured: what one engine read costs (what every request cost before the state was
// kept in memory) and Podman's CPU time during the load (it should do nothing).
// Writes bench/results/apps-read-<date>.json and .md. Usage: tsx bench/apps-read.ts [rounds=5] [seconds=5]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BUNDLE_DIR, REPO_ROOT, bundleServices } from '../image/bundle.js';
import { cpuMs, processTree } from './footprint-proc.js';
import { resultsDir } from './results-dir.js';
import { freePort } from '../image/qemu.js';
import { createLogger } from '../services/common/logger.js';
import { Engine } from '../services/daemon/apps/engine.js';
import { startPodman } from '../test/support/podman.js';
import { setUpDevice } from '../test/support/portal.js';
import { ServiceProcess, removeTestDir, waitFor } from '../test/support/processes.js';

const ROUNDS = Number(process.argv[2] ?? 5);
const SECONDS = Number(process.argv[3] ?? 5);
const APPS = 20;
const CONNECTIONS = [10, 50];
/** The load at which the goal is judged. */
const GOAL_CONNECTIONS = 50;
const GOAL = { rps: 1000, p99ms: 50 };
const SERVER_CORE = '0';
const CLIENT_CORE = '1';
const dir = mkdtempSync(path.join(os.tmpdir(), 'piccolo-bench-apps-'));
const children: ChildProcess[] = [];

interface WrkResult {
  rps: number;
  p50ms: number;
  p99ms: number;
}

function wrk(url: string, connections: number, headers: string[] = []): WrkResult {
  const out = execFileSync('taskset', ['-c', CLIENT_CORE, 'wrk', '-t1', `-c${connections}`, `-d${SECONDS}s`, '--latency', ...headers.flatMap((h) => ['-H', h]), url], { encoding: 'utf8' });
  // A load of 401s or 502s would be fast and prove nothing.
  const failed = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (failed) throw new Error(`${url}: ${failed[1]} answers were not 2xx\n${out}`);
  const ms = (percentile: string) => {
    const [, value, unit] = new RegExp(`${percentile}%\\s+([\\d.]+)(us|ms|s)`).exec(out)!;
    return Number(value) * (unit === 'us' ? 0.001 : unit === 'ms' ? 1 : 1000);
  };
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]), p50ms: ms('50'), p99ms: ms('99') };
}

/** utime + stime of a process and its threads, in seconds. */
const cpuSeconds = (pid: number) => cpuMs(pid) / 1000;

/** A process and its children (nginx's master and worker). */
const treeCpuSeconds = (pid: number) => processTree(pid).reduce((sum, each) => sum + cpuSeconds(each), 0);

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main() {
  await bundleServices();
  const load = os.loadavg();
  const podman = await startPodman();
  try {
    const podmanPid = Number(execFileSync('pgrep', ['-f', `podman system service --time=0 unix://${podman.socketPath}`], { encoding: 'utf8' }).trim().split('\n')[0]);
    execFileSync('taskset', ['-a', '-p', '-c', CLIENT_CORE, String(podmanPid)], { stdio: 'ignore' });
    const image = await podman.buildHttpdImage('bench', '<p>bench</p>');

    // --- the daemon (the production bundle), set up, with 20 apps
    const stateDir = path.join(dir, 'state');
    const daemon = await ServiceProcess.start('daemon', {
      PICCOLO_HEALTH_SOCKET: path.join(dir, 'no-health.sock'),
      PICCOLO_DAEMON_LISTEN: '127.0.0.1:0',
      PICCOLO_STATE_DIR: stateDir,
      PICCOLO_TPM_TCTI: 'none',
      PICCOLO_CONSOLE: 'none',
      PICCOLO_PODMAN_SOCKET: podman.socketPath,
    }, BUNDLE_DIR);
    try {
      await daemon.notified('READY=1', 20_000);
      execFileSync('taskset', ['-a', '-p', '-c', SERVER_CORE, String(daemon.pid)], { stdio: 'ignore' });
      const base = `http://${await daemon.address('http')}`;
      const api = await setUpDevice(base, stateDir);
      await waitFor(async () => ((await api.call('GET', '/api/v1/apps')).status === 200 ? true : undefined), 30_000, 'apps available');
      const installStarted = Date.now();
      // One at a time: an app's ports are picked when it is committed, and on a machine where other
      // daemons share the engine (tests) a port picked long before its container starts may be taken.
      // Still, a port can be taken in the seconds between: the app is removed and installed again.
      const finished = async (reply: { status: number; body: any }, what: string) => {
        if (reply.status !== 202) throw new Error(`${what}: ${reply.status} ${JSON.stringify(reply.body)}`);
        const id = reply.body.job.id as string;
        return waitFor(async () => {
          const { body } = await api.call('GET', `/api/v1/jobs/${id}`);
          return body.status === 'running' ? undefined : body;
        }, 120_000, `job ${id}`);
      };
      let portRetries = 0;
      for (let i = 0; i < APPS; i++) {
        const name = `${podman.prefix}app${i}`;
        const spec = [`name: ${name}`, `image: ${image}`, 'listeners:', '  - name: web', '    guest_port: 80', '    protocol: http'].join('\n');
        for (let attempt = 1; ; attempt++) {
          const job = await finished(await api.call('POST', '/api/v1/apps', { spec }), `install ${name}`);
          if (job.status === 'succeeded') break;
          if (attempt === 3 || !/is in use/.test(job.error)) throw new Error(`install ${name}: ${JSON.stringify(job)}`);
          portRetries++;
          await finished(await api.call('DELETE', `/api/v1/apps/${name}`, { confirm: name, purge: true }), `uninstall ${name}`);
        }
      }
      const listed = await api.call('GET', '/api/v1/apps');
      const apps = listed.body.apps as { name: string; state: string }[];
      const runningApps = apps.filter((app) => app.state === 'running').length;
      if (runningApps !== APPS) throw new Error(`${runningApps} of ${APPS} apps running: ${JSON.stringify(apps.map((a) => a.state))}`);
      const installSeconds = (Date.now() - installStarted) / 1000;
      const body = JSON.stringify(listed.body);
      console.log(`${APPS} apps running after ${installSeconds.toFixed(1)} s (${portRetries} installed again after a port was taken); GET /api/v1/apps answers ${body.length} bytes`);

      // --- the peer: nginx serving that body as a static file, on the daemon's core
      const www = path.join(dir, 'www');
      mkdirSync(www, { recursive: true });
      writeFileSync(path.join(www, 'apps.json'), body);
      const nginxPort = await freePort();
      const conf = path.join(dir, 'nginx.conf');
      writeFileSync(conf, `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log stderr error;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 60s; default_type application/json;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  server { listen 127.0.0.1:${nginxPort}; root ${www}; } }`);
      const nginx = spawn('taskset', ['-c', SERVER_CORE, 'nginx', '-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] });
      children.push(nginx);
      await waitFor(async () => ((await fetch(`http://127.0.0.1:${nginxPort}/apps.json`).catch(() => undefined))?.ok ? true : undefined), 10_000, 'nginx');

      // --- what one engine read costs: every request paid it before the state was kept in memory
      const engine = new Engine({ docker: podman.docker, logger: createLogger({ service: 'bench', level: 'error' }) });
      const readMs: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t0 = performance.now();
        await engine.state();
        readMs.push(performance.now() - t0);
      }

      const ours = `${base}/api/v1/apps`;
      const peer = `http://127.0.0.1:${nginxPort}/apps.json`;
      const cookie = [`Cookie: ${api.cookie}`];
      wrk(ours, 10, cookie); // warm-up
      wrk(peer, 10, cookie);
      const samples: Record<string, number[]> = {};
      const add = (key: string, value: number) => (samples[key] ??= []).push(value);
      for (let round = 1; round <= ROUNDS; round++) {
        console.log(`round ${round}/${ROUNDS}`);
        for (const connections of CONNECTIONS) {
          const podmanBefore = cpuSeconds(podmanPid);
          const daemonBefore = cpuSeconds(daemon.pid);
          const t0 = performance.now();
          const result = wrk(ours, connections, cookie);
          const wallSeconds = (performance.now() - t0) / 1000;
          add(`ours.c${connections}.rps`, result.rps);
          add(`ours.c${connections}.p50ms`, result.p50ms);
          add(`ours.c${connections}.p99ms`, result.p99ms);
          add(`ours.c${connections}.podmanCpuPerSecond`, (cpuSeconds(podmanPid) - podmanBefore) / wallSeconds);
          const daemonCpu = cpuSeconds(daemon.pid) - daemonBefore;
          add(`ours.c${connections}.daemonCpuPerSecond`, daemonCpu / wallSeconds);
          // CPU per answer does not depend on how much of the core the others on the machine left.
          add(`ours.c${connections}.cpuUsPerRequest`, (daemonCpu / (result.rps * wallSeconds)) * 1e6);
          const nginxBefore = treeCpuSeconds(nginx.pid!);
          const n0 = performance.now();
          const nginxResult = wrk(peer, connections, cookie);
          add(`nginx.c${connections}.cpuUsPerRequest`, ((treeCpuSeconds(nginx.pid!) - nginxBefore) / (nginxResult.rps * ((performance.now() - n0) / 1000))) * 1e6);
          add(`nginx.c${connections}.rps`, nginxResult.rps);
          add(`nginx.c${connections}.p50ms`, nginxResult.p50ms);
          add(`nginx.c${connections}.p99ms`, nginxResult.p99ms);
        }
      }
      const m = Object.fromEntries(Object.entries(samples).map(([key, values]) => [key, median(values)]));
      m['engineRead.p50ms'] = median(readMs);
      const g = GOAL_CONNECTIONS;
      const results = {
        date: new Date().toISOString(),
        machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, node: process.version, kernel: os.release(), loadavgAtStart: load, loadavgAtEnd: os.loadavg() },
        settings: { rounds: ROUNDS, secondsPerRun: SECONDS, apps: APPS, bodyBytes: body.length, wrk: `-t1 ${CONNECTIONS.map((c) => `-c${c}`).join(', ')}, keep-alive, session cookie`, serverCore: SERVER_CORE, clientCore: CLIENT_CORE, installSeconds, portRetries },
        medians: m,
        goals: {
          [`c${g} req/s / ${GOAL.rps} (>= 1)`]: m[`ours.c${g}.rps`]! / GOAL.rps,
          [`c${g} ${GOAL.p99ms} ms / p99 (>= 1)`]: GOAL.p99ms / m[`ours.c${g}.p99ms`]!,
          ...Object.fromEntries(CONNECTIONS.map((c) => [`c${c} ours/nginx static file req/s (info)`, m[`ours.c${c}.rps`]! / m[`nginx.c${c}.rps`]!])),
          // On a busy machine the tail is the scheduler's: nginx's own p99 under the same load says how much.
          ...Object.fromEntries(CONNECTIONS.map((c) => [`c${c} p99 ours/nginx (info)`, m[`ours.c${c}.p99ms`]! / m[`nginx.c${c}.p99ms`]!])),
          ...Object.fromEntries(CONNECTIONS.map((c) => [`c${c} CPU per request ours/nginx (info)`, m[`ours.c${c}.cpuUsPerRequest`]! / m[`nginx.c${c}.cpuUsPerRequest`]!])),
          [`c${g} req/s at one full core (1e6 / CPU us per request) / ${GOAL.rps} (info)`]: 1e6 / m[`ours.c${g}.cpuUsPerRequest`]! / GOAL.rps,
          [`c${g} Podman CPU-seconds per second under load (~0)`]: m[`ours.c${g}.podmanCpuPerSecond`]!,
        },
        samples: { ...samples, engineReadMs: readMs },
      };
      const outDir = resultsDir();
      mkdirSync(outDir, { recursive: true });
      const stamp = results.date.slice(0, 10);
      writeFileSync(path.join(outDir, `apps-read-${stamp}.json`), JSON.stringify(results, null, 2) + '\n');
      const lines = [
        `# Apps read benchmark ${results.date}`,
        '',
        `Machine: ${results.machine.cpu}, ${results.machine.cores} cores, Node ${process.version}, load average at start ${load.map((l) => l.toFixed(2)).join(' ')}, at end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}.`,
        `GET /api/v1/apps with ${APPS} apps running on Podman (${body.length} bytes), signed in, keep-alive; ${ROUNDS} interleaved rounds of ${SECONDS} s per load;`,
        `daemon and nginx (the same body as a static file) on core ${SERVER_CORE}, wrk and Podman on core ${CLIENT_CORE}. Goal: >= ${GOAL.rps} req/s at p99 <= ${GOAL.p99ms} ms with ${g} connections.`,
        '',
        '| goal | measured |',
        '| --- | --- |',
        ...Object.entries(results.goals).map(([goal, value]) => `| ${goal} | ${value.toFixed(3)} |`),
        '',
        '| median | value |',
        '| --- | --- |',
        ...Object.entries(m).map(([key, value]) => `| ${key} | ${value.toFixed(key.includes('Cpu') ? 3 : 1)} |`),
        '',
      ];
      writeFileSync(path.join(outDir, `apps-read-${stamp}.md`), lines.join('\n'));
      console.log(lines.join('\n'));
    } finally {
      await daemon.kill('SIGTERM');
    }
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await podman.stop();
    removeTestDir(dir);
  }
}

await main();
process.exit(0);
