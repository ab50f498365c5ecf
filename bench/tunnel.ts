// make bench-tunnel: our tunnel (our client and our relay) against chisel, OpenSSH `ssh -L` and
// ss-tunnel with v2ray-plugin over wss, all on loopback, in one run. Every tunnel process runs on
// one core (taskset), iperf3, the targets and this harness on the other; rounds are interleaved
// (the peer order rotates) so drift hits every tunnel alike. Writes medians, ratios and the goals
// to bench/results/tunnel-<date>.json and .md.
// Usage: tsx bench/tunnel.ts [rounds=5] [seconds=3] [kills=100]; BENCH_PEERS=ours,ssh runs only those.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from '../image/bundle.js';
import { resultsDir } from './results-dir.js';
import { freePort } from '../image/qemu.js';
import { LocalCa } from '../services/proxy/local-ca.js';
import { oursPeer, nexusPeer, reconnectSoak, type SoakResult } from './tunnel-ours.js';
import { chiselPeer, sshPeer, stopChild, treeRssKb, v2rayPeer, waitPort, type BenchContext, type Peer, type RunningPeer } from './tunnel-peers.js';

const ROUNDS = Number(process.argv[2] ?? 5);
const SECONDS = Number(process.argv[3] ?? 3);
const KILLS = Number(process.argv[4] ?? 100);
const TUNNEL_CORE = '0';
const CLIENT_CORE = '1'; // iperf3 (both ends), the targets and this harness
const PARALLEL = 4; // T3: the streams that must keep their throughput
const T5_STREAMS = 10_000;
const PEERS: Peer[] = [oursPeer, nexusPeer, chiselPeer, sshPeer, v2rayPeer];

const log = (line: string) => console.log(line);
const median = (values: number[]) => (values.length ? [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]! : NaN);
const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function iperf(port: number, args: string[]): Promise<number> {
  const command = ['-c', CLIENT_CORE, 'iperf3', '-c', '127.0.0.1', '-p', String(port), '-t', String(SECONDS), '-O', '1', '--connect-timeout', '5000', '-J', ...args];
  return new Promise((resolve, reject) =>
    execFile('taskset', command, { encoding: 'utf8', timeout: (SECONDS + 20) * 1000 }, (error, stdout) => {
      let result: { end?: { sum_received?: { bits_per_second: number } }; error?: string } = {};
      try {
        result = JSON.parse(stdout);
      } catch {
        // no JSON: killed by the timeout
      }
      const bps = result.end?.sum_received?.bits_per_second;
      if (bps) resolve(bps / 1e9);
      else reject(new Error(`iperf3 ${args.join(' ')} on port ${port}: ${result.error ?? error?.message ?? 'no result'}`));
    }),
  );
}

/** A reader that stops reading: the first byte (some tunnels need the client to speak first), then pause. */
async function stalledReader(port: number, preface: Buffer = Buffer.alloc(0)): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => (socket.once('connect', resolve), socket.once('error', reject)));
  socket.write(Buffer.concat([preface, Buffer.from('x')]));
  await new Promise<void>((resolve) => socket.once('data', () => resolve()));
  socket.pause();
  return socket;
}

/**
 * Opens `count` streams to the echo target, each checked end to end with one byte, and keeps them
 * idle. Every socket goes into `sockets` at once, so the caller closes them all, even after a failure.
 */
async function openIdleStreams(port: number, count: number, preface: Buffer, sockets: net.Socket[]): Promise<{ streams: number; failure?: Error }> {
  const hello = Buffer.concat([preface, Buffer.from('x')]);
  const open = () =>
    new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      sockets.push(socket);
      const timer = setTimeout(() => reject(new Error(`stream ${sockets.length}: no echo within 20 s`)), 20_000);
      socket.on('error', (error) => (clearTimeout(timer), reject(error)));
      socket.once('close', () => (clearTimeout(timer), reject(new Error(`stream ${sockets.length}: closed by the tunnel before the echo`))));
      socket.once('connect', () => socket.write(hello));
      socket.once('data', () => (clearTimeout(timer), resolve()));
    });
  let next = 0;
  let streams = 0;
  let failure: Error | undefined;
  await Promise.all(
    Array.from({ length: 200 }, async () => {
      while (!failure && next < count) {
        next++;
        await open().then(
          () => streams++,
          (error: Error) => (failure ??= error),
        );
      }
    }),
  );
  return { streams, failure };
}

