// make bench-proxy: our proxy against nginx, haproxy, caddy (Debian's 2.6 and, where Go can build
// it, the current release: caddyCurrent) and @fastify/http-proxy, each pinned to
// one core (taskset) with wrk on the other, all in front of the same nginx backend with keep-alive
// upstream connections. Rounds are interleaved so drift (thermal, other load) hits every proxy
// alike. Writes medians and ratios to bench/results/proxy-<date>.json and .md.
// Usage: tsx bench/proxy.ts [rounds=5] [seconds=4]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { bundleServices, bundlePath, REPO_ROOT } from '../image/bundle.js';
import { processTree } from './footprint-proc.js';
import { resultsDir } from './results-dir.js';
import { freePort } from '../image/qemu.js';
import { createLogger } from '../services/common/logger.js';
import { InternalApi } from '../services/daemon/internal/internal-api.js';
import { InMemoryRouteSource } from '../services/daemon/internal/memory-route-source.js';
import { LocalCa } from '../services/proxy/local-ca.js';
import { goBinary } from './tunnel-peers.js';
import { SERVICE_ENVIRONMENT, serviceCommand } from '../image/node-flags.js';

/** The current Caddy, beside Debian's 2.6 (scripts/setup.sh bench installs it; built here otherwise). */
const CADDY_MODULE = 'github.com/caddyserver/caddy/v2/cmd/caddy@latest';

const ROUNDS = Number(process.argv[2] ?? 5);
const SECONDS = Number(process.argv[3] ?? 4);
const CPUS = os.cpus().length;
const PROXY_CORE = '0';
const CLIENT_CORE = CPUS > 2 ? '1' : '1';
const BACKEND_CORE = CPUS > 2 ? '2' : '1'; // two cores only: the backend shares wrk's core
const dir = mkdtempSync(path.join(os.tmpdir(), 'piccolo-bench-'));
const children: ChildProcess[] = [];

