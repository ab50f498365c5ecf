// The audit log's tail: newest first, a bounded read from the end of the file however large it
// is, a torn last line (a crash mid-append) skipped, and the limit checked.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BadRequestError } from '../../services/common/errors.js';
import { createLogger } from '../../services/common/logger.js';
import { AuditLog } from '../../services/daemon/auth/audit.js';
import { parseAuditLimit, parseAuditTail, readAuditTail } from '../../services/daemon/system/audit-tail.js';
import { thrown } from '../support/assertions.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-audit-'));
const logger = createLogger({ service: 'test', write: () => {} });

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('entries the real AuditLog wrote come back newest first, up to the limit', async () => {
  let clock = Date.parse('2026-12-01T10:00:00Z');
  const file = path.join(dir, 'written.log');
  const audit = new AuditLog({ file, logger, now: () => clock });
  for (let i = 0; i < 5; i++) {
    await audit.record({ event: 'auth.login', outcome: i % 2 ? 'denied' : 'ok', client: '127.0.0.2', detail: `n${i}` });
    clock += 1000;
  }
  assert.is(audit.file, file);
  const entries = await readAuditTail(file, 3);
  assert.equal(entries, [
    { ts: '2026-12-01T10:00:04.000Z', event: 'auth.login', outcome: 'ok', client: '127.0.0.2', detail: 'n4' },
    { ts: '2026-12-01T10:00:03.000Z', event: 'auth.login', outcome: 'denied', client: '127.0.0.2', detail: 'n3' },
    { ts: '2026-12-01T10:00:02.000Z', event: 'auth.login', outcome: 'ok', client: '127.0.0.2', detail: 'n2' },
  ]);
  assert.is((await readAuditTail(file, 100)).length, 5);
});

test('no log yet: no entries', async () => {
  assert.equal(await readAuditTail(path.join(dir, 'never-written.log'), 100), []);
});

test('a torn last line and lines that are not entries are skipped', async () => {
  const file = path.join(dir, 'torn.log');
  writeFileSync(file, [
    JSON.stringify({ ts: '2026-12-01T10:00:00.000Z', event: 'setup', outcome: 'ok' }),
    'not json',
    JSON.stringify({ ts: '2026-12-01T10:00:01.000Z', event: 'x', outcome: 'maybe' }),
    JSON.stringify({ ts: '2026-12-01T10:00:02.000Z', event: 'crypto.lock', outcome: 'ok', client: '127.0.0.3' }),
  ].join('\n') + '\n');
  appendFileSync(file, '{"ts":"2026-12-01T10:00:03.000Z","event":"auth.lo');
  assert.equal(await readAuditTail(file, 10), [
    { ts: '2026-12-01T10:00:02.000Z', event: 'crypto.lock', outcome: 'ok', client: '127.0.0.3' },
    { ts: '2026-12-01T10:00:00.000Z', event: 'setup', outcome: 'ok' },
  ]);
});

test('a large log: only the last maxBytes are read, the cut first line dropped', async () => {
  const file = path.join(dir, 'large.log');
  const line = (i: number) => JSON.stringify({ ts: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(), event: 'auth.login', outcome: 'ok', detail: `entry-${String(i).padStart(5, '0')}` });
  // Every line the same length, so a window can be measured in lines.
  writeFileSync(file, Array.from({ length: 20_000 }, (_, i) => line(i)).join('\n') + '\n');
  const lineBytes = line(0).length + 1;
  // A window of 10.5 lines: ten whole entries and the end of an eleventh, which must not show.
  const entries = await readAuditTail(file, 1000, Math.floor(lineBytes * 10.5));
  assert.is(entries.length, 10);
  assert.is(entries[0]!.detail, 'entry-19999');
  assert.is(entries[9]!.detail, 'entry-19990');
  // A window that begins exactly at a line keeps that line.
  assert.is((await readAuditTail(file, 1000, lineBytes * 3)).length, 3);
  // The pure part: the first line of a window cut mid-line goes even when what is left parses.
  assert.equal(parseAuditTail(`${line(5)}\n${line(6)}\n`, true, 10).map((e) => e.detail), ['entry-00006']);
});

test('limit: default 100, 1-1000, anything else a 400 naming limit', () => {
  assert.is(parseAuditLimit(null), 100);
  assert.is(parseAuditLimit('1'), 1);
  assert.is(parseAuditLimit('1000'), 1000);
  for (const bad of ['0', '1001', '-1', '2.5', 'ten', '', '1e3']) {
    const err = thrown(() => parseAuditLimit(bad), BadRequestError);
    assert.match(err.message, /^limit: /, bad);
  }
});

test.run();
