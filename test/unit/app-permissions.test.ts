// The grants an app needs (each with what it gives away) and the check install and update make.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkGrants, neededPermissions, PermissionRequiredError, PERMISSION_IDS, servicePermissions } from '../../services/daemon/apps/spec/permissions.js';
import { parseAppSpec } from '../../services/daemon/apps/spec/validate.js';
import { thrown } from '../support/assertions.js';

const yaml = (...lines: string[]) => parseAppSpec(lines.join('\n'));
const LISTENER = ['listeners:', '  - { name: web, guest_port: 80, service: web }'];
const stack = (...web: string[]) => yaml('name: stack', 'services:', `  web: { image: web:1${web.length ? ', ' : ''}${web.join(', ')} }`, '  db: { image: db:1 }', ...LISTENER);

test('an app that stays inside the fortress needs no grant', () => {
  assert.equal(neededPermissions(stack()), []);
  assert.equal(neededPermissions(stack('cap_add: [CHOWN, SETUID]', 'cap_drop: [ALL]')), [], "the engine's default capabilities ask for nothing");
  assert.equal(checkGrants(stack(), []), { granted: [], newlyGranted: [] });
});

test('each use beyond the defaults is one permission, naming its services and items, with its risk in words', () => {
  const spec = yaml(
    'name: stack',
    'services:',
    '  web: { image: web:1, network_mode: host, devices: [/dev/dri], cap_add: [NET_ADMIN], mounts: [{ media: Media, container: /media, read_only: true }] }',
    '  ops: { image: ops:1, privileged: true, engine_socket: true }',
    ...LISTENER,
  );
  const needed = neededPermissions(spec);
  assert.equal(needed.map((p) => p.id), ['host_network', 'privileged', 'engine_socket', 'devices', 'capabilities', 'media']);
  const byId = Object.fromEntries(needed.map((p) => [p.id, p]));
  assert.equal(byId.host_network!.services, ['web']);
  assert.match(byId.host_network!.risk, /any port of the device.*without the proxy's sign-in/);
  assert.equal(byId.privileged!.services, ['ops']);
  assert.match(byId.privileged!.risk, /every other app's data/);
  assert.match(byId.engine_socket!.detail, /docker\.sock/);
  assert.match(byId.engine_socket!.risk, /start, stop and inspect every app/);
  assert.equal(byId.devices!.items, ['/dev/dri']);
  assert.match(byId.devices!.title, /\/dev\/dri/);
  assert.equal(byId.capabilities!.items, ['NET_ADMIN']);
  assert.match(byId.capabilities!.risk, /^It can change network settings/);
  assert.equal(byId.media!.items, ['Media']);
  assert.match(byId.media!.detail, /read only/);
  assert.match(byId.media!.risk, /^It can read every file in Media/);
  for (const permission of needed) assert.ok(permission.risk.length > 40 && permission.title && permission.detail, permission.id);
  assert.equal([...PERMISSION_IDS], needed.map((p) => p.id), 'every id is covered, in one order');
});

test('a media folder the app may write says it can delete; several capabilities each get their words', () => {
  const spec = yaml('name: stack', 'services:', '  web: { image: web:1, cap_add: [NET_ADMIN, SYS_TIME], mounts: [{ media: Downloads, container: /dl }] }', 'listeners: [{ name: web, guest_port: 80 }]');
  const [caps, media] = neededPermissions(spec);
  assert.match(caps!.risk, /NET_ADMIN: change network settings.*; SYS_TIME: set the device's clock/);
  assert.match(media!.risk, /read, change and delete every file in Downloads/);
});

test('a permission only declared in app.yaml is needed too, by "the app"', () => {
  const [permission] = neededPermissions(yaml('name: blog', 'image: ghost:5', 'listeners: [{ name: web, guest_port: 80 }]', 'permissions: { devices: [/dev/ttyUSB0] }'));
  assert.is(permission!.id, 'devices');
  assert.equal(permission!.services, []);
  assert.match(permission!.detail, /^The app uses \/dev\/ttyUSB0/);
});

test('install: every needed permission must be granted; the error lists what is missing, with risks', () => {
  const spec = stack('network_mode: host', 'devices: [/dev/dri]');
  const err = thrown(() => checkGrants(spec, ['devices']), PermissionRequiredError);
  assert.is(err.status, 403);
  assert.is(err.code, 'permission_required');
  assert.equal((err.details as { id: string }[]).map((p) => p.id), ['host_network']);
  assert.match(err.message, /stack needs this permission granted first: host_network/);
  assert.ok((err.details as { risk: string }[])[0]!.risk);
  assert.equal(checkGrants(spec, ['host_network', 'devices', 'privileged']), { granted: ['devices', 'host_network'], newlyGranted: ['devices', 'host_network'] }, 'a grant the app does not need is not recorded');
});

test('update: a grant holds for no more than it covered; a new device or a new kind is asked again', () => {
  const before = { spec: stack('devices: [/dev/dri]'), granted: ['devices'] };
  assert.equal(checkGrants(stack('devices: [/dev/dri]'), [], before), { granted: ['devices'], newlyGranted: [] }, 'the same use needs nothing new');
  assert.equal(checkGrants(stack(), [], before), { granted: [], newlyGranted: [] }, 'a use dropped drops its grant');
  const more = stack('devices: [/dev/dri, /dev/ttyUSB0]');
  assert.equal((thrown(() => checkGrants(more, [], before), PermissionRequiredError).details as { id: string }[]).map((p) => p.id), ['devices']);
  assert.equal(checkGrants(more, ['devices'], before).newlyGranted, ['devices']);
  const hostToo = stack('devices: [/dev/dri]', 'network_mode: host');
  assert.equal((thrown(() => checkGrants(hostToo, [], before), PermissionRequiredError).details as { id: string }[]).map((p) => p.id), ['host_network']);
  // Asked before but never granted (an older record): asked now.
  thrown(() => checkGrants(stack('devices: [/dev/dri]'), [], { ...before, granted: [] }), PermissionRequiredError);
});

test('servicePermissions: what one service needs granted, by the same rule (default capabilities ask nothing)', () => {
  const spec = yaml(
    'name: stack',
    'services:',
    '  web: { image: web:1, cap_drop: [ALL], cap_add: [CHOWN, SETUID] }',
    '  hub: { image: hub:1, network_mode: host, cap_add: [NET_RAW], devices: [/dev/dri], mounts: [{ media: Media, container: /m }] }',
    ...LISTENER,
  );
  const [web, hub] = spec.services;
  assert.equal(servicePermissions(web!), []);
  assert.equal(servicePermissions(hub!), ['host_network', 'devices', 'capabilities', 'media']);
  assert.equal(neededPermissions(spec).map((p) => p.id), servicePermissions(hub!));
});

test.run();