interface IdleResult {
  streams: number;
  entranceKbPerStream: number;
  exitKbPerStream: number;
  entranceHeapKbPerStream?: number;
  exitHeapKbPerStream?: number;
}

interface Targets {
  child: ChildProcess;
  ports: { blaster: number; echo: number[] };
  /** Connections open at the targets now. */
  open(): Promise<{ echo: number; blaster: number }>;
}

async function startTargets(): Promise<Targets> {
  const child = spawn('taskset', ['-c', CLIENT_CORE, process.execPath, '--import', 'tsx', path.join(REPO_ROOT, 'bench', 'tunnel-targets.ts'), String(PEERS.length)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], cwd: REPO_ROOT });
  const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
  return {
    child,
    ports: JSON.parse(line),
    open: () =>
      new Promise((resolve) => {
        child.once('message', (message: { echo: number; blaster: number }) => resolve(message));
        child.send({ count: true });
      }),
  };
}

async function main() {
  execFileSync('taskset', ['-a', '-p', '-c', CLIENT_CORE, String(process.pid)], { stdio: 'ignore' });
  const load = os.loadavg();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'piccolo-bench-tunnel-'));
  const ca = await LocalCa.create('bench');
  const pair = await ca.issue(['localhost', '127.0.0.1']);
  const tls = { keyFile: path.join(dir, 'tls.key'), certFile: path.join(dir, 'tls.crt'), caFile: path.join(dir, 'ca.crt') };
  writeFileSync(tls.keyFile, pair.key);
  writeFileSync(tls.certFile, pair.cert);
  writeFileSync(tls.caFile, ca.root.cert);

  const targets = await startTargets();
  // One iperf3 server per tunnel: a tunnel slow to relay the end of a test keeps its server busy.
  const iperfServers: ChildProcess[] = [];
  const iperfServer = async () => {
    const port = await freePort();
    iperfServers.push(spawn('taskset', ['-c', CLIENT_CORE, 'iperf3', '-s', '-p', String(port)], { stdio: 'ignore' }));
    await waitPort(port);
    return port;
  };
  const ctx: BenchContext = { dir, core: TUNNEL_CORE, clientCore: CLIENT_CORE, targets: { iperf: 0, blaster: targets.ports.blaster, echo: 0 }, tls, log };

  const notes: string[] = [];
  const running: RunningPeer[] = [];
  const described: Record<string, string> = {};
  const skipped: Record<string, string> = {};
  try {
    const only = process.env.BENCH_PEERS?.split(',');
    for (const peer of PEERS.filter((p) => !only || only.includes(p.name))) {
      const reason = peer.unavailable(ctx);
      if (reason) {
        skipped[peer.name] = reason;
        log(`SKIPPED ${peer.name}: ${reason}`);
        notes.push(`${peer.name} skipped: ${reason}`);
        continue;
      }
      described[peer.name] = peer.describe;
      running.push(await peer.start({ ...ctx, targets: { ...ctx.targets, iperf: await iperfServer(), echo: targets.ports.echo[running.length]! } }));
      log(`started ${peer.name}: ${peer.describe}`);
    }

    const samples: Record<string, number[]> = {};
    const add = (key: string, value: number) => (samples[key] ??= []).push(value);
    // A failed run is retried once; both failures are noted, never hidden.
    const attempt = async (key: string, run: () => Promise<number>) => {
      for (let tries = 1; tries <= 2; tries++) {
        try {
          return add(key, await run());
        } catch (error) {
          log(`  ${key} failed (try ${tries}): ${(error as Error).message}`);
          notes.push(`${key}: a run failed (${(error as Error).message.slice(0, 200)})`);
          await delay(1000); // e.g. iperf3 still busy with the last test, whose close the tunnel is still relaying
        }
      }
    };
    for (const peer of running) await iperf(peer.entrances.iperf, ['-R']).catch(() => 0); // warm-up
    for (let round = 1; round <= ROUNDS; round++) {
      log(`round ${round}/${ROUNDS}`);
      const order = running.map((_, i) => running[(i + round) % running.length]!);
      for (const peer of order) {
        const { name, entrances } = peer;
        await attempt(`${name}.down.gbps`, () => iperf(entrances.iperf, ['-R']));
        await attempt(`${name}.up.gbps`, () => iperf(entrances.iperf, []));
        await attempt(`${name}.parallel.gbps`, () => iperf(entrances.iperf, ['-R', '-P', String(PARALLEL)]));
        const stalled = await stalledReader(entrances.blaster, peer.preface?.blaster);
        await delay(1000); // every buffer on the way fills up behind the stalled reader
        await attempt(`${name}.parallelBesideStalled.gbps`, () => iperf(entrances.iperf, ['-R', '-P', String(PARALLEL)]));
        stalled.destroy();
        // The next measure starts once the tunnel has closed the stalled stream's target side too:
        // a blaster still pumping into a dead stream would slow whoever runs next.
        const closedAt = Date.now();
        while ((await targets.open()).blaster > 0 && Date.now() - closedAt < 30_000) await delay(50);
        add(`${name}.stalledCloseS`, (Date.now() - closedAt) / 1000);
        log(`  ${name}: down ${samples[`${name}.down.gbps`]?.at(-1)?.toFixed(2)} up ${samples[`${name}.up.gbps`]?.at(-1)?.toFixed(2)} parallel ${samples[`${name}.parallel.gbps`]?.at(-1)?.toFixed(2)} beside a stalled reader ${samples[`${name}.parallelBesideStalled.gbps`]?.at(-1)?.toFixed(2)} Gbit/s; the stalled stream's target closed after ${samples[`${name}.stalledCloseS`]!.at(-1)!.toFixed(2)} s`);
      }
    }

    // T5: idle streams, memory on each side (the JS heap too, where the process can tell).
    const idle: Record<string, IdleResult> = {};
    for (const peer of running) {
      const count = PEERS.find((p) => p.name === peer.name)?.idleStreams ?? T5_STREAMS;
      const memory = async () => ({ ...(await peer.settle?.()), entrance: treeRssKb(peer.entrancePids), exit: treeRssKb(peer.exitPids) });
      const before = await memory();
      const sockets: net.Socket[] = [];
      const opened = await openIdleStreams(peer.entrances.echo, count, peer.preface?.echo ?? Buffer.alloc(0), sockets);
      if (opened.failure) {
        log(`T5 ${peer.name} failed after ${opened.streams} streams: ${opened.failure.message}`);
        notes.push(`T5 ${peer.name}: stopped at ${opened.streams} of ${count} streams (${opened.failure.message}); memory is per stream of those`);
      }
      if (opened.streams) {
        await delay(2000);
        const after = await memory();
        const reached = (await targets.open()).echo;
        const perStream = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : (a - b) / opened.streams);
        idle[peer.name] = {
          streams: opened.streams,
          entranceKbPerStream: perStream(after.entrance, before.entrance)!,
          exitKbPerStream: perStream(after.exit, before.exit)!,
          entranceHeapKbPerStream: perStream(after.entranceHeapKb, before.entranceHeapKb),
          exitHeapKbPerStream: perStream(after.exitHeapKb, before.exitHeapKb),
        };
        const heap = (value: number | undefined) => (value === undefined ? '' : ` (JS heap ${value.toFixed(2)})`);
        log(`T5 ${peer.name}: ${opened.streams} idle streams (${reached} at the target), entrance ${idle[peer.name]!.entranceKbPerStream.toFixed(2)} KB/stream${heap(idle[peer.name]!.entranceHeapKbPerStream)}, exit ${idle[peer.name]!.exitKbPerStream.toFixed(2)} KB/stream${heap(idle[peer.name]!.exitHeapKbPerStream)}`);
      }
      for (const socket of sockets) socket.destroy();
      // The next tunnel starts once every stream of this one has closed at the target.
      const closedAt = Date.now();
      while ((await targets.open()).echo > 0 && Date.now() - closedAt < 60_000) await delay(100);
    }

    // S4: our relay killed again and again.
    const ours = running.find((peer) => peer.name === 'ours');
    let soak: SoakResult | undefined;
    if (ours) soak = await reconnectSoak(ours, KILLS, { echoConnections: async () => (await targets.open()).echo, log });
    else notes.push('S4 not run: our tunnel did not start');

    const m = Object.fromEntries(Object.entries(samples).map(([key, values]) => [key, median(values)]));
    const ratio = (a: string, b: string) => (m[a] !== undefined && m[b] !== undefined ? m[a]! / m[b]! : null);
    const results = {
      date: new Date().toISOString(),
      machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, node: process.version, kernel: os.release(), loadavgAtStart: load, loadavgAtEnd: os.loadavg() },
      settings: { rounds: ROUNDS, secondsPerRun: SECONDS, iperf3: `-t ${SECONDS} -O 1; down = -R (target to user), up = user to target; T3 with -R -P ${PARALLEL}`, tunnelCore: TUNNEL_CORE, clientCore: CLIENT_CORE, idleStreams: T5_STREAMS, relayKills: KILLS },
      peers: described,
      skipped,
      medians: m,
      goals: {
        'T1 ours/chisel >= 2': ratio('ours.down.gbps', 'chisel.down.gbps'),
        'T1 ours/v2ray >= 3': ratio('ours.down.gbps', 'v2ray.down.gbps'),
        'T1 ours/ssh >= 0.5': ratio('ours.down.gbps', 'ssh.down.gbps'),
        'T1 up ours/chisel (info)': ratio('ours.up.gbps', 'chisel.up.gbps'),
        'T1 up ours/v2ray (info)': ratio('ours.up.gbps', 'v2ray.up.gbps'),
        'T1 up ours/ssh (info)': ratio('ours.up.gbps', 'ssh.up.gbps'),
        'T3 others kept >= 0.9': ratio('ours.parallelBesideStalled.gbps', 'ours.parallel.gbps'),
        'T5 client KB/stream <= 3': idle.ours?.exitKbPerStream ?? null,
        'T5 relay KB/stream <= 3': idle.ours?.entranceKbPerStream ?? null,
        'S4 p50 reconnect s <= 1': soak?.p50ReconnectS ?? null,
        'S4 leaked fds == 0': soak?.leakedFds ?? null,
        'S4 leaked streams == 0': soak?.leakedStreams ?? null,
      } as Record<string, number | null>,
      t3OthersKept: Object.fromEntries(running.map((peer) => [peer.name, ratio(`${peer.name}.parallelBesideStalled.gbps`, `${peer.name}.parallel.gbps`)])),
      idleStreams: idle,
      soak,
      notes,
      samples,
    };
    const outDir = resultsDir();
    mkdirSync(outDir, { recursive: true });
    const stamp = results.date.slice(0, 10);
    writeFileSync(path.join(outDir, `tunnel-${stamp}.json`), JSON.stringify(results, null, 2) + '\n');
    const show = (value: number | null | undefined, digits = 3) => (value === null || value === undefined || Number.isNaN(value) ? 'n/a' : value.toFixed(digits));
    const lines = [
      `# Tunnel benchmark ${results.date}`,
      '',
      `Machine: ${results.machine.cpu}, ${results.machine.cores} cores, Node ${process.version}, load average at start ${load.map((l) => l.toFixed(2)).join(' ')}, at end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}.`,
      `${ROUNDS} interleaved rounds of iperf3 for ${SECONDS} s (after 1 s omitted); every tunnel process on core ${TUNNEL_CORE}, iperf3, the targets and the harness on core ${CLIENT_CORE}. T1 compares one stream target-to-user (iperf3 -R, how a device serves its pages); "up" is the other way.`,
      '',
      '| tunnel | what runs |',
      '| --- | --- |',
      ...Object.entries(described).map(([name, text]) => `| ${name} | ${text} |`),
      ...Object.entries(skipped).map(([name, text]) => `| ${name} | skipped: ${text} |`),
      '',
      '| goal | measured |',
      '| --- | --- |',
      ...Object.entries(results.goals).map(([goal, value]) => `| ${goal} | ${show(value)} |`),
      '',
      '| median | value |',
      '| --- | --- |',
      ...Object.entries(m).map(([key, value]) => `| ${key} | ${show(value, 2)} |`),
      '',
      '| tunnel | T3 others kept | T3 stalled stream closed at the target after (s) | T5 streams | T5 entrance KB/stream (JS heap) | T5 exit KB/stream (JS heap) |',
      '| --- | --- | --- | --- | --- | --- |',
      ...running.map((peer) => {
        const result = idle[peer.name];
        const memory = (rss?: number, heap?: number) => `${show(rss, 2)}${heap === undefined ? '' : ` (${show(heap, 2)})`}`;
        return `| ${peer.name} | ${show(results.t3OthersKept[peer.name])} | ${show(m[`${peer.name}.stalledCloseS`], 2)} | ${result?.streams ?? 'n/a'} | ${memory(result?.entranceKbPerStream, result?.entranceHeapKbPerStream)} | ${memory(result?.exitKbPerStream, result?.exitHeapKbPerStream)} |`;
      }),
      '',
      'Entrance: where the end user connects (our relay, ssh, ss-tunnel, chisel client); exit: beside the targets (our tunnel client, sshd, ss-server, chisel server).',
      '',
      '## Method',
      '',
      '- Ours runs the real TunnelClient (session, streams, credits, reconnect loop) and the real Relay, each in its own process; the remote table is given to the client directly instead of over the daemon socket, and its dialer reaches the targets over TCP instead of the proxy ingress sockets.',
      '- Our relay routes by SNI or Host and the client declares names (no port claims), so users of ours send an HTTP head naming the target first; iperf3 cannot, so a forwarder on the client core sends it for iperf3. The client drops those bytes before the target.',
      "- T3: four iperf3 -R streams, alone and beside one stream to a target that writes without end, whose user stopped reading. Each measure starts once the previous tunnel has closed that stream's target side.",
      '- T5: resident memory of the process trees with the idle streams open, minus before; our processes collect garbage first.',
      `- S4: the relay SIGKILLed with 5 streams open, then restarted on the same ports; the client's backoff keeps its shipped 1 s start, 60 s cap and full jitter, with the "stable link" time cut from 30 s to 1 s so ${KILLS} kills fit in the run. Fds of the client process before and after, streams left in the client and at the echo target.`,
      ...(soak ? ['', `S4: ${soak.kills} relay kills (SIGKILL, then a restart): reconnect p50 ${show(soak.p50ReconnectS)} s, p90 ${show(soak.p90ReconnectS)} s, max ${show(soak.maxReconnectS)} s, counted from the restarted relay listening to an echo through it; from the kill, p50 ${show(soak.p50KillToServingS)} s, of which the relay's restart p50 ${show(soak.p50RelayRestartS)} s. Client fds ${soak.fdsBefore} before, ${soak.fdsAfter} after; echo streams left at the target ${soak.leakedStreams}.`] : []),
      ...(notes.length ? ['', '## Notes', '', ...notes.map((note) => `- ${note}`)] : []),
      '',
    ];
    writeFileSync(path.join(outDir, `tunnel-${stamp}.md`), lines.join('\n'));
    log(lines.join('\n'));
  } finally {
    for (const peer of running) await peer.stop().catch(() => undefined);
    for (const server of iperfServers) await stopChild(server);
    await stopChild(targets.child);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
