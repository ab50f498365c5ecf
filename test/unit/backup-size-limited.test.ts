// A backup packs a size-limited volume's files through its mounted folder, never its image: the
// image is sparse (a 1 GiB limit would go into the archive as 1 GiB of zeros), and a restore moves
// the files into a new one (volumes/size-limited.ts). Real files, real tar stream.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { extract } from 'tar-stream';
import { ContentsWriter } from '../../services/daemon/backup/archive-contents.js';
import { SIZE_LIMIT_DIR } from '../../services/daemon/volumes/size-limited.js';

test('the volume\'s .size-limits images stay out of the archive; the folders\' files go in', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-backup-limits-'));
  try {
    mkdirSync(path.join(dir, 'data'));
    writeFileSync(path.join(dir, 'data', 'notes.txt'), 'kept');
    mkdirSync(path.join(dir, SIZE_LIMIT_DIR));
    writeFileSync(path.join(dir, SIZE_LIMIT_DIR, 'data.ext4'), '');
    truncateSync(path.join(dir, SIZE_LIMIT_DIR, 'data.ext4'), 2 ** 30);
    writeFileSync(path.join(dir, 'other.size-limits'), 'a file whose name only ends like it');
    const writer = new ContentsWriter();
    const names: string[] = [];
    let bytes = 0;
    const reader = extract();
    reader.on('entry', (header, stream, next) => {
      names.push(header.name);
      stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
      stream.on('end', next);
      stream.resume();
    });
    const read = new Promise((resolve, reject) => reader.on('finish', resolve).on('error', reject));
    writer.stream.pipe(reader);
    await writer.addVolume('app-notes', dir);
    writer.finalize();
    await read;
    assert.equal(names.sort(), ['volumes/app-notes/', 'volumes/app-notes/data', 'volumes/app-notes/data/notes.txt', 'volumes/app-notes/other.size-limits']);
    assert.ok(bytes < 1024, `${bytes} bytes of file contents`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
