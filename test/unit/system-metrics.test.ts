// The system metrics: the /proc parsers on text captured from the build machine's real /proc
// (test/unit/fixtures/proc: two /proc/stat readings around one second of one core spinning),
// the thermal zones on a folder laid out like sysfs, the sampler with an injected reader and
// clock, and once against the real /proc, statfs and sysfs of this machine.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../services/common/logger.js';
import { cpuPercentBetween, parseCpuTimes, parseLoadAverage, parseMemInfo, parseUptimeSeconds } from '../../services/daemon/system/proc.js';
import { parseZone, readTemperature } from '../../services/daemon/system/thermal.js';
import { MetricsSampler, hostReader, type SystemReader } from '../../services/daemon/system/metrics-sampler.js';
import type { SystemMetrics } from '../../services/daemon/system/types.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/proc/${name}`, import.meta.url), 'utf8');
const logger = createLogger({ service: 'test', write: () => {} });

test('/proc/stat: the aggregate line, guest time left out, one core per cpuN line', () => {
  const times = parseCpuTimes(fixture('stat-before'));
  // cpu  476509 1110 163251 1366650 4848 0 35084 308 0 0
  assert.equal(times, { total: 476509 + 1110 + 163251 + 1366650 + 4848 + 0 + 35084 + 308, idle: 1366650 + 4848, cores: 2 });
  // Guest ticks are already inside user: counting them again would inflate the total.
  const withGuest = parseCpuTimes('cpu  100 0 0 100 0 0 0 0 50 0\ncpu0 100 0 0 100 0 0 0 0 50 0\n');
  assert.is(withGuest.total, 200);
});

test('CPU use between the two captured readings: one of two cores busy is 50 %', () => {
  assert.is(cpuPercentBetween(parseCpuTimes(fixture('stat-before')), parseCpuTimes(fixture('stat-after'))), 50);
  const same = parseCpuTimes(fixture('stat-before'));
  assert.is(cpuPercentBetween(same, same), 0, 'no tick passed: nothing measured');
});

test('/proc/stat that is not one is an error naming the file', () => {
  assert.throws(() => parseCpuTimes('intr 1 2 3\n'), /\/proc\/stat/);
  assert.throws(() => parseCpuTimes('cpu  a b c d\n'), /malformed/);
});

test('/proc/meminfo: total and MemAvailable in bytes; used is the rest', () => {
  const memory = parseMemInfo(fixture('meminfo'));
  assert.is(memory.totalBytes, 24683652 * 1024);
  assert.is(memory.availableBytes, 23761084 * 1024);
  assert.is(memory.usedBytes, memory.totalBytes - memory.availableBytes);
  // A kernel older than 3.14 has no MemAvailable: free + buffers + cache.
  assert.equal(parseMemInfo('MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 10 kB\nCached: 200 kB\n'), { totalBytes: 1024000, availableBytes: 317440, usedBytes: 706560 });
  assert.throws(() => parseMemInfo('MemFree: 1 kB\n'), /MemTotal/);
});

test('/proc/loadavg and /proc/uptime', () => {
  assert.equal(parseLoadAverage(fixture('loadavg')), [0.98, 0.45, 0.49]);
  assert.is(parseUptimeSeconds(fixture('uptime')), 10315);
  assert.throws(() => parseLoadAverage('0.1 x'), /loadavg/);
  assert.throws(() => parseUptimeSeconds(''), /uptime/);
});

function fakeSysfs(zones: Record<string, { type: string; temp: string | null }>): string {
  const root = mkdtempSync(path.join(tmpdir(), 'piccolo-thermal-'));
  for (const [zone, { type, temp }] of Object.entries(zones)) {
    mkdirSync(path.join(root, zone));
    writeFileSync(path.join(root, zone, 'type'), `${type}\n`);
    // null: a zone whose temp cannot be read (no file, as when the driver refuses reads).
    if (temp !== null) writeFileSync(path.join(root, zone, 'temp'), `${temp}\n`);
  }
  mkdirSync(path.join(root, 'cooling_device0')); // not a zone: ignored
  return root;
}

test('thermal zones: the processor zone is preferred, millidegrees become degrees', async () => {
  const root = fakeSysfs({
    thermal_zone0: { type: 'acpitz', temp: '27800' },
    thermal_zone1: { type: 'x86_pkg_temp', temp: '45123' },
    thermal_zone2: { type: 'iwlwifi_1', temp: null },
  });
  try {
    assert.equal(await readTemperature(root), { celsius: 45.1, sensor: 'x86_pkg_temp' });
  } finally {
    rmSync(root, { recursive: true });
  }
});

