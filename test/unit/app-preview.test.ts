// The install preview: each grant of a spec as a permission a person can read, and for an update
// the fields that change. Specs are parsed from app.yaml text, as the API receives them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { diffSpecs, previewInstall } from '../../services/daemon/apps/spec/preview.js';
import { parseAppSpec } from '../../services/daemon/apps/spec/validate.js';

const yaml = (...lines: string[]) => parseAppSpec(lines.join('\n'));

const web = yaml(
  'name: notes',
  'image: localhost/notes:1',
  'listeners:',
  '  - name: web',
  '    guest_port: 8080',
  '    protocol: http',
  'storage:',
  '  persistent:',
  '    data: { container: /data, size_limit: 1GiB }',
  '  temporary:',
  '    cache: { container: /cache }',
);

test('a new app: install, listeners behind the sign-in, volumes, no internet', () => {
  const preview = previewInstall(web, { deviceName: 'piccolo' });
  assert.is(preview.action, 'install');
  assert.is(preview.image, 'localhost/notes:1');
  assert.equal(preview.listeners, [{ name: 'web', port: 8080, protocol: 'http', flow: 'tcp', exposed: false, service: 'app' }]);
  assert.equal(preview.volumes, [
    { name: 'data', path: '/data', kind: 'persistent', sizeLimit: '1GiB', mounts: [{ service: 'app', path: '/data', readOnly: false }] },
    { name: 'cache', path: '/cache', kind: 'temporary', mounts: [{ service: 'app', path: '/cache', readOnly: false }] },
  ]);
  assert.equal(preview.containers.map((c) => [c.name, c.image, c.listeners]), [['app', 'localhost/notes:1', ['web']]]);
  assert.equal(preview.permissionsNeeded, [], 'nothing to grant');
  assert.is(preview.internet, 'deny');
  assert.equal(preview.changes, []);
  const ids = preview.permissions.map((p) => p.id);
  assert.equal(ids, ['lan-listener:web', 'remote-listener:web', 'storage:data']);
  assert.not.ok(ids.includes('internet'), 'internet is denied by default');
  const lan = preview.permissions.find((p) => p.id === 'lan-listener:web')!;
  assert.match(lan.detail, /web-notes\.piccolo\.local for people signed in/);
  assert.match(preview.permissions.find((p) => p.id === 'storage:data')!.detail, /encrypted.*up to 1GiB/);
  // Not silent while nothing measures the volumes.
  assert.equal(preview.warnings, []);
  assert.equal(previewInstall(yaml('name: blog', 'image: ghost:5', 'listeners: [{ name: web, guest_port: 80 }]')).warnings, [], 'no limit, no warning');
});

