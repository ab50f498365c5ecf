import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConflictError } from '../../services/common/errors.js';
import { assertHostLabelsFree, routesFromApps, routesFromRecords } from '../../services/daemon/apps/routes-from-apps.js';
import type { AppRecord } from '../../services/daemon/control-document.js';
import type { AppView } from '../../services/daemon/apps/manager.js';
import { normalizeSpec } from '../../services/daemon/apps/spec/normalize.js';

const spec = (name: string, listeners: string[], extra: object = {}) =>
  normalizeSpec({ name, image: 'localhost/x:1', listeners: listeners.map((l, i) => ({ name: l, guest_port: 80 + i, protocol: 'http' })), ...extra });

function view(name: string, listeners: string[], extra: object = {}): AppView {
  const s = spec(name, listeners, extra);
  return {
    name,
    spec: s,
    services: s.listeners.map((l, i) => ({ app: name, listener: l.name, guestPort: l.guest_port, hostBindPort: 15000 + i, publicPort: 35000 + i, localUrl: `http://127.0.0.1:${15000 + i}`, protocol: l.protocol, flow: l.flow })),
  } as unknown as AppView;
}

test('a listener whose <listener>-<app> label another app already has is a 409 naming it', () => {
  const installed = [view('a-b', ['c'])];
  try {
    assertHostLabelsFree(spec('b', ['c-a', 'web']), installed);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, ConflictError);
    assert.equal((err as ConflictError).details, ['listeners[0].name: its host name c-a-b is already used by a-b/c']);
  }
  assertHostLabelsFree(spec('b', ['web']), installed);
  assertHostLabelsFree(spec('a-b', ['c']), installed); // an update of the same app
});

test('routes: one per listener, private by default for user apps, with both host names', () => {
  const routes = routesFromApps([view('blog', ['web']), view('api', ['rest'], { type: 'system' })], 'nas');
  assert.equal(routes.map((r) => [r.app, r.listener, r.access, r.hostnames.join(' ')]), [
    ['blog', 'web', 'private', 'web-blog.nas.local 35000-blog'],
    ['api', 'rest', 'public', 'rest-api.nas.local 35000-api'],
  ]);
});

test('routes from the store records alone (no engine state): the allocated ports, the same routes as from the views', () => {
  const record = (name: string, listeners: string[], base: number) =>
    ({ spec: spec(name, listeners), ports: Object.fromEntries(listeners.map((l, i) => [l, { hostBind: base + i, public: base + 20000 + i }])) }) as unknown as AppRecord;
  const routes = routesFromRecords({ wiki: record('wiki', ['web', 'api'], 15010), blog: record('blog', ['web'], 15020) }, 'nas');
  assert.equal(routes.map((r) => [r.app, r.listener, r.hostBindPort, r.publicPort, r.hostnames.join(' ')]), [
    ['blog', 'web', 15020, 35020, 'web-blog.nas.local 35020-blog'],
    ['wiki', 'web', 15010, 35010, 'web-wiki.nas.local 35010-wiki'],
    ['wiki', 'api', 15011, 35011, 'api-wiki.nas.local 35011-wiki'],
  ]);
});

test.run();
