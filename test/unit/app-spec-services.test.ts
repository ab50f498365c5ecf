// The full form (services) and the container fields in compose's forms: what each form reads as,
// the start order, and what the services' use adds to the permissions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BadRequestError } from '../../services/common/errors.js';
import { commandLine, serviceHealthCheck } from '../../services/daemon/apps/spec/service-fields.js';
import { mainService } from '../../services/daemon/apps/spec/types.js';
import { parseAppSpec } from '../../services/daemon/apps/spec/validate.js';
import { thrown } from '../support/assertions.js';

const yaml = (...lines: string[]) => parseAppSpec(lines.join('\n'));
const problems = (...lines: string[]) => thrown(() => yaml(...lines), BadRequestError).details as string[];
const LISTENER = ['listeners:', '  - { name: web, guest_port: 80 }'];

test('a command as one string is split as a shell would, quotes kept together; a list stays as it is', () => {
  assert.equal(commandLine('redis-server --save 60 1'), ['redis-server', '--save', '60', '1']);
  assert.equal(commandLine(`sh -c "echo 'hi there' && sleep 1"`), ['sh', '-c', "echo 'hi there' && sleep 1"]);
  assert.equal(commandLine(`a\\ b "" 'c d'`), ['a b', '', 'c d']);
  assert.equal(commandLine(['--flag', 'two words']), ['--flag', 'two words']);
});

test('a healthcheck test as a string runs in a shell; CMD lists stay; NONE and disable turn it off', () => {
  const defaults = { interval_ms: 30_000, timeout_ms: 30_000, retries: 3, start_period_ms: 0 };
  assert.equal(serviceHealthCheck({ test: 'curl -f http://localhost' }), { test: ['CMD-SHELL', 'curl -f http://localhost'], ...defaults });
  assert.equal(serviceHealthCheck({ test: ['CMD', 'pg_isready', '-U', 'app'], interval: '5s', retries: 10 }).test, ['CMD', 'pg_isready', '-U', 'app']);
  assert.equal(serviceHealthCheck({ test: ['CMD-SHELL', 'pg_isready', '-U', 'app'] }).test, ['CMD-SHELL', 'pg_isready -U app'], 'CMD-SHELL takes one command line');
  assert.equal(serviceHealthCheck({ test: ['NONE'] }).test, ['NONE']);
  assert.equal(serviceHealthCheck({ disable: true }).test, ['NONE']);
  const timed = serviceHealthCheck({ test: 'true', interval: '1m30s', timeout: '500ms', start_period: '2m' });
  assert.equal([timed.interval_ms, timed.timeout_ms, timed.start_period_ms], [90_000, 500, 120_000]);
});

test('services start dependencies first, otherwise as written; listeners default to the first service written', () => {
  const spec = yaml(
    'name: stack',
    'services:',
    '  web: { image: web:1, depends_on: [api] }',
    '  api: { image: api:1, depends_on: { db: { condition: service_healthy } } }',
    '  db: { image: db:1, healthcheck: { test: [CMD, pg_isready] } }',
    '  worker: { image: worker:1, depends_on: [db] }',
    ...LISTENER,
  );
  assert.equal(spec.services.map((s) => s.name), ['db', 'api', 'web', 'worker']);
  assert.is(spec.listeners[0]!.service, 'web');
  assert.is(mainService(spec).image, 'web:1', 'the main service is the first listener\'s, not the first started');
  assert.equal(spec.services[1]!.depends_on, [{ service: 'db', condition: 'service_healthy' }]);
  assert.equal(spec.services[2]!.depends_on, [{ service: 'api', condition: 'service_started' }]);
});

test('the short form takes the container fields at the top level, and its errors are named there', () => {
  const spec = yaml(
    'name: blog',
    'image: ghost:5',
    'command: node index.js --port 2368',
    'user: 1000',
    'working_dir: /srv',
    'restart: on-failure',
    'read_only: true',
    'tmpfs: [/tmp]',
    'network_mode: bridge',
    ...LISTENER,
    'storage: { persistent: { content: { container: /var/lib/ghost } } }',
  );
  const [app] = spec.services;
  assert.equal(spec.services.length, 1);
  assert.is(app!.name, 'app');
  assert.equal(app!.command, ['node', 'index.js', '--port', '2368']);
  assert.is(app!.user, '1000');
  assert.is(app!.network_mode, 'app', 'bridge is compose\'s default: the app\'s own network');
  assert.equal(app!.mounts, [{ volume: 'content', container: '/var/lib/ghost', read_only: false }]);
  assert.equal(problems('name: blog', 'image: ghost:5', 'command: \'run "x\'', 'cap_add: [NOPE]', ...LISTENER), [
    'command: the quote " is not closed',
    'cap_add[0]: NOPE is not a Linux capability',
  ]);
});

test('environment as a list of KEY=value, values as strings; the app-wide one stays apart', () => {
  const spec = yaml('name: stack', 'environment: [TZ=UTC]', 'services:', '  web: { image: web:1, environment: [A=1, B=x=y, C=] }', ...LISTENER);
  assert.equal(spec.environment, { TZ: 'UTC' });
  assert.equal(spec.services[0]!.environment, { A: '1', B: 'x=y', C: '' });
});