test('internet, public and raw listeners, TLS passthrough, dependencies and system apps are each named', () => {
  const spec = yaml(
    'name: chat',
    'image: localhost/chat:1',
    'type: system',
    'depends_on: [db]',
    'permissions: { network: { internet: allow } }',
    'listeners:',
    '  - { name: app, guest_port: 443, protocol: http, flow: tls, remote_ports: [8443] }',
    '  - { name: sip, guest_port: 5060, remote_ports: [] }',
    '  - { name: dns, guest_port: 53, protocol: udp, public_port: 53 }',
  );
  const preview = previewInstall(spec);
  const byId = Object.fromEntries(preview.permissions.map((p) => [p.id, p]));
  assert.equal(Object.keys(byId).sort(), ['depends-on:db', 'internet', 'public-listener:app', 'public-listener:dns', 'public-listener:sip', 'remote-listener:app', 'system-app']);
  assert.match(byId['public-listener:dns']!.detail, /takes the device's own port 53, which no other app can then have\.$/);
  assert.not.match(byId['public-listener:sip']!.detail, /device's own port/);
  assert.match(byId['internet']!.detail, /internet/);
  assert.match(byId['public-listener:sip']!.title, /TCP port 5060 open to everyone/);
  assert.match(byId['public-listener:sip']!.detail, /cannot ask for a sign-in on a raw TCP port/);
  assert.match(byId['public-listener:app']!.detail, /handles its own encryption/);
  assert.match(byId['remote-listener:app']!.detail, /port 8443, without a sign-in/);
  assert.match(byId['depends-on:db']!.detail, /db is started first/);
  assert.equal(preview.dependencies, ['db']);
  assert.is(preview.internet, 'allow');
  assert.ok(preview.listeners.every((l) => l.exposed), 'a system app skips the sign-in');
});

test('a public listener of a user app is a warning; import warnings come first', () => {
  const spec = yaml('name: blog', 'image: localhost/blog:1', 'listeners:', '  - { name: web, guest_port: 80, protocol: http, public: true }');
  const preview = previewInstall(spec, { warnings: ['ports: 8080:80 ignored'] });
  assert.equal(preview.warnings, ['ports: 8080:80 ignored', 'listener web is public: anyone on your network can use it without signing in']);
  assert.equal(preview.listeners[0]!.exposed, true);
});

test('an update lists each changed field by path, and what goes away', () => {
  const next = yaml(
    'name: notes',
    'image: localhost/notes:2',
    'environment: { TZ: Europe/Paris }',
    'listeners:',
    '  - name: web',
    '    guest_port: 9090',
    '    protocol: http',
    'storage:',
    '  persistent:',
    '    data: { container: /data, size_limit: 2GiB }',
  );
  const preview = previewInstall(next, { installed: web });
  assert.is(preview.action, 'update');
  assert.equal(preview.changes, [
    { path: 'environment.TZ', from: null, to: 'Europe/Paris' },
    { path: 'listeners[0].guest_port', from: 8080, to: 9090 },
    { path: 'services.app.image', from: 'localhost/notes:1', to: 'localhost/notes:2' },
    { path: 'services.app.mounts[1]', from: { volume: 'cache', container: '/cache', read_only: false }, to: null },
    { path: 'storage.persistent.data.size_limit', from: '1GiB', to: '2GiB' },
    { path: 'storage.temporary.cache', from: { container: '/cache' }, to: null },
  ]);
  assert.equal(previewInstall(web, { installed: web }).changes, [], 'the same spec changes nothing');
  const shrunk = yaml('name: notes', 'image: localhost/notes:1', 'listeners:', '  - { name: rest, guest_port: 8080, protocol: http }');
  assert.equal(previewInstall(shrunk, { installed: web }).warnings, [
    'volume data is no longer mounted; its data is kept until you uninstall with "delete data"',
    'listener web goes away: its address stops answering',
  ]);
});

const stack = (...lines: string[]) =>
  yaml(
    'name: cloud',
    'services:',
    '  web: { image: cloud:1, depends_on: { db: { condition: service_healthy } }, mounts: [files:/srv, { media: Media, container: /media, read_only: true }] }',
    '  db: { image: db:1, healthcheck: { test: [CMD, pg_isready] }, mounts: [db:/var/lib/db] }',
    ...lines,
    'listeners: [{ name: web, guest_port: 80, protocol: http }]',
    'storage: { persistent: { files: {}, db: { size_limit: 5GiB } } }',
  );

test('a multi-container app: its containers in start order, where each volume is mounted, the grants with their risk', () => {
  const preview = previewInstall(stack());
  assert.is(preview.image, 'cloud:1', 'the image shown is the main service\'s, not the first started');
  assert.equal(preview.containers, [
    { name: 'db', image: 'db:1', startsAfter: [], healthcheck: true, network: 'app', listeners: [], mounts: [{ volume: 'db', path: '/var/lib/db', readOnly: false }], readOnly: false },
    {
      name: 'web',
      image: 'cloud:1',
      startsAfter: [{ service: 'db', condition: 'service_healthy' }],
      healthcheck: false,
      network: 'app',
      listeners: ['web'],
      mounts: [{ volume: 'files', path: '/srv', readOnly: false }, { media: 'Media', path: '/media', readOnly: true }],
      readOnly: false,
    },
  ]);
  assert.equal(preview.volumes.find((v) => v.name === 'db')!.mounts, [{ service: 'db', path: '/var/lib/db', readOnly: false }]);
  assert.match(preview.permissions.find((p) => p.id === 'storage:db')!.title, /Keeps data in \/var\/lib\/db/);
  assert.equal(preview.permissionsNeeded.map((p) => [p.id, p.granted]), [['media', false]]);
  assert.match(preview.permissionsNeeded[0]!.risk, /read every file in Media/);
  assert.equal(preview.listeners[0]!.service, 'web');
});

test('multi-container warnings: a listener on the host network, a volume nobody mounts, a shared tmpfs, a service that goes away', () => {
  const spec = yaml(
    'name: hub',
    'services:',
    '  web: { image: hub:1, network_mode: host, mounts: [scratch:/tmp/a] }',
    '  worker: { image: hub:1, mounts: [scratch:/tmp/b] }',
    'listeners: [{ name: web, guest_port: 8123, protocol: http }]',
    'storage: { persistent: { unused: {} }, temporary: { scratch: {} } }',
  );
  const installed = stack();
  const preview = previewInstall(spec, { installed: { ...installed, name: 'hub' } });
  assert.equal(preview.warnings.filter((w) => !w.startsWith('volume files') && !w.startsWith('volume db') && !w.startsWith('listener web goes')), [
    "listener web is on service web, which uses the device's network: port 8123 is open on the device itself, also without the proxy",
    'volume unused is not mounted by any service',
    'temporary volume scratch is mounted by web, worker: each container gets its own empty one; they do not share files',
    "service db goes away: its container is removed (the data in the app's volumes is kept)",
  ]);
});

test('an update: a grant held from before is marked granted; one asking for more is not', () => {
  const withDevice = (device: string) => stack(`  gpu: { image: gpu:1, devices: [${device}] }`);
  const installed = withDevice('/dev/dri');
  const same = previewInstall(withDevice('/dev/dri'), { installed, granted: ['devices', 'media'] });
  assert.equal(same.permissionsNeeded.map((p) => [p.id, p.granted]), [['devices', true], ['media', true]]);
  const more = previewInstall(stack('  gpu: { image: gpu:1, devices: [/dev/dri, /dev/ttyUSB0] }'), { installed, granted: ['devices', 'media'] });
  assert.equal(more.permissionsNeeded.map((p) => [p.id, p.granted]), [['devices', false], ['media', true]]);
  assert.equal(previewInstall(installed, { installed }).permissionsNeeded.map((p) => p.granted), [false, false], 'nothing granted before');
  assert.ok(more.changes.some((c) => c.path === 'services.gpu.devices[1]'), JSON.stringify(more.changes));
});

test('diffSpecs: lists by index, nested objects by key', () => {
  assert.equal(diffSpecs({ a: [1, 2] }, { a: [1] }), [{ path: 'a[1]', from: 2, to: null }]);
  assert.equal(diffSpecs({ a: { b: { c: 1 } } }, { a: { b: { c: 2 } } }), [{ path: 'a.b.c', from: 1, to: 2 }]);
  assert.equal(diffSpecs({ memory: '1g', memory_bytes: 1 }, { memory: '2g', memory_bytes: 2 }), [{ path: 'memory', from: '1g', to: '2g' }]);
});

test.run();
