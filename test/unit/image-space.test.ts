// Where an image's manifest is asked for (the reference rules the engines use), and how sizes read.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseImageReference, rewriteReference } from '../../services/daemon/apps/image-space.js';
import { formatBytes } from '../../services/daemon/apps/errors.js';

test('Docker Hub short names go to registry-1.docker.io, official images under library/', () => {
  assert.equal(parseImageReference('nginx'), { registry: 'registry-1.docker.io', repository: 'library/nginx', reference: 'latest' });
  assert.equal(parseImageReference('docker.io/jellyfin/jellyfin:10.9.11'), { registry: 'registry-1.docker.io', repository: 'jellyfin/jellyfin', reference: '10.9.11' });
  assert.equal(parseImageReference('vaultwarden/server:1.32.0'), { registry: 'registry-1.docker.io', repository: 'vaultwarden/server', reference: '1.32.0' });
});

test('a first part with a dot, a port or localhost is the registry; a digest wins over a tag', () => {
  assert.equal(parseImageReference('127.0.0.1:5000/t1/notes:1'), { registry: '127.0.0.1:5000', repository: 't1/notes', reference: '1' });
  assert.equal(parseImageReference('ghcr.io/immich-app/immich-server:v1.119.1'), { registry: 'ghcr.io', repository: 'immich-app/immich-server', reference: 'v1.119.1' });
  assert.equal(parseImageReference('localhost/app'), { registry: 'localhost', repository: 'app', reference: 'latest' });
  const digest = `sha256:${'a'.repeat(64)}`;
  assert.equal(parseImageReference(`127.0.0.1:5000/x/y:2@${digest}`), { registry: '127.0.0.1:5000', repository: 'x/y', reference: digest });
});

test("the engine's registries.conf rules: the longest prefix says where a name is pulled from", () => {
  const rules = [
    { prefix: 'docker.io', location: '127.0.0.1:5000', insecure: true },
    { prefix: 'docker.io/library/redis', location: '127.0.0.1:6000/cache/redis', insecure: false },
    { prefix: '127.0.0.1:7000', location: '127.0.0.1:7000', insecure: true },
  ];
  assert.equal(rewriteReference('docker.io/library/nextcloud:29.0.7-apache', rules), { ref: '127.0.0.1:5000/library/nextcloud:29.0.7-apache', insecure: true });
  assert.equal(rewriteReference('nginx:1.27', rules), { ref: '127.0.0.1:5000/library/nginx:1.27', insecure: true });
  assert.equal(rewriteReference('redis:7.2.5-alpine', rules), { ref: '127.0.0.1:6000/cache/redis:7.2.5-alpine', insecure: false });
  assert.equal(rewriteReference('127.0.0.1:7000/a/b:1', rules), { ref: '127.0.0.1:7000/a/b:1', insecure: true });
  assert.equal(rewriteReference('ghcr.io/x/y:1', rules), { ref: 'ghcr.io/x/y:1', insecure: false });
  // docker.io/libraryx is not under docker.io/library/redis, only under docker.io.
  assert.equal(rewriteReference('docker.io/library/redisx:1', rules).ref, '127.0.0.1:5000/library/redisx:1');
});

test('sizes in the words a person reads', () => {
  assert.is(formatBytes(512), '512 B');
  assert.is(formatBytes(52_428_800), '52 MB');
  assert.is(formatBytes(1_234_000_000), '1.2 GB');
});

test.run();
