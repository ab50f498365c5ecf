// The pure parts of storage: which app mounts which shared folder (the System card), each app's
// media mounts, and which updates would change a size limit that is fixed once a volume is made.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mediaMounts, sharedFolders } from '../../services/daemon/apps/storage-view.js';
import { limitChangeProblems } from '../../services/daemon/apps/spec/storage-limits.js';
import { parseAppSpec } from '../../services/daemon/apps/spec/validate.js';

const jellyfin = parseAppSpec(['name: jellyfin', 'services:', '  web:', '    image: jellyfin:10', '    mounts:', '      - { media: Media, container: /media, read_only: true }', 'listeners:', '  - { name: tv, guest_port: 8096, protocol: http }'].join('\n'));
const torrents = parseAppSpec(
  ['name: torrents', 'services:', '  web:', '    image: qbittorrent:5', '    mounts:', '      - { media: Downloads, container: /downloads }', '      - { media: Media, subpath: Movies, container: /movies }', 'listeners:', '  - { name: web, guest_port: 8080, protocol: http }'].join('\n'),
);

test('media mounts of an app: folder, where, subpath, read only', () => {
  assert.equal(mediaMounts(torrents), [
    { folder: 'Downloads', service: 'web', path: '/downloads', readOnly: false },
    { folder: 'Media', service: 'web', path: '/movies', subpath: 'Movies', readOnly: false },
  ]);
});

test('shared folders: made ones without apps are listed, each with the apps that mount it, sorted', () => {
  const folders = sharedFolders(['Music', 'Media'], [
    { name: 'jellyfin', spec: jellyfin },
    { name: 'torrents', spec: torrents },
  ]);
  assert.equal(folders.map((f) => [f.name, f.apps.map((a) => `${a.app}:${a.path}:${a.readOnly ? 'ro' : 'rw'}`)]), [
    ['Downloads', ['torrents:/downloads:rw']],
    ['Media', ['jellyfin:/media:ro', 'torrents:/movies:rw']],
    ['Music', []],
  ]);
});

const withLimit = (limit?: string) =>
  parseAppSpec(['name: notes', 'image: notes:1', 'listeners:', '  - { name: web, guest_port: 80 }', 'storage:', '  persistent:', `    data: { container: /data${limit ? `, size_limit: ${limit}` : ''} }`, '    other: { container: /other }'].join('\n'));

test('a size limit may not change, appear or go on a volume the app has; a new volume may have any', () => {
  assert.equal(limitChangeProblems(withLimit('1Gi'), withLimit('1Gi')), []);
  assert.equal(limitChangeProblems(withLimit('1Gi'), withLimit('1024Mi')), [], 'the same size written another way');
  assert.equal(limitChangeProblems(withLimit('1Gi'), withLimit('2Gi')), ['storage.persistent.data.size_limit: cannot change from 1Gi to 2Gi: the volume data is its own file system of 1Gi, fixed when it was made']);
  assert.equal(limitChangeProblems(withLimit(), withLimit('1Gi')), ['storage.persistent.data.size_limit: cannot be added to the volume data, which exists without a limit (a limit is set when a volume is first made)']);
  assert.equal(limitChangeProblems(withLimit('1Gi'), withLimit()), ['storage.persistent.data.size_limit: cannot be removed: the volume data is its own file system of 1Gi; keep size_limit: 1Gi']);
  const fresh = parseAppSpec(['name: notes', 'image: notes:1', 'listeners:', '  - { name: web, guest_port: 80 }', 'storage:', '  persistent:', '    cache: { container: /cache, size_limit: 1Gi }'].join('\n'));
  assert.equal(limitChangeProblems(withLimit(), fresh), [], 'a volume that goes and one that comes are no change of a limit');
});

test.run();