test('sizes and durations in compose\'s forms', () => {
  const spec = yaml(
    'name: stack',
    'services:',
    '  web: { image: web:1, shm_size: 64m, stop_grace_period: 1m30s, tmpfs: ["/run:size=16m,mode=1777", { container: /cache, size: 1Gi }] }',
    '  db: { image: db:1, shm_size: 1048576 }',
    ...LISTENER,
  );
  const web = spec.services.find((s) => s.name === 'web')!;
  assert.is(web.shm_size_bytes, 64 * 2 ** 20);
  assert.is(web.stop_grace_period_ms, 90_000);
  assert.equal(web.tmpfs, [{ container: '/run', size_bytes: 16 * 2 ** 20 }, { container: '/cache', size_bytes: 2 ** 30 }]);
  assert.is(spec.services.find((s) => s.name === 'db')!.shm_size_bytes, 2 ** 20);
});

test('what the services use is added to the permissions; default capabilities ask for nothing', () => {
  const spec = yaml(
    'name: stack',
    'services:',
    '  web: { image: web:1, network_mode: host, devices: [/dev/dri, "/dev/ttyUSB0:/dev/ttyUSB0:rwm"], cap_add: [cap_net_admin, CHOWN, NET_BIND_SERVICE] }',
    '  ops: { image: ops:1, privileged: true, engine_socket: true, mounts: [{ media: Media, container: /media }] }',
    ...LISTENER,
    'permissions: { capabilities: [SYS_TIME], media: [Downloads] }',
  );
  assert.equal(spec.permissions, {
    network: { internet: 'deny' },
    host_network: true,
    privileged: true,
    engine_socket: true,
    devices: ['/dev/dri', '/dev/ttyUSB0'],
    capabilities: ['NET_ADMIN', 'SYS_TIME'],
    media: ['Downloads', 'Media'],
  });
  assert.equal(spec.services.find((s) => s.name === 'web')!.cap_add, ['CHOWN', 'NET_ADMIN', 'NET_BIND_SERVICE']);
});

test('two services may listen on the same port; one service cannot twice', () => {
  yaml('name: stack', 'services:', '  a: { image: a:1 }', '  b: { image: b:1 }', 'listeners:', '  - { name: one, guest_port: 80, service: a }', '  - { name: two, guest_port: 80, service: b }');
  assert.equal(problems('name: stack', 'services:', '  a: { image: a:1 }', 'listeners:', '  - { name: one, guest_port: 80 }', '  - { name: two, guest_port: 80, service: a }'), [
    'listeners[1].guest_port: port 80 of service a is already used by listeners[0]',
  ]);
});

test('a mount names an absolute path, and nothing is mounted where the engine socket goes', () => {
  assert.equal(
    problems('name: stack', 'services:', '  web: { image: web:1, engine_socket: true, mounts: [data:relative, data:/var/run/docker.sock] }', ...LISTENER, 'storage: { persistent: { data: {} } }'),
    [
      'services.web.mounts[0]: relative must be an absolute path inside the container',
      'services.web.mounts[1]: /var/run/docker.sock is already used by services.web.engine_socket',
    ],
  );
});

test('the short form: a tmpfs cannot hide one of its volumes', () => {
  assert.equal(problems('name: blog', 'image: ghost:5', 'tmpfs: [/data]', ...LISTENER, 'storage: { persistent: { content: { container: /data } } }'), [
    'tmpfs[0]: /data is already used by storage.persistent.content',
  ]);
});

test('an app of too many containers is refused', () => {
  const services = Array.from({ length: 21 }, (_, i) => `  s${i}: { image: s:1 }`);
  assert.equal(problems('name: stack', 'services:', ...services, ...LISTENER), ['services: 21 services; an app may have at most 20']);
});

test('neither image nor services: one problem saying both ways', () => {
  assert.equal(problems('name: stack', ...LISTENER), ['image: is required (or services, for an app of several containers)']);
});

test('a mount may name a folder inside its volume or media folder; it must stay inside', () => {
  const spec = yaml(
    'name: stack',
    'services:',
    '  web: { image: web:1, mounts: [{ volume: data, subpath: db/main, container: /var/lib/db }, { media: Media, subpath: Movies, container: /movies, read_only: true }] }',
    ...LISTENER,
    'storage: { persistent: { data: {} } }',
  );
  assert.equal(spec.services[0]!.mounts, [
    { volume: 'data', subpath: 'db/main', container: '/var/lib/db', read_only: false },
    { media: 'Media', subpath: 'Movies', container: '/movies', read_only: true },
  ]);
  assert.equal(
    problems('name: stack', 'services:', '  web: { image: web:1, mounts: [{ volume: data, subpath: ../etc, container: /x }, { media: Media, subpath: /abs, container: /y }] }', ...LISTENER, 'storage: { persistent: { data: {} } }'),
    [
      'services.web.mounts[0].subpath: ../etc must be a folder inside the volume, such as db or Movies/4k (no leading /, no . or .. segments)',
      'services.web.mounts[1].subpath: /abs must be a folder inside the media folder, such as db or Movies/4k (no leading /, no . or .. segments)',
    ],
  );
});

test.run();
