// The newest entries of the audit log (auth/audit.ts: one JSON line per event, appended). The
// file only grows, so only its tail is read, a bounded number of bytes, whatever its size. The
// first line of that window is usually cut and is dropped; a last line torn by a crash (or being
// appended right now) does not parse and is skipped, as is any other line that is not an entry.
import { open } from 'node:fs/promises';
import { BadRequestError } from '../../common/errors.js';
import type { AuditEntryView } from './types.js';

export const AUDIT_LIMIT = { default: 100, max: 1000 };
/** About 2,000 entries of ~120 bytes: more than the largest limit asks for. */
export const AUDIT_TAIL_BYTES = 256 * 1024;

/** ?limit= as the API takes it: absent is the default; anything but a whole number in range is a 400 naming it. */
export function parseAuditLimit(raw: string | null): number {
  if (raw === null) return AUDIT_LIMIT.default;
  const limit = /^\d{1,7}$/.test(raw) ? Number(raw) : NaN;
  if (!(limit >= 1 && limit <= AUDIT_LIMIT.max)) throw new BadRequestError(`limit: a whole number from 1 to ${AUDIT_LIMIT.max}`);
  return limit;
}

export async function readAuditTail(file: string, limit: number, maxBytes = AUDIT_TAIL_BYTES): Promise<AuditEntryView[]> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    // No event recorded yet: the file is created by the first one.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  try {
    const { size } = await handle.stat();
    const start = Math.max(0, size - maxBytes);
    // One byte more in front: a window that happens to begin right after a newline keeps its first line.
    const from = Math.max(0, start - 1);
    const buffer = Buffer.alloc(size - from);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, from);
    const text = buffer.subarray(0, bytesRead).toString('utf8');
    if (start === 0) return parseAuditTail(text, false, limit);
    return text.startsWith('\n') ? parseAuditTail(text.slice(1), false, limit) : parseAuditTail(text, true, limit);
  } finally {
    await handle.close();
  }
}

/** Pure: text from the end of the file (startsMidLine when it does not begin at offset 0), newest first. */
export function parseAuditTail(text: string, startsMidLine: boolean, limit: number): AuditEntryView[] {
  const lines = text.split('\n');
  if (startsMidLine) lines.shift();
  const entries: AuditEntryView[] = [];
  for (let i = lines.length - 1; i >= 0 && entries.length < limit; i--) {
    const entry = parseEntry(lines[i]!);
    if (entry) entries.push(entry);
  }
  return entries;
}

function parseEntry(line: string): AuditEntryView | undefined {
  if (!line.trim()) return undefined;
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || typeof value.ts !== 'string' || typeof value.event !== 'string') return undefined;
  if (value.outcome !== 'ok' && value.outcome !== 'denied' && value.outcome !== 'error') return undefined;
  const entry: AuditEntryView = { ts: value.ts, event: value.event, outcome: value.outcome };
  if (typeof value.client === 'string') entry.client = value.client;
  if (typeof value.detail === 'string') entry.detail = value.detail;
  return entry;
}
