// The backup's contents (services/daemon/backup/archive-contents.ts): a folder packed and read back
// keeps files, modes, times and symlinks (absolute ones too); a hostile tar (a path leaving its
// volume, a write through a symlink, an unlisted volume, a missing manifest) is refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pack as tarPack, type Headers } from 'tar-stream';
import { CONTROL_NAME, ContentsWriter, MANIFEST_NAME, readContents, type BackupManifest } from '../../services/daemon/backup/archive-contents.js';
import { BackupArchiveError } from '../../services/daemon/backup/errors.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-backup-contents-'));
let count = 0;
test.after(() => rmSync(dir, { recursive: true, force: true }));

const manifest = (volumes: string[]): BackupManifest => ({
  format: 1,
  createdAt: new Date().toISOString(),
  device: { name: 'piccolo', version: 'test' },
  control: { schemaVersion: 1, rev: 1 },
  volumes,
  apps: [],
});

/** Fresh target folders for each listed volume, and for the control store. */
function targets(volumes: string[]) {
  const root = path.join(dir, `target-${++count}`);
  const map = new Map(volumes.map((volume) => [volume, path.join(root, volume)]));
  for (const folder of map.values()) mkdirSync(folder, { recursive: true });
  return { root, handlers: { onManifest: async () => ({ volumes: map, controlStoreDir: path.join(root, 'control') }) } };
}

/** A tar made entry by entry, as another tool (or an attacker with the key) might make it. */
function handMade(entries: { header: Headers; content?: string }[]) {
  const pack = tarPack();
  const run = (async () => {
    for (const { header, content } of entries) {
      await new Promise<void>((resolve, reject) => pack.entry(header, content ?? '', (err) => (err ? reject(err) : resolve())));
    }
    pack.finalize();
  })();
  void run;
  return pack;
}

async function refusedWith(source: NodeJS.ReadableStream, handlers: Parameters<typeof readContents>[1], words: RegExp): Promise<void> {
  try {
    await readContents(source as never, handlers);
  } catch (err) {
    assert.instance(err, BackupArchiveError, String(err));
    assert.match((err as Error).message, words);
    return;
  }
  assert.unreachable('a hostile archive was read');
}

test('a folder packed and read back: contents, modes, times, an absolute symlink, the control store', async () => {
  const source = path.join(dir, 'source');
  mkdirSync(path.join(source, 'sub', 'deep'), { recursive: true });
  writeFileSync(path.join(source, 'note.txt'), 'hello');
  writeFileSync(path.join(source, 'sub', 'deep', 'script.sh'), '#!/bin/sh\n', { mode: 0o750 });
  symlinkSync('/data/note.txt', path.join(source, 'sub', 'link'));
  utimesSync(path.join(source, 'note.txt'), new Date('2024-02-03T04:05:06Z'), new Date('2024-02-03T04:05:06Z'));
  const writer = new ContentsWriter();
  const { root, handlers } = targets(['app-x']);
  const read = readContents(writer.stream as never, handlers);
  await writer.addFile(MANIFEST_NAME, JSON.stringify(manifest(['app-x'])));
  await writer.addFile(CONTROL_NAME, '{"store": true}\n');
  await writer.addVolume('app-x', source);
  writer.finalize();
  await read;
  const out = path.join(root, 'app-x');
  assert.is(readFileSync(path.join(out, 'note.txt'), 'utf8'), 'hello');
  assert.is(statSync(path.join(out, 'note.txt')).mtime.toISOString(), '2024-02-03T04:05:06.000Z');
  assert.is(statSync(path.join(out, 'sub', 'deep', 'script.sh')).mode & 0o777, 0o750);
  assert.is(readlinkSync(path.join(out, 'sub', 'link')), '/data/note.txt');
  assert.is(readFileSync(path.join(root, 'control', 'control.json'), 'utf8'), '{"store": true}\n');
  assert.ok(writer.bytes >= 5 + 10, `bytes counted: ${writer.bytes}`);
});

const start = (volumes = ['app-x']) => [
  { header: { name: MANIFEST_NAME, type: 'file' as const }, content: JSON.stringify(manifest(volumes)) },
  { header: { name: CONTROL_NAME, type: 'file' as const }, content: '{}' },
];

test('a path that leaves its volume is refused, and nothing is written outside', async () => {
  const { root, handlers } = targets(['app-x']);
  await refusedWith(handMade([...start(), { header: { name: 'volumes/app-x/../../escaped.txt', type: 'file' }, content: 'out' }]), handlers, /leaves its volume/);
  assert.is(existsSync(path.join(root, 'escaped.txt')), false);
  assert.is(existsSync(path.join(dir, 'escaped.txt')), false);
});

test('a file written through a symlink the archive made is refused', async () => {
  const outside = path.join(dir, `outside-${++count}`);
  mkdirSync(outside);
  const { handlers } = targets(['app-x']);
  await refusedWith(
    handMade([...start(), { header: { name: 'volumes/app-x/door', type: 'symlink', linkname: outside } }, { header: { name: 'volumes/app-x/door/planted.txt', type: 'file' }, content: 'x' }]),
    handlers,
    /through a symlink/,
  );
  assert.is(existsSync(path.join(outside, 'planted.txt')), false);
});

test('an entry for a volume the manifest does not list, a missing manifest, a missing volume', async () => {
  await refusedWith(handMade([...start(), { header: { name: 'volumes/app-other/a.txt', type: 'file' }, content: 'x' }]), targets(['app-x']).handlers, /unexpected entry/);
  await refusedWith(handMade([{ header: { name: CONTROL_NAME, type: 'file' }, content: '{}' }]), targets([]).handlers, /not the manifest/);
  await refusedWith(handMade([...start(['app-x', 'app-y']), { header: { name: 'volumes/app-x/', type: 'directory' } }]), targets(['app-x', 'app-y']).handlers, /missing: app-y/);
  await refusedWith(handMade([start()[0]!]), targets(['app-x']).handlers, /no control store/);
});

test('a manifest naming a bad volume or the control volume is refused', async () => {
  const bad = (volumes: string[]) => handMade([{ header: { name: MANIFEST_NAME, type: 'file' }, content: JSON.stringify(manifest(volumes)) }]);
  await refusedWith(bad(['../etc']), targets([]).handlers, /bad volume name/);
  await refusedWith(bad(['control']), targets([]).handlers, /control store file/);
});

test.run();
