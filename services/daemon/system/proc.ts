// Pure parsers of the kernel's text files (/proc/stat, /proc/meminfo, /proc/loadavg,
// /proc/uptime). No I/O here: the sampler reads the files, these turn text into numbers, and
// unit tests feed them text captured from a real machine. A file that does not parse throws,
// naming the file, rather than handing the dashboard a NaN.

/** Cumulative CPU time of all cores since boot, in clock ticks. */
export interface CpuTimes {
  /** Every tick counted once (guest time is already inside user time, so it is left out). */
  total: number;
  /** Ticks doing nothing: idle plus waiting for I/O. */
  idle: number;
  cores: number;
}

export function parseCpuTimes(stat: string): CpuTimes {
  const lines = stat.split('\n');
  const aggregate = lines.find((line) => /^cpu\s/.test(line));
  if (!aggregate) throw new Error('/proc/stat: no aggregate "cpu" line');
  const fields = aggregate.trim().split(/\s+/).slice(1).map(Number);
  if (fields.length < 4 || fields.some((n) => !Number.isFinite(n))) throw new Error('/proc/stat: malformed "cpu" line');
  // user nice system idle iowait irq softirq steal [guest guest_nice]
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  const cores = lines.filter((line) => /^cpu\d+\s/.test(line)).length;
  return { total: user + nice + system + idle + iowait + irq + softirq + steal, idle: idle + iowait, cores: Math.max(cores, 1) };
}

/** Busy share between two readings, 0-100; 0 when no tick passed (nothing to measure). */
export function cpuPercentBetween(before: CpuTimes, after: CpuTimes): number {
  const total = after.total - before.total;
  const idle = after.idle - before.idle;
  if (total <= 0) return 0;
  return round1(Math.min(100, Math.max(0, ((total - idle) / total) * 100)));
}

export function parseLoadAverage(loadavg: string): [number, number, number] {
  const values = loadavg.trim().split(/\s+/).slice(0, 3).map((v) => (/^\d+(\.\d+)?$/.test(v) ? Number(v) : NaN));
  if (values.length !== 3 || values.some((n) => !Number.isFinite(n))) throw new Error('/proc/loadavg: expected three load averages');
  return values as [number, number, number];
}

export function parseMemInfo(meminfo: string): { totalBytes: number; availableBytes: number; usedBytes: number } {
  const kib = new Map<string, number>();
  for (const line of meminfo.split('\n')) {
    const match = /^(\w+):\s+(\d+)\s*kB/.exec(line);
    if (match) kib.set(match[1]!, Number(match[2]));
  }
  const total = kib.get('MemTotal');
  if (total === undefined) throw new Error('/proc/meminfo: no MemTotal');
  // MemAvailable exists since Linux 3.14; before it, free plus page cache is the usual estimate.
  const available = kib.get('MemAvailable') ?? (kib.get('MemFree') ?? 0) + (kib.get('Buffers') ?? 0) + (kib.get('Cached') ?? 0);
  const totalBytes = total * 1024;
  const availableBytes = Math.min(available * 1024, totalBytes);
  return { totalBytes, availableBytes, usedBytes: totalBytes - availableBytes };
}

export function parseUptimeSeconds(uptime: string): number {
  const first = uptime.trim().split(/\s+/)[0] ?? '';
  const seconds = /^\d+(\.\d+)?$/.test(first) ? Number(first) : NaN;
  if (!Number.isFinite(seconds)) throw new Error('/proc/uptime: expected seconds since boot');
  return Math.floor(seconds);
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
