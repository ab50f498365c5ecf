// What roles do on this node: an app follower stops (effective run state), loses its local proxy
// route and goes to tunnel mode; a kernel follower refuses management writes with a 409 naming
// the leader, through the router's one error mapping, while reads and node-local writes work.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HttpServerModule, Router } from '../../services/common/http.js';
import { createLogger } from '../../services/common/logger.js';
import type { Route } from '../../services/common/route-table.js';
import { readOpenApiDocument } from '../../services/daemon/api/openapi-document.js';
import { ApiSchema } from '../../services/daemon/api/schema.js';
import { AppLeadership } from '../../services/daemon/cluster/app-leadership.js';
import { isManagementWrite, leaderOnlyWrites } from '../../services/daemon/cluster/management-writes.js';
import { appResource, KERNEL, ScriptedRoles } from '../../services/daemon/cluster/roles.js';

const logged: string[] = [];
const logger = createLogger({ service: 'test', write: (line) => void logged.push(line) });

function route(app: string, listener = 'web'): Route {
  return { app, listener, publicPort: 35001, hostBindPort: 15001, flow: 'tcp', protocol: 'http', access: 'private', middleware: [], hostnames: [`${listener}-${app}.box.local`] };
}

test('an app follower converges to stopped whatever it should be doing; a leader to its desired state', () => {
  const roles = new ScriptedRoles('a.local');
  const leadership = new AppLeadership({ roles, logger });
  assert.is(leadership.effectiveRun('web', 'running'), 'running');
  assert.is(leadership.effectiveRun('web', 'stopped'), 'stopped');
  roles.set(appResource('web'), 'follower', 'b.local');
  assert.is(leadership.effectiveRun('web', 'running'), 'stopped');
  assert.is(leadership.effectiveRun('db', 'running'), 'running', 'only the followed app stops');
  roles.set(appResource('web'), 'leader');
  assert.is(leadership.effectiveRun('web', 'running'), 'running');
});

test('a follower app is in tunnel mode and has no local route; the others keep theirs', () => {
  const roles = new ScriptedRoles('a.local');
  const leadership = new AppLeadership({ roles, logger });
  const routes = [route('web'), route('web', 'admin'), route('db')];
  assert.is(leadership.modeFor('web'), 'local');
  assert.equal(leadership.servedLocally(routes), routes);
  roles.set(appResource('web'), 'follower');
  assert.is(leadership.modeFor('web'), 'tunnel');
  assert.is(leadership.modeFor('db'), 'local');
  assert.equal(leadership.servedLocally(routes), [route('db')]);
  roles.set(appResource('web'), 'leader');
  assert.equal(leadership.servedLocally(routes), routes);
});

test('app role changes reach listeners by app name; kernel changes do not; unsubscribing stops them', () => {
  const roles = new ScriptedRoles('a.local');
  const leadership = new AppLeadership({ roles, logger });
  const seen: string[] = [];
  const unsubscribe = leadership.onAppRoleChange((app, role) => void seen.push(`${app}:${role}`));
  roles.set(appResource('web'), 'follower');
  roles.set(KERNEL, 'follower');
  roles.set(appResource('web'), 'leader');
  unsubscribe();
  roles.set(appResource('web'), 'follower');
  assert.equal(seen, ['web:follower', 'web:leader']);
});

test('the tunnel mode is logged with the leader, once per change', () => {
  const roles = new ScriptedRoles('a.local');
  const leadership = new AppLeadership({ roles, logger });
  const stop = leadership.logChanges();
  logged.length = 0;
  roles.set(appResource('web'), 'follower', 'b.local');
  roles.set(appResource('web'), 'follower', 'b.local');
  stop();
  const lines = logged.map((line) => JSON.parse(line));
  assert.is(lines.length, 1);
  assert.match(lines[0].msg, /tunnel mode/);
  assert.is(lines[0].app, 'web');
  assert.is(lines[0].leader, 'b.local');
});

test('every state-changing API route is a management write except the node-local ones', () => {
  // The OpenAPI document lists every route the daemon serves (api-contract.test.ts checks that).
  const schema = new ApiSchema(readOpenApiDocument());
  const served = schema.operations.map((op) => `${op.method} ${op.path.replace(/\{([a-zA-Z]+)\}/g, ':$1')}`);
  const nodeLocal = [
    'POST /api/v1/auth/login',
    'POST /api/v1/auth/login/second-factor',
    'POST /api/v1/auth/login/passkey/options',
    'POST /api/v1/auth/login/passkey',
    'POST /api/v1/auth/logout',
    'POST /api/v1/crypto/unlock',
    'POST /api/v1/crypto/lock',
  ];
  for (const name of nodeLocal) assert.ok(served.includes(name), `${name} is served`);
  for (const name of served) {
    const write = !name.startsWith('GET ') && name.split(' ')[1]!.startsWith('/api/v1/') && !nodeLocal.includes(name);
    assert.is(isManagementWrite(name), write, name);
  }
  for (const name of ['POST /api/v1/apps', 'DELETE /api/v1/apps/:name', 'POST /api/v1/auth/password', 'POST /api/v1/setup', 'POST /api/v1/crypto/reset-password', 'POST /api/v1/remote/configure']) {
    assert.ok(served.includes(name) && isManagementWrite(name), name);
  }
  assert.not.ok(isManagementWrite('POST /api/v1/test/role'), 'test hooks drive the node itself');
});

const roles = new ScriptedRoles('a.local');
let handled = 0;
const router = new Router(logger)
  .on('GET', '/api/v1/apps', () => ({ body: { apps: [] } }))
  .on('POST', '/api/v1/apps/:name/stop', () => ({ status: 202, body: { handled: ++handled } }))
  .on('POST', '/api/v1/auth/login', () => ({ body: { handled: ++handled } }))
  .before(leaderOnlyWrites(roles));
const server = new HttpServerModule({ name: 'test', address: { host: '127.0.0.1', port: 0 }, listener: router.listener, logger });

async function call(method: string, path: string) {
  const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { method });
  return { status: res.status, json: await res.json() };
}

test.before(() => server.start());
test.after(() => server.stop());

test('a kernel follower answers management writes with 409 naming the leader, and runs no handler', async () => {
  roles.set(KERNEL, 'follower', 'b.local');
  const before = handled;
  const refused = await call('POST', '/api/v1/apps/web/stop');
  assert.is(refused.status, 409);
  assert.is(refused.json.error.code, 'not_leader');
  assert.is(refused.json.error.details.leader, 'b.local');
  assert.match(refused.json.error.message, /manage the device at b\.local/);
  assert.is(handled, before);
  assert.is((await call('GET', '/api/v1/apps')).status, 200, 'reads still work');
  assert.is((await call('POST', '/api/v1/auth/login')).status, 200, 'signing in to this node still works');
  roles.set(KERNEL, 'follower');
  assert.is((await call('POST', '/api/v1/apps/web/stop')).json.error.details.leader, null, 'an unknown leader is said to be unknown');
});

test('leader again, the same write goes through', async () => {
  roles.set(KERNEL, 'leader');
  const res = await call('POST', '/api/v1/apps/web/stop');
  assert.is(res.status, 202);
  assert.ok(res.json.handled > 0);
});

test('unknown routes stay 404 on a follower: the check runs only for a matched route', async () => {
  roles.set(KERNEL, 'follower', 'b.local');
  assert.is((await call('POST', '/api/v1/nothing')).status, 404);
  roles.set(KERNEL, 'leader');
});

test.run();