function pinned(core: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn('taskset', ['-c', core, command, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  return child;
}

/** The main module's version from a Go binary's build info (`go version -m`), if Go is there. */
function moduleVersion(binary: string): string | undefined {
  try {
    const info = execFileSync('go', ['version', '-m', binary], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH}:/usr/local/go/bin` } });
    return /^\s+mod\s+\S+\s+(\S+)/m.exec(info)?.[1];
  } catch {
    return undefined;
  }
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => (socket.destroy(), resolve(true)));
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} never opened`);
}

function nginxConf(body: string): string {
  const file = path.join(dir, `nginx-${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(file, `worker_processes 1; daemon off; pid ${file}.pid; error_log stderr error;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  ${body} }`);
  return file;
}

interface WrkResult {
  rps: number;
  p50us: number;
}

function wrk(url: string, connections: number): WrkResult {
  const out = execFileSync('taskset', ['-c', CLIENT_CORE, 'wrk', '-t1', `-c${connections}`, `-d${SECONDS}s`, '--latency', url], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]);
  const [, value, unit] = /50%\s+([\d.]+)(us|ms|s)/.exec(out)!;
  const p50us = Number(value) * (unit === 'us' ? 1 : unit === 'ms' ? 1000 : 1_000_000);
  return { rps, p50us };
}

/** Moves every thread of a proxy's processes to core (taskset -a), e.g. onto the client's core and back. */
function moveToCore(pid: number, core: string): void {
  for (const each of processTree(pid)) execFileSync('taskset', ['-a', '-p', '-c', core, String(each)], { stdio: 'ignore' });
}

/**
 * p50 at one connection with the proxy moved onto the client's (and backend's) core for the run.
 * On its own core each request crosses cores four times (client, proxy, backend, proxy, client),
 * where the direct run crosses none; in a VM each crossing wakes an idle vCPU through the
 * hypervisor, a cost of the machine that nginx and haproxy pay alike. On one core what is added is
 * the proxy's own work and its context switches.
 */
function sameCoreP50us(url: string, pid: number): number {
  moveToCore(pid, CLIENT_CORE);
  try {
    return wrk(url, 1).p50us;
  } finally {
    moveToCore(pid, PROXY_CORE);
  }
}

function iperf(port: number): number {
  const out = execFileSync('taskset', ['-c', CLIENT_CORE, 'iperf3', '-c', '127.0.0.1', '-p', String(port), '-t', String(SECONDS), '-J'], { encoding: 'utf8' });
  return JSON.parse(out).end.sum_received.bits_per_second / 1e9;
}

function backendAccepts(statusPort: number): number {
  const out = execFileSync('curl', ['-s', `http://127.0.0.1:${statusPort}/stub`], { encoding: 'utf8' });
  return Number(out.split('\n')[2]!.trim().split(/\s+/)[0]);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main() {
  await bundleServices();
  const load = os.loadavg();
  // --- the backend: nginx answering a small body, plus a stub_status to count its accepted connections
  const backendPort = await freePort();
  pinned(BACKEND_CORE, 'nginx', ['-c', nginxConf(`server { listen 127.0.0.1:${backendPort}; location / { return 200 "hello from the backend\\n"; } location /stub { stub_status; } }`)]);
  await waitPort(backendPort);

  // --- TLS material for the TLS runs
  const ca = await LocalCa.create('bench');
  const pair = await ca.issue(['localhost', '127.0.0.1']);
  writeFileSync(path.join(dir, 'tls.key'), pair.key);
  writeFileSync(path.join(dir, 'tls.crt'), pair.cert);
  mkdirSync(path.join(dir, 'certs'), { recursive: true });
  writeFileSync(path.join(dir, 'certs', 'bench.pem'), pair.key + pair.cert);

  // --- the route table our proxy serves
  const routes = new InMemoryRouteSource();
  const api = new InternalApi({ socketPath: path.join(dir, 'internal.sock'), routes, sessions: { check: async () => ({ valid: false }) }, challenges: { get: () => undefined }, logger: createLogger({ service: 'bench', level: 'error' }) });
  await api.start();
  const [oursPort, relayPort, iperfPort, oursRawPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  routes.set({
    routes: [
      { app: 'bench', listener: 'web', publicPort: oursPort, hostBindPort: backendPort, flow: 'tcp', protocol: 'http', access: 'public', middleware: [], hostnames: [] },
      { app: 'iperf', listener: 'raw', publicPort: oursRawPort, hostBindPort: iperfPort, flow: 'tls', protocol: 'raw', access: 'public', middleware: [], hostnames: [] },
    ],
  });

  const ports: Record<string, number> = { nginx: await freePort(), haproxy: await freePort(), caddy: await freePort(), fastify: await freePort(), nginxTls: await freePort() };
  const upstreamBlock = `upstream backend { server 127.0.0.1:${backendPort}; keepalive 64; }`;
  const proxyLocation = 'location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }';
  // With the unit's Node flags and environment (image/node-flags.ts): what is measured is what ships.
  const [node, ...proxyArgs] = serviceCommand('proxy', process.execPath, bundlePath('proxy'));
  /** Each HTTP proxy's main process, to move it for the same-core P2 runs. */
  const pids: Record<string, number> = {};
  pids.ours = pinned(PROXY_CORE, node!, proxyArgs, {
    PICCOLO_PROXY_LISTEN: `127.0.0.1:${await freePort()}`,
    PICCOLO_PROXY_BIND_HOST: '127.0.0.1',
    PICCOLO_PROXY_DAEMON_SOCKET: path.join(dir, 'internal.sock'),
    PICCOLO_PROXY_CERT_DIR: path.join(dir, 'certs'),
    PICCOLO_PROXY_TUNNEL_TLS_SOCKET: path.join(dir, 'tunnel-tls.sock'),
    PICCOLO_PROXY_TUNNEL_HTTP_SOCKET: path.join(dir, 'tunnel-http.sock'),
    PICCOLO_HEALTH_SOCKET: path.join(dir, 'health.sock'),
    PICCOLO_LOG_LEVEL: 'error',
    ...SERVICE_ENVIRONMENT.proxy,
  }).pid!;
  pids.nginx = pinned(PROXY_CORE, 'nginx', ['-c', nginxConf(`${upstreamBlock} server { listen 127.0.0.1:${ports.nginx}; ${proxyLocation} }
    server { listen 127.0.0.1:${ports.nginxTls} ssl; ssl_certificate ${dir}/tls.crt; ssl_certificate_key ${dir}/tls.key; ssl_protocols TLSv1.2 TLSv1.3; ${proxyLocation} }`)]).pid!;
  const haproxyCfg = path.join(dir, 'haproxy.cfg');
  writeFileSync(haproxyCfg, `global\n  nbthread 1\n  maxconn 4000\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n  http-reuse always\nfrontend f\n  bind 127.0.0.1:${ports.haproxy}\n  default_backend b\nbackend b\n  server s1 127.0.0.1:${backendPort}\n`);
  pids.haproxy = pinned(PROXY_CORE, 'haproxy', ['-f', haproxyCfg]).pid!;
  /** One Caddy (Debian's or the current one) as a plain reverse proxy on port, on one core. */
  const startCaddy = (name: string, binary: string, port: number) => {
    const caddyfile = path.join(dir, `Caddyfile-${port}`);
    writeFileSync(caddyfile, `{\n  admin off\n  auto_https off\n}\nhttp://127.0.0.1:${port} {\n  reverse_proxy 127.0.0.1:${backendPort}\n}\n`);
    pids[name] = pinned(PROXY_CORE, binary, ['run', '--config', caddyfile, '--adapter', 'caddyfile'], { GOMAXPROCS: '1', HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir }).pid!;
    return execFileSync(binary, ['version'], { encoding: 'utf8' }).trim();
  };
  // Debian's by its path: ~/go/bin (the current one, same name) may come first on PATH.
  const peerVersions: Record<string, string> = { caddy: startCaddy('caddy', '/usr/bin/caddy', ports.caddy!) };
  const skipped: Record<string, string> = {};
  const caddyCurrent = goBinary('caddy', CADDY_MODULE, console.log);
  if (caddyCurrent.file) {
    ports.caddyCurrent = await freePort();
    peerVersions.caddyCurrent = startCaddy('caddyCurrent', caddyCurrent.file, ports.caddyCurrent);
    // A `go install` build prints "unknown" as its version; its build info has the module's.
    if (peerVersions.caddyCurrent === 'unknown') peerVersions.caddyCurrent = moduleVersion(caddyCurrent.file) ?? 'unknown';
  } else {
    skipped.caddyCurrent = caddyCurrent.reason!;
    console.log(`current Caddy skipped: ${caddyCurrent.reason}`);
  }
  const fastifyScript = path.join(dir, 'fastify.mjs');
  writeFileSync(fastifyScript, `import Fastify from '${REPO_ROOT}/node_modules/fastify/fastify.js';
import proxy from '${REPO_ROOT}/node_modules/@fastify/http-proxy/index.js';
const app = Fastify({ logger: false });
await app.register(proxy, { upstream: 'http://127.0.0.1:${backendPort}' });
await app.listen({ port: ${ports.fastify}, host: '127.0.0.1' });`);
  pids.fastify = pinned(PROXY_CORE, process.execPath, [fastifyScript]).pid!;
  // A bare Node relay, the yardstick for SNI passthrough throughput.
  const relayScript = path.join(dir, 'relay.mjs');
  writeFileSync(relayScript, `import net from 'node:net';
net.createServer({ allowHalfOpen: true }, (c) => { const u = net.connect(${iperfPort}, '127.0.0.1'); c.pipe(u); u.pipe(c); c.on('error', () => u.destroy()); u.on('error', () => c.destroy()); }).listen(${relayPort}, '127.0.0.1');`);
  pinned(PROXY_CORE, process.execPath, [relayScript]);
  pinned(BACKEND_CORE, 'iperf3', ['-s', '-p', String(iperfPort)]);
  await Promise.all([oursPort, oursRawPort, relayPort, iperfPort, ...Object.values(ports)].map(waitPort));

  const http: Record<string, number> = { ours: oursPort, nginx: ports.nginx!, haproxy: ports.haproxy!, caddy: ports.caddy!, fastify: ports.fastify! };
  if (ports.caddyCurrent) http.caddyCurrent = ports.caddyCurrent;
  const samples: Record<string, number[]> = {};
  const add = (key: string, value: number) => (samples[key] ??= []).push(value);
  for (const name of Object.keys(http)) wrk(`http://127.0.0.1:${http[name]}/`, 50); // warm-up
  for (let round = 1; round <= ROUNDS; round++) {
    console.log(`round ${round}/${ROUNDS}`);
    add('direct.p50us', wrk(`http://127.0.0.1:${backendPort}/`, 1).p50us);
    for (const name of Object.keys(http)) {
      const before = name === 'ours' ? backendAccepts(backendPort) : 0;
      const load = wrk(`http://127.0.0.1:${http[name]}/`, 50);
      add(`${name}.rps`, load.rps);
      if (name === 'ours') add('ours.upstreamConnectionsPerRequest', (backendAccepts(backendPort) - before - 1) / (load.rps * SECONDS));
      add(`${name}.p50us`, wrk(`http://127.0.0.1:${http[name]}/`, 1).p50us);
      add(`${name}.sameCore.p50us`, sameCoreP50us(`http://127.0.0.1:${http[name]}/`, pids[name]!));
    }
    add('ours.tls.rps', wrk(`https://127.0.0.1:${oursPort}/`, 50).rps);
    add('nginx.tls.rps', wrk(`https://127.0.0.1:${ports.nginxTls}/`, 50).rps);
    // Which of the two goes first alternates: the first one runs straight after the TLS load on
    // our proxy's core, the second on a core that had a few seconds to settle.
    const passthrough = () => add('ours.passthrough.gbps', iperf(oursRawPort));
    const relay = () => add('relay.gbps', iperf(relayPort));
    for (const run of round % 2 ? [passthrough, relay] : [relay, passthrough]) run();
  }
  const m = Object.fromEntries(Object.entries(samples).map(([key, values]) => [key, median(values)]));
  const results = {
    date: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model, cores: CPUS, node: process.version, kernel: os.release(), loadavgAtStart: load, loadavgAtEnd: os.loadavg() },
    settings: { rounds: ROUNDS, secondsPerRun: SECONDS, wrk: '-t1 -c50 (P1, P3), -c1 (P2: each proxy on its own core, then moved onto the client\'s)', proxyCore: PROXY_CORE, clientCore: CLIENT_CORE, backendCore: BACKEND_CORE },
    peers: { versions: peerVersions, skipped },
    medians: m,
    goals: {
      'P1 ours/fastify >= 1.5': m['ours.rps']! / m['fastify.rps']!,
      'P1 ours/caddy >= 1.3': m['ours.rps']! / m['caddy.rps']!,
      ...(m['caddyCurrent.rps'] ? { 'P1 ours/caddy current >= 1.3': m['ours.rps']! / m['caddyCurrent.rps']! } : {}),
      'P1 ours/nginx >= 0.35': m['ours.rps']! / m['nginx.rps']!,
      'P1 ours/haproxy (info)': m['ours.rps']! / m['haproxy.rps']!,
      'P2 added p50 us <= 60 (proxy on the client\'s core)': m['ours.sameCore.p50us']! - m['direct.p50us']!,
      'P2 (info) nginx added p50 us (on the client\'s core)': m['nginx.sameCore.p50us']! - m['direct.p50us']!,
      'P2 (info) added p50 us, proxy on its own core': m['ours.p50us']! - m['direct.p50us']!,
      'P2 (info) nginx added p50 us, on its own core': m['nginx.p50us']! - m['direct.p50us']!,
      'P3 ours TLS/nginx TLS >= 0.3': m['ours.tls.rps']! / m['nginx.tls.rps']!,
      'P5 passthrough/bare relay >= 0.9': m['ours.passthrough.gbps']! / m['relay.gbps']!,
      'upstream connections per request <= 0.01': m['ours.upstreamConnectionsPerRequest']!,
    },
    samples,
  };
  const outDir = resultsDir();
  mkdirSync(outDir, { recursive: true });
  const stamp = results.date.slice(0, 10);
  writeFileSync(path.join(outDir, `proxy-${stamp}.json`), JSON.stringify(results, null, 2) + '\n');
  const lines = [`# Proxy benchmark ${results.date}`, '', `Machine: ${results.machine.cpu}, ${CPUS} cores, Node ${process.version}, load average at start ${load.map((l) => l.toFixed(2)).join(' ')}, at end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}.`, `${ROUNDS} interleaved rounds of ${SECONDS} s; proxy on core ${PROXY_CORE}, wrk on core ${CLIENT_CORE}, backend on core ${BACKEND_CORE}.`, 'P2 is measured twice at one connection: each proxy on its own core (a request crosses cores four times, the direct run none; in a VM each crossing wakes an idle vCPU), then moved onto the core of wrk and the backend for the run (what is added is the proxy\'s own work and its context switches).', `Peers: ${Object.entries(peerVersions).map(([name, version]) => `${name} ${version.split(' ')[0]}`).join(', ')}${Object.keys(skipped).length ? `; skipped: ${Object.entries(skipped).map(([name, reason]) => `${name} (${reason})`).join(', ')}` : ''}.`, '', '| goal | measured |', '| --- | --- |', ...Object.entries(results.goals).map(([goal, value]) => `| ${goal} | ${value.toFixed(3)} |`), '', '| median | value |', '| --- | --- |', ...Object.entries(m).map(([key, value]) => `| ${key} | ${value.toFixed(key.includes('PerRequest') ? 5 : 1)} |`), ''];
  writeFileSync(path.join(outDir, `proxy-${stamp}.md`), lines.join('\n'));
  console.log(lines.join('\n'));
}

try {
  await main();
} finally {
  for (const child of children) child.kill('SIGTERM');
}
process.exit(0);
