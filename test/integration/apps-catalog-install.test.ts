// A multi-container catalog template installed as a person would: POST {catalog: 'nextcloud'},
// its pinned images (docker.io/library/nextcloud:29.0.7-apache, mariadb, redis) pulled by the
// daemon under those very names from a loopback registry that Podman is told serves docker.io.
// The stand-in images are busybox scripts: the "database" answers on 3306 with the command it was
// given, its healthcheck.sh and redis-cli are what the template's healthchecks run, and the web
// container fetches both by service name before it serves. The database password is made for this
// install.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import type { ApiSession } from '../support/api-session.js';
import { jobDone } from '../support/jobs.js';
import { startPodman, type TestPodman } from '../support/podman.js';
import { startAppsDaemon } from '../support/portal.js';
import { removeTestDir, waitFor, type ServiceProcess } from '../support/processes.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildScriptImage } from '../support/script-image.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-catalog-install-'));
const stateDir = path.join(dir, 'state');
const APP = 'nextcloud';
/** The template's images, as the registry must serve them (under docker.io's paths). */
const IMAGES = { web: 'library/nextcloud:29.0.7-apache', db: 'library/mariadb:10.11.9', redis: 'library/redis:7.2.5-alpine' };
let registry: TestRegistry;
let podman: TestPodman;
let daemon: ServiceProcess;
let api: ApiSession;

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  registry = await startRegistry();
  // docker.io is this registry for the daemon's Podman: a pull names the image as the template does.
  const registriesConf = path.join(dir, 'registries.conf');
  writeFileSync(registriesConf, `unqualified-search-registries = []\n[[registry]]\nprefix = "docker.io"\nlocation = "${registry.host}"\ninsecure = true\n`);
  podman = await startPodman({ registriesConf });
  const local = (name: string) => `localhost/${podman.prefix}-${name}:1`;
  await buildScriptImage(local('web'), {
    entrypoint: ['/bin/sh', '/entry.sh'],
    scripts: {
      '/entry.sh': [
        'mkdir -p /www',
        'env > /www/env.txt',
        'echo nextcloud stand-in > /www/index.html',
        'until wget -q -O /www/db.txt http://db:3306/ && wget -q -O /www/redis.txt http://redis:6379/; do sleep 1; done',
        'exec httpd -f -p 80 -h /www',
      ].join('\n'),
    },
  });
  await buildScriptImage(local('db'), {
    entrypoint: ['/bin/sh', '/entry.sh'],
    scripts: {
      '/entry.sh': 'mkdir -p /www\necho "db $*" > /www/index.html\nexec httpd -f -p 3306 -h /www',
      '/bin/healthcheck.sh': 'wget -q -O /dev/null http://127.0.0.1:3306/',
    },
  });
  await buildScriptImage(local('redis'), {
    entrypoint: ['/bin/sh', '/entry.sh'],
    scripts: {
      '/entry.sh': 'mkdir -p /tmp/www\necho redis > /tmp/www/index.html\nexec httpd -f -p 6379 -h /tmp/www',
      '/bin/redis-cli': 'wget -q -O /dev/null http://127.0.0.1:6379/ && echo PONG',
    },
  });
  for (const [name, target] of Object.entries(IMAGES)) await registry.push(local(name), target);
  ({ daemon, api } = await startAppsDaemon(stateDir, podman.socketPath));
});

test.after(async () => {
  await daemon?.kill('SIGTERM');
  if (podman) {
    for (const target of Object.values(IMAGES)) await podman.docker.getImage(`docker.io/${target}`).remove({ force: true }).catch(() => {});
    for (const name of Object.keys(IMAGES)) await podman.docker.getImage(`localhost/${podman.prefix}-${name}:1`).remove({ force: true }).catch(() => {});
  }
  await podman?.stop();
  await registry?.stop();
  removeTestDir(dir);
});

test('the Nextcloud template installs from the catalog: three containers, pulled by their pinned names, talking by service name', async () => {
  const installed = await api.call('POST', '/api/v1/apps', { catalog: APP });
  assert.is(installed.status, 202, JSON.stringify(installed.body));
  await jobDone(api, installed.body.job, 180_000);
  const containers = await podman.docker.listContainers({ all: true, filters: { label: [`piccolo.app=${APP}`] } });
  const byService = Object.fromEntries(containers.map((c) => [c.Labels['piccolo.service'] ?? c.Names[0], c]));
  assert.equal(Object.keys(byService).sort(), ['db', 'redis', 'web'], JSON.stringify(containers.map((c) => c.Names)));
  for (const [service, target] of Object.entries(IMAGES)) {
    const inspect = await podman.docker.getContainer(byService[service]!.Id).inspect();
    assert.is(inspect.State.Running, true, `${service} runs`);
    assert.match(inspect.Config.Image, new RegExp(`${target.replace(/[.:/]/g, '\\$&')}|sha256:`), `${service}: ${inspect.Config.Image}`);
  }
  const db = await podman.docker.getContainer(byService.db!.Id).inspect();
  const web = await podman.docker.getContainer(byService.web!.Id).inspect();
  assert.ok(Date.parse(db.State.StartedAt) <= Date.parse(web.State.StartedAt), 'the database starts first');

  const services = await api.call('GET', `/api/v1/apps/${APP}/services`);
  const url = services.body.services.find((s: any) => s.listener === 'web').localUrl as string;
  const get = (file: string) => fetch(`${url}/${file}`).then((res) => res.text());
  const dbPage = await waitFor(async () => (await get('db.txt').catch(() => '')).trim() || undefined, 60_000, 'web fetched the database page');
  assert.is(dbPage, 'db --transaction-isolation=READ-COMMITTED --log-bin=binlog --binlog-format=ROW', 'the template\'s command reached the database container');
  assert.is((await get('redis.txt')).trim(), 'redis');
  const env = await get('env.txt');
  assert.match(env, /^MYSQL_HOST=db$/m);
  assert.match(env, /^REDIS_HOST=redis$/m);
  // The template's ${DB_PASSWORD} is this install's own secret, the same in both containers.
  const password = /^MYSQL_PASSWORD=([0-9a-f]{32})$/m.exec(env)?.[1];
  assert.ok(password, env);
  assert.ok(db.Config.Env.includes(`MARIADB_PASSWORD=${password}`), 'the database got the same password');
});

test('uninstall with purge removes every container of the app', async () => {
  const uninstall = await api.call('DELETE', `/api/v1/apps/${APP}`, { confirm: APP, purge: true });
  assert.is(uninstall.status, 202);
  await jobDone(api, uninstall.body.job, 120_000);
  assert.equal(await podman.docker.listContainers({ all: true, filters: { label: [`piccolo.app=${APP}`] } }), []);
});

test.run();
