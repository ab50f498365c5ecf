// The portal's reading of an uploaded app folder (screens/apps/app-folder.ts): which files make an
// Umbrel app, a compose folder, its .env; what is refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readAppFolder, type FolderFile } from '../../services/daemon/portal/src/screens/apps/app-folder.js';

const file = (path: string, text: string, size = text.length): FolderFile => ({ path, size, text: async () => text });

test('an Umbrel folder: the manifest and the compose file, exports.sh as the variables', async () => {
  const folder = await readAppFolder([
    file('nextcloud/umbrel-app.yml', 'id: nextcloud\n'),
    file('nextcloud/docker-compose.yml', 'services: {}\n'),
    file('nextcloud/exports.sh', 'export APP_NEXTCLOUD_PORT=8081\n'),
    file('nextcloud/data/.gitkeep', ''),
    file('nextcloud/data/docker-compose.yml', 'not the one'),
  ]);
  assert.equal(folder, {
    folder: 'nextcloud',
    read: ['umbrel-app.yml', 'docker-compose.yml', 'exports.sh'],
    source: { umbrel: { manifest: 'id: nextcloud\n', compose: 'services: {}\n' }, env: 'export APP_NEXTCLOUD_PORT=8081\n' },
  });
});

test('a CasaOS or plain folder: the compose file (any of its names) and a .env', async () => {
  assert.equal(await readAppFolder([file('jellyfin/docker-compose.yml', 'x-casaos: {}\n')]), { folder: 'jellyfin', read: ['docker-compose.yml'], source: { compose: 'x-casaos: {}\n' } });
  assert.equal(await readAppFolder([file('wiki/compose.yaml', 'services: {}\n'), file('wiki/.env', 'PORT=1\n'), file('wiki/docker-compose.env', 'A=2\n')]), {
    folder: 'wiki',
    read: ['compose.yaml', '.env', 'docker-compose.env'],
    source: { compose: 'services: {}\n', env: 'PORT=1\n', env_files: { 'docker-compose.env': 'A=2\n' } },
  });
});

test('a folder without its own compose file, or with a huge one, is refused saying why', async () => {
  const refused = async (files: FolderFile[]) => {
    try {
      await readAppFolder(files);
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('expected a refusal');
  };
  assert.is(await refused([]), 'the folder is empty');
  assert.is(await refused([file('apps/README.md', '#')]), 'apps has no docker-compose.yml of its own');
  assert.is(await refused([file('umbrel-apps/immich/docker-compose.yml', 'x')]), 'umbrel-apps has no docker-compose.yml of its own; choose the folder of one app, not a folder of apps');
  assert.is(await refused([file('big/docker-compose.yml', 'x', 70_000)]), 'docker-compose.yml is 70000 bytes; a compose file or manifest is at most 65536');
});

test.run();
