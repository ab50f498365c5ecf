// Readers of the tools' documented output: `snapper --json list`, `tukit snapshots -f ...`,
// `findmnt --json`, `systemctl show -p ...`, and zypper's progress lines inside
// transactional-update's output. Pure, so each shape is unit tested.
import type { OsSnapshot, OsUpdateProgress } from './types.js';

/** `snapper --json list`: { "<config>": [ { number, default, active, date, description, userdata } ] }. */
export function parseSnapperJson(text: string, config = 'root'): OsSnapshot[] {
  const doc = JSON.parse(text) as Record<string, unknown>;
  const rows = doc[config];
  if (!Array.isArray(rows)) throw new Error(`snapper --json list: no "${config}" list in its output`);
  return rows
    .filter((row): row is Record<string, unknown> => typeof row === 'object' && row !== null)
    .filter((row) => typeof row.number === 'number' && row.number > 0) // 0 is "current", the live file system
    .map((row) => ({
      number: row.number as number,
      date: snapperDate(row.date),
      description: typeof row.description === 'string' ? row.description : '',
      current: row.active === true,
      default: row.default === true,
      important: (row.userdata as Record<string, unknown> | null)?.important === 'yes',
    }));
}

/** `tukit snapshots -f default,active,number,date,description`: tab-separated, yes/no flags. */
export function parseTukitSnapshots(text: string): OsSnapshot[] {
  return text
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => {
      const [isDefault, active, number, date, ...description] = line.split('\t');
      return { number: Number(number), date: snapperDate(date), description: description.join('\t').trim(), current: active === 'yes', default: isDefault === 'yes', important: false };
    })
    .filter((s) => Number.isInteger(s.number) && s.number > 0);
}

/** snapper prints "2026-11-20 03:30:11" (with --utc --iso: "2026-11-20T03:30:11"), in UTC when --utc is given. */
function snapperDate(raw: unknown): string | undefined {
  if (typeof raw !== 'string' || !raw) return undefined;
  const date = new Date(`${raw.replace(' ', 'T')}${/[zZ]|[+-]\d\d:?\d\d$/.test(raw) ? '' : 'Z'}`);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** `findmnt --json --output SOURCE,FSTYPE,OPTIONS /`. */
export function parseFindmnt(text: string): { source: string; fstype: string; readOnly: boolean } | undefined {
  const fs = (JSON.parse(text) as { filesystems?: Record<string, string>[] }).filesystems?.[0];
  if (!fs) return undefined;
  return { source: fs.source ?? '', fstype: fs.fstype ?? '', readOnly: (fs.options ?? '').split(',').includes('ro') };
}

/** `systemctl show UNIT -p A,B`: Key=Value lines. */
export function parseSystemctlShow(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) values[line.slice(0, at)] = line.slice(at + 1);
  }
  return values;
}

/**
 * zypper's counters in transactional-update's output: "Retrieving: pkg (3/12), 1.2 MiB" while
 * downloading, "(3/12) Installing: pkg ...[done]" while installing. undefined: a line that says
 * nothing about progress.
 */
export function progressOf(line: string): OsUpdateProgress | undefined {
  const counter = /\((\d+)\/(\d+)\)/.exec(line);
  const fraction = counter ? Math.min(1, Number(counter[1]) / Math.max(1, Number(counter[2]))) : undefined;
  if (/^Retrieving: /.test(line) && fraction !== undefined) return { phase: 'downloading', percent: Math.round(fraction * 50), line };
  if (/^\(\d+\/\d+\) (Installing|Removing):/.test(line) && fraction !== undefined) return { phase: 'installing', percent: 50 + Math.round(fraction * 50), line };
  if (/^New default snapshot is #\d+/.test(line)) return { phase: 'finishing', percent: 100, line };
  return undefined;
}

/** "New default snapshot is #5 (/.snapshots/5/snapshot)." */
export function newSnapshotOf(output: string): number | undefined {
  const match = /New default snapshot is #(\d+)/.exec(output);
  return match ? Number(match[1]) : undefined;
}
