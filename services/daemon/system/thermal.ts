// The board's temperature from sysfs: /sys/class/thermal/thermal_zone*/{type,temp}, temp in
// millidegrees Celsius. A Raspberry Pi has "cpu-thermal", a PC "x86_pkg_temp" (and often
// "acpitz"); a VM usually has no zone at all, which is null, not an error. The root is a
// parameter so a test can lay out a folder like sysfs.
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Temperature } from './types.js';

export const SYSFS_THERMAL = '/sys/class/thermal';

/** The zones that measure the processor itself, best first; any other zone only when none of these exists. */
const PREFERRED = ['cpu-thermal', 'cpu_thermal', 'x86_pkg_temp', 'soc-thermal', 'soc_thermal', 'coretemp', 'k10temp'];

/** Physically possible readings: a zone that says 0 or -273 has no sensor behind it. */
const PLAUSIBLE = { min: -40, max: 150 };

export async function readTemperature(root = SYSFS_THERMAL): Promise<Temperature | null> {
  let entries: string[];
  try {
    entries = (await readdir(root)).filter((name) => /^thermal_zone\d+$/.test(name));
  } catch {
    return null;
  }
  const zones: Temperature[] = [];
  for (const zone of entries.sort((a, b) => zoneNumber(a) - zoneNumber(b))) {
    const reading = await readZone(path.join(root, zone));
    if (reading) zones.push(reading);
  }
  return pickZone(zones);
}

export function pickZone(zones: Temperature[]): Temperature | null {
  for (const sensor of PREFERRED) {
    const match = zones.find((zone) => zone.sensor === sensor);
    if (match) return match;
  }
  return zones[0] ?? null;
}

/** A zone's reading, or undefined when it cannot be read (some zones refuse reads: EIO, ENODATA). */
export async function readZone(dir: string): Promise<Temperature | undefined> {
  try {
    const [type, temp] = await Promise.all([readFile(path.join(dir, 'type'), 'utf8'), readFile(path.join(dir, 'temp'), 'utf8')]);
    return parseZone(type, temp);
  } catch {
    return undefined;
  }
}

export function parseZone(type: string, temp: string): Temperature | undefined {
  const millidegrees = Number(temp.trim());
  if (!temp.trim() || !Number.isFinite(millidegrees)) return undefined;
  const celsius = Math.round(millidegrees / 100) / 10;
  if (celsius <= PLAUSIBLE.min || celsius >= PLAUSIBLE.max || millidegrees === 0) return undefined;
  return { celsius, sensor: type.trim() || 'unknown' };
}

function zoneNumber(name: string): number {
  return Number(name.slice('thermal_zone'.length));
}
