// Samples the device's CPU, memory, storage and temperature. CPU use is a delta of /proc/stat
// between two readings, so the sampler keeps the previous reading: every intervalMs it takes a
// new one, hands the metrics to onSample (the events stream's system.metrics) and makes it the
// new baseline. A status request reads everything fresh and measures CPU since that baseline,
// without moving it. The files come through an injected reader and time from an injected clock,
// so tests drive both.
import { readFile, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { Module } from '../../common/lifecycle.js';
import type { Logger } from '../../common/logger.js';
import { cpuPercentBetween, parseCpuTimes, parseLoadAverage, parseMemInfo, parseUptimeSeconds, type CpuTimes } from './proc.js';
import { readTemperature } from './thermal.js';
import type { StorageMetrics, SystemMetrics, Temperature } from './types.js';

export interface SystemReader {
  /** A file under /proc by its name: "stat", "meminfo", "loadavg", "uptime". */
  proc(name: 'stat' | 'meminfo' | 'loadavg' | 'uptime'): Promise<string>;
  /** Size and use of the file system holding dir. */
  disk(dir: string): Promise<{ totalBytes: number; usedBytes: number }>;
  temperature(): Promise<Temperature | null>;
}

/** The real machine: /proc, statfs(2) and sysfs (roots are parameters for tests). */
export function hostReader(roots: { proc?: string; thermal?: string } = {}): SystemReader {
  return {
    proc: (name) => readFile(path.join(roots.proc ?? '/proc', name), 'utf8'),
    disk: async (dir) => {
      const fs = await statfs(dir);
      // Used as df counts it: blocks not free. The reserved blocks count as neither used nor available to apps.
      return { totalBytes: fs.blocks * fs.bsize, usedBytes: (fs.blocks - fs.bfree) * fs.bsize };
    },
    temperature: () => readTemperature(roots.thermal),
  };
}

export interface MetricsSamplerOptions {
  reader: SystemReader;
  /** The state folder: its file system is the device's "data" storage. */
  stateDir: string;
  intervalMs: number;
  onSample: (metrics: SystemMetrics) => void;
  logger: Logger;
  now?: () => number;
}

/** A CPU window shorter than this says little (a few ticks): the last full window's figure is used instead. */
const MIN_CPU_WINDOW_MS = 1000;

export class MetricsSampler implements Module {
  readonly name = 'metrics-sampler';
  private baseline: { times: CpuTimes; at: number } | undefined;
  private lastPercent = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: MetricsSamplerOptions) {}

  async start(): Promise<void> {
    this.stopped = false;
    this.baseline = { times: parseCpuTimes(await this.options.reader.proc('stat')), at: this.now() };
    this.timer = setInterval(() => {
      // A slow disk must not pile samples up: skip a beat while one is still running.
      if (!this.inFlight) this.inFlight = this.tick().then(() => (this.inFlight = undefined));
    }, this.options.intervalMs);
  }

  /** Cancels the timer and waits for a sample in progress, which then publishes nothing. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.inFlight;
  }

  /** Everything read now; CPU over the time since the last periodic sample. */
  async current(): Promise<SystemMetrics> {
    const times = parseCpuTimes(await this.options.reader.proc('stat'));
    const baseline = this.baseline;
    const percent = baseline && this.now() - baseline.at >= MIN_CPU_WINDOW_MS ? cpuPercentBetween(baseline.times, times) : this.lastPercent;
    return this.assemble(times, percent);
  }

  async uptimeSeconds(): Promise<number> {
    return parseUptimeSeconds(await this.options.reader.proc('uptime'));
  }

  /** One periodic sample; public so tests need not wait for the timer. */
  async tick(): Promise<SystemMetrics | undefined> {
    try {
      const times = parseCpuTimes(await this.options.reader.proc('stat'));
      const percent = this.baseline ? cpuPercentBetween(this.baseline.times, times) : 0;
      const metrics = await this.assemble(times, percent);
      if (this.stopped) return undefined;
      this.baseline = { times, at: this.now() };
      this.lastPercent = percent;
      this.options.onSample(metrics);
      return metrics;
    } catch (err) {
      // The next beat tries again; a dashboard missing one update is better than a dead sampler.
      this.options.logger.warn('system metrics sample failed', { err });
      return undefined;
    }
  }

  private async assemble(times: CpuTimes, percent: number): Promise<SystemMetrics> {
    const { reader, stateDir } = this.options;
    const [meminfo, loadavg, disk, temperature] = await Promise.all([reader.proc('meminfo'), reader.proc('loadavg'), reader.disk(stateDir), reader.temperature()]);
    const storage: StorageMetrics[] = [{ name: 'data', path: stateDir, ...disk }];
    return { cpu: { percent, cores: times.cores, load: parseLoadAverage(loadavg) }, memory: parseMemInfo(meminfo), storage, temperature };
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}
