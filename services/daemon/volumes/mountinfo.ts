// What is mounted, read from the kernel (/proc/self/mountinfo) every time rather than
// remembered: mounts outlive the daemon, and a restarted daemon must see the truth.
import { readFile } from 'node:fs/promises';

export interface MountEntry {
  mountPoint: string;
  /** e.g. "fuse.gocryptfs" */
  fsType: string;
  /** For gocryptfs: the cipher folder. */
  source: string;
  /** Per-mount options; "ro" or "rw" among them. */
  options: string[];
}

export const SELF_MOUNTINFO = '/proc/self/mountinfo';

export async function readMountInfo(file = SELF_MOUNTINFO): Promise<MountEntry[]> {
  return parseMountInfo(await readFile(file, 'utf8'));
}

/**
 * Format (proc(5)): "36 35 98:0 /root /mnt opts optional-fields... - fstype source superopts".
 * The optional fields vary in number; the " - " separator ends them.
 */
export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (separator < 0 || fields.length < separator + 3) continue;
    entries.push({
      mountPoint: unescapeOctal(fields[4]!),
      options: fields[5]!.split(','),
      fsType: fields[separator + 1]!,
      source: unescapeOctal(fields[separator + 2]!),
    });
  }
  return entries;
}

/** The kernel writes space, tab, newline and backslash in paths as \040, \011, \012, \134. */
function unescapeOctal(value: string): string {
  return value.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** The mount visible at a path: the last one listed, since later mounts stack on top. */
export function topMountAt(entries: MountEntry[], mountPoint: string): MountEntry | undefined {
  for (let i = entries.length - 1; i >= 0; i--) if (entries[i]!.mountPoint === mountPoint) return entries[i];
  return undefined;
}
