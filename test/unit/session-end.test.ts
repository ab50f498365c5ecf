// SessionStore tells its listeners when a session ends (logout, all at once, expiry), so what a
// session opened (terminals, event streams) closes with it; peek() checks without refreshing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SessionStore } from '../../services/daemon/auth/sessions.js';

function store() {
  let now = 1_000_000;
  const sessions = new SessionStore({ now: () => now, idleMs: 1000, maxAgeMs: 10_000 });
  const ended: string[] = [];
  sessions.onEnd((session, reason) => ended.push(`${session.id}:${reason}`));
  return { sessions, ended, advance: (ms: number) => (now += ms) };
}

test('destroy, destroyAll and expiry each tell the listeners, once per session', () => {
  const { sessions, ended, advance } = store();
  const a = sessions.create('admin');
  const b = sessions.create('admin');
  const c = sessions.create('admin');
  sessions.destroy(a.id);
  sessions.destroy(a.id);
  assert.equal(ended, [`${a.id}:logout`], 'an unknown id ends nothing');
  advance(1001);
  assert.is(sessions.get(b.id), undefined);
  assert.equal(ended.slice(1), [`${b.id}:expired`]);
  const d = sessions.create('admin');
  sessions.destroyAll();
  assert.equal(ended.slice(2).sort(), [`${c.id}:all`, `${d.id}:all`].sort());
});

test('peek does not count as activity; get does', () => {
  const { sessions, ended, advance } = store();
  const s = sessions.create('admin');
  advance(600);
  assert.ok(sessions.peek(s.id));
  advance(600);
  assert.is(sessions.peek(s.id), undefined, 'idle since creation: peeking did not refresh it');
  assert.equal(ended, [`${s.id}:expired`]);
  const t = sessions.create('admin');
  advance(600);
  assert.ok(sessions.get(t.id));
  advance(600);
  assert.ok(sessions.peek(t.id), 'get refreshed it');
});

test('a listener removed is no longer told', () => {
  const sessions = new SessionStore({ now: () => 0 });
  let told = 0;
  const stop = sessions.onEnd(() => told++);
  stop();
  sessions.destroy(sessions.create('admin').id);
  assert.is(told, 0);
});

test.run();
