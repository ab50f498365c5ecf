// Role sources: a single node leads everything; scripted roles flip per resource and say so once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appOfResource, appResource, KERNEL, ScriptedRoles, SingleNodeRoles, type Role } from '../../services/daemon/cluster/roles.js';

function changesOf(roles: ScriptedRoles | SingleNodeRoles): [string, Role][] {
  const seen: [string, Role][] = [];
  roles.on('change', (resource, role) => void seen.push([resource, role]));
  return seen;
}

test('app resources name their app; the kernel and malformed names are no app', () => {
  assert.is(appResource('web'), 'app:web');
  assert.is(appOfResource(appResource('my-app')), 'my-app');
  assert.is(appOfResource(KERNEL), undefined);
  assert.is(appOfResource('app:'), undefined);
  assert.is(appOfResource('application:web'), undefined);
});

test('a single node leads the kernel and every app, and names itself as the leader', () => {
  const roles = new SingleNodeRoles('box.local');
  for (const resource of [KERNEL, appResource('web'), appResource('db')]) {
    assert.is(roles.role(resource), 'leader');
    assert.is(roles.leader(resource), 'box.local');
  }
});

test('scripted roles start as leader, follow with a leader hint, and lead again', () => {
  const roles = new ScriptedRoles('a.local');
  const seen = changesOf(roles);
  assert.is(roles.role(appResource('web')), 'leader');
  roles.set(appResource('web'), 'follower', 'b.local');
  assert.is(roles.role(appResource('web')), 'follower');
  assert.is(roles.leader(appResource('web')), 'b.local');
  // Other resources are untouched.
  assert.is(roles.role(KERNEL), 'leader');
  assert.is(roles.role(appResource('db')), 'leader');
  roles.set(appResource('web'), 'leader');
  assert.is(roles.role(appResource('web')), 'leader');
  assert.is(roles.leader(appResource('web')), 'a.local');
  assert.equal(seen, [
    ['app:web', 'follower'],
    ['app:web', 'leader'],
  ]);
});

test('setting the role a resource already has emits nothing, but a new leader hint is kept', () => {
  const roles = new ScriptedRoles('a.local');
  const seen = changesOf(roles);
  roles.set(KERNEL, 'leader');
  roles.set(KERNEL, 'follower', 'b.local');
  roles.set(KERNEL, 'follower', 'c.local');
  assert.is(roles.leader(KERNEL), 'c.local');
  roles.set(KERNEL, 'follower');
  assert.is(roles.leader(KERNEL), undefined, 'a follower may not know its leader');
  assert.equal(seen, [['kernel', 'follower']]);
});

test.run();