test('thermal zones: without a processor zone the first readable one; none at all is null', async () => {
  const some = fakeSysfs({ thermal_zone10: { type: 'board', temp: '39000' }, thermal_zone2: { type: 'iwlwifi_1', temp: null }, thermal_zone3: { type: 'acpitz', temp: '30000' } });
  const empty = fakeSysfs({});
  try {
    assert.equal(await readTemperature(some), { celsius: 30, sensor: 'acpitz' }, 'zones in numeric order: 3 before 10');
    assert.is(await readTemperature(empty), null);
    assert.is(await readTemperature(path.join(empty, 'missing')), null, 'no thermal class at all (a VM)');
  } finally {
    rmSync(some, { recursive: true });
    rmSync(empty, { recursive: true });
  }
});

test('thermal readings without a sensor behind them are not temperatures', () => {
  assert.is(parseZone('acpitz', '0'), undefined);
  assert.is(parseZone('acpitz', '-273000'), undefined);
  assert.is(parseZone('acpitz', 'N/A'), undefined);
  assert.equal(parseZone('cpu-thermal', '51540'), { celsius: 51.5, sensor: 'cpu-thermal' });
});

/** A reader that serves the captured files, the second /proc/stat after the first tick. */
function capturedReader(): SystemReader & { stats: string[] } {
  const stats = [fixture('stat-before'), fixture('stat-after')];
  let reads = 0;
  return {
    stats,
    proc: async (name) => (name === 'stat' ? stats[Math.min(reads++, stats.length - 1)]! : fixture(name)),
    disk: async () => ({ totalBytes: 1000, usedBytes: 250 }),
    temperature: async () => null,
  };
}

test('sampler: each tick measures CPU since the previous one and publishes; stop cancels', async () => {
  let clock = 1_000_000;
  const published: SystemMetrics[] = [];
  const sampler = new MetricsSampler({ reader: capturedReader(), stateDir: '/data', intervalMs: 3_600_000, onSample: (m) => published.push(m), logger, now: () => clock });
  await sampler.start();
  clock += 10_000;
  const first = await sampler.tick();
  assert.equal(first, {
    cpu: { percent: 50, cores: 2, load: [0.98, 0.45, 0.49] },
    memory: parseMemInfo(fixture('meminfo')),
    storage: [{ name: 'data', path: '/data', totalBytes: 1000, usedBytes: 250 }],
    temperature: null,
  });
  assert.equal(published, [first]);
  // The reader now keeps answering the second reading: no tick passed, 0 %.
  clock += 10_000;
  assert.is((await sampler.tick())!.cpu.percent, 0);
  await sampler.stop();
  assert.is(await sampler.tick(), undefined, 'a sample after stop publishes nothing');
  assert.is(published.length, 2);
});

test('sampler: a status read right after a tick uses that tick\'s figure, not a window of a few ticks', async () => {
  let clock = 0;
  const reader = capturedReader();
  const sampler = new MetricsSampler({ reader, stateDir: '/data', intervalMs: 3_600_000, onSample: () => {}, logger, now: () => clock });
  await sampler.start();
  clock = 10_000;
  await sampler.tick();
  clock = 10_100;
  assert.is((await sampler.current()).cpu.percent, 50);
  await sampler.stop();
});

test('sampler: a failing read is logged and skipped, never thrown from the timer', async () => {
  const warnings: string[] = [];
  const failing = createLogger({ service: 'test', write: (line) => warnings.push(line) });
  const reader: SystemReader = { ...capturedReader(), disk: async () => Promise.reject(new Error('EIO')) };
  const sampler = new MetricsSampler({ reader, stateDir: '/data', intervalMs: 3_600_000, onSample: () => assert.unreachable('published'), logger: failing });
  await sampler.start();
  assert.is(await sampler.tick(), undefined);
  assert.ok(warnings.some((line) => line.includes('system metrics sample failed')));
  await sampler.stop();
});

test('sampler against this machine: real /proc, statfs of a real folder, real sysfs', async () => {
  const published: SystemMetrics[] = [];
  const sampler = new MetricsSampler({ reader: hostReader(), stateDir: tmpdir(), intervalMs: 50, onSample: (m) => published.push(m), logger });
  await sampler.start();
  const deadline = Date.now() + 5000;
  while (published.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await sampler.stop();
  const count = published.length;
  assert.ok(count >= 2, `timer published ${count} samples`);
  const metrics = published.at(-1)!;
  assert.is(metrics.cpu.cores, cpus().length);
  assert.ok(metrics.cpu.percent >= 0 && metrics.cpu.percent <= 100, String(metrics.cpu.percent));
  assert.is(metrics.memory.totalBytes, totalmem());
  assert.ok(metrics.memory.availableBytes > 0 && metrics.memory.availableBytes <= metrics.memory.totalBytes);
  const [storage] = metrics.storage;
  assert.ok(storage!.totalBytes > storage!.usedBytes && storage!.usedBytes > 0, JSON.stringify(storage));
  assert.ok(metrics.temperature === null || (metrics.temperature.celsius > 0 && metrics.temperature.sensor.length > 0));
  assert.ok((await sampler.uptimeSeconds()) > 0);
  await new Promise((r) => setTimeout(r, 120));
  assert.is(published.length, count, 'nothing published after stop');
});

test.run();
