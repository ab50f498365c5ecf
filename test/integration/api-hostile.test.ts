// Every documented route (read from openapi.yaml with ApiSchema) tried with hostile input, signed
// out and signed in: malformed percent-escapes and unknown names in the path, odd queries, bodies
// of the wrong type, size, shape and content type, methods a route does not have. None may answer
// 5xx, an action on an unknown app creates no job, and the daemon still answers afterwards.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { readOpenApiDocument } from '../../services/daemon/api/openapi-document.js';
import { ApiSchema, type Operation } from '../../services/daemon/api/schema.js';
import { ApiSession } from '../support/api-session.js';
import { jobDone } from '../support/jobs.js';
import { setUpWithApps, TEST_PASSWORD } from '../support/portal.js';
import { startTestDaemon, removeTestDir, type ServiceProcess } from '../support/processes.js';
import { startPodman, type TestPodman } from '../support/podman.js';

const schema = new ApiSchema(readOpenApiDocument());
const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-hostile-'));
const stateDir = path.join(dir, 'state');
let podman: TestPodman;
let daemon: ServiceProcess;
let base = '';
let api: ApiSession;
let app = '';
let daemonExited = false;

interface Answer {
  status: number;
  body: string;
  allow?: string;
}
interface Attempt {
  method: string;
  /** Raw, sent as is: no URL normalization gets to fix a malformed escape. */
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/**
 * One raw request; a connection the server drops without an answer is status 0. Keep-alive, as
 * browsers send: a server answering before it read a large body (413, 401) then drains the rest
 * instead of closing the socket under the upload.
 */
function send(attempt: Attempt, signedIn: boolean): Promise<Answer> {
  const { port, hostname } = new URL(base);
  const headers: Record<string, string> = { ...(signedIn ? { cookie: api.cookie, 'x-csrf-token': api.csrf } : {}), ...attempt.headers };
  if (attempt.body !== undefined) headers['content-length'] = String(Buffer.byteLength(attempt.body));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return new Promise<Answer>((resolve) => {
    const req = http.request({ host: hostname, port, method: attempt.method, path: attempt.path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8').slice(0, 300), allow: res.headers.allow }));
      res.on('error', () => resolve({ status: res.statusCode!, body: '' }));
    });
    // A large upload refused with 413 before it is read may have the socket closed under it.
    req.on('error', (err) => resolve({ status: 0, body: String(err) }));
    req.end(attempt.body);
  }).finally(() => agent.destroy());
}

const JSON_TYPE = { 'content-type': 'application/json' };
const BAD_ESCAPES = ['%ff%fe', '%', '%E0%A4%A', '%zz'];
const UNKNOWN = 'no-such-thing-here';
/** Names that decode fine but must be refused or not found: long, traversal, NUL, bidi, spaces. */
const ODD_NAMES = ['a'.repeat(3000), '..%2F..%2Fetc%2Fpasswd', 'x%00y', '%E2%80%AEevil', 'has%20space', 'UPPER', '-'];

const deep = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);
const BODIES: { what: string; headers?: Record<string, string>; body?: string }[] = [
  { what: 'no body, no content type' },
  { what: 'text/plain', headers: { 'content-type': 'text/plain' }, body: 'hello' },
  { what: 'form encoded', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&b=2' },
  { what: 'empty JSON body', headers: JSON_TYPE, body: '' },
  { what: 'invalid JSON', headers: JSON_TYPE, body: '{"not json' },
  { what: 'JSON array', headers: JSON_TYPE, body: '[1,2,3]' },
  { what: 'JSON null', headers: JSON_TYPE, body: 'null' },
  { what: 'JSON string', headers: JSON_TYPE, body: '"just a string"' },
  { what: 'JSON number', headers: JSON_TYPE, body: '1e999' },
  { what: 'prototype keys', headers: JSON_TYPE, body: '{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}}}' },
  { what: 'deep nesting', headers: JSON_TYPE, body: `{"a":${deep(5000)}}` },
  { what: 'wrong field types', headers: JSON_TYPE, body: '{"password":123,"confirm":"yes","name":[],"spec":{},"revision":"1","claimCode":null,"relayUrl":false}' },
  { what: 'huge JSON', headers: JSON_TYPE, body: JSON.stringify({ password: 'x'.repeat(2 * 1024 * 1024) }) },
  { what: 'JSON declared UTF-16', headers: { 'content-type': 'application/json; charset=utf-16' }, body: '\ufeff{"a":1}' },
];

/** App sources that parse as JSON and pass the schema's shape, but are nonsense inside. */
const APP_SOURCES = [
  { spec: '' },
  { spec: 'just a string' },
  { spec: '- a\n- list' },
  { spec: 'name: x\nimage:\n  nested: true\n' },
  { spec: `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n` },
  { spec: 'name: !!binary aGVsbG8=\nimage: x\n' },
  { spec: '{ "name": "x", "image": "busybox", "listeners": [{"name": "web", "guest_port": "80"}] }' },
  { compose: 'services: 5' },
  { compose: 'services:\n  a:\n    image: [1]\n' },
  { compose: 'services:\n  web:\n    image: busybox\n    ports: ["99999:80", "a:b:c:d"]\n' },
  { compose: '' },
  { catalog: '../../etc/passwd' },
  { catalog: UNKNOWN },
  { spec: 'name: x\nimage: y\n', catalog: 'z' },
];

/** The path with each {param} replaced by value (raw: already escaped as wanted). */
function fill(op: Operation, value: string): string {
  return op.path.replace(/\{[^}]+\}/g, value);
}

const hasParam = (op: Operation) => op.path.includes('{');
const takesBody = (op: Operation) => ['POST', 'PUT', 'DELETE', 'PATCH'].includes(op.method);
/** Ends the session it is sent with, whatever its input: the signed-in pass signs in again after it. */
const endsSession = (op: Operation) => op.operationId === 'logout';

const failures: string[] = [];
let sent = 0;

async function attempt(label: string, request: Attempt, signedIn: boolean, expect?: (answer: Answer) => string | undefined): Promise<Answer> {
  const answer = await send(request, signedIn);
  sent++;
  const where = `${signedIn ? 'signed in' : 'signed out'} ${request.method} ${request.path.slice(0, 120)} (${label})`;
  if (answer.status >= 500 || answer.status === 0) failures.push(`${where}: ${answer.status} ${answer.body}`);
  else {
    const problem = expect?.(answer);
    if (problem) failures.push(`${where}: ${problem}: ${answer.status} ${answer.body}`);
  }
  if (signedIn && (await api.call('GET', '/api/v1/auth/session')).body.authenticated !== true) {
    if (!request.path.endsWith('/auth/logout')) failures.push(`${where}: signed the session out`);
    await signIn();
  }
  return answer;
}

async function signIn(): Promise<void> {
  const answer = await api.call('POST', '/api/v1/auth/login', { password: TEST_PASSWORD });
  if (answer.status !== 200) throw new Error(`sign-in failed: ${answer.status} ${JSON.stringify(answer.body)}`);
}

const status = (expected: number) => (answer: Answer) => (answer.status === expected ? undefined : `expected ${expected}`);
const clientError = (answer: Answer) => (answer.status >= 400 && answer.status < 500 ? undefined : 'expected a 4xx');

test.before(async () => {
  try {
    await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
    podman = await startPodman();
    app = `${podman.prefix}web`;
    const image = await podman.buildHttpdImage('v1', '<h1>hostile</h1>');
    ({ proc: daemon, api: base } = await startTestDaemon(stateDir, { PICCOLO_PODMAN_SOCKET: podman.socketPath }));
    void daemon.exited.then(() => (daemonExited = true));
    api = await setUpWithApps(base, stateDir);
    // A real app, so that routes on an existing app get hostile bodies too.
    const spec = `name: ${app}\nimage: ${image}\nlisteners:\n  - name: web\n    guest_port: 80\n    protocol: http\n`;
    const install = await api.call('POST', '/api/v1/apps', { spec });
    assert.is(install.status, 202, JSON.stringify(install.body));
    await jobDone(api, install.body.job);
  } catch (err) {
    console.error('before failed:', err);
    throw err;
  }
});

test.after(async () => {
  await daemon?.kill('SIGTERM');
  await podman?.stop();
  removeTestDir(dir);
});

test('a malformed percent-escape in any path parameter is a 400 naming the parameter', async () => {
  for (const signedIn of [false, true]) {
    for (const op of schema.operations.filter(hasParam)) {
      for (const escape of BAD_ESCAPES) {
        const param = /\{([^}]+)\}/.exec(op.path)![1]!;
        await attempt('bad escape', { method: op.method, path: fill(op, escape), headers: JSON_TYPE, body: takesBody(op) ? '{}' : undefined }, signedIn, (answer) => {
          if (answer.status !== 400) return 'expected 400';
          return answer.body.includes(`${param}:`) ? undefined : `the error does not name ${param}`;
        });
      }
    }
  }
  assert.equal(failures.splice(0), []);
});

test('an action or read on an unknown app or job is a 404 and creates no job', async () => {
  const jobsBefore = (await api.call('GET', '/api/v1/jobs')).body.jobs.length;
  for (const op of schema.operations.filter((op) => /^\/api\/v1\/(apps|jobs)\/\{/.test(op.path))) {
    const bodies: Record<string, unknown> = {
      updateApp: { spec: `name: ${UNKNOWN}\nimage: localhost/x:1\nlisteners:\n  - name: web\n    guest_port: 80\n    protocol: http\n` },
      uninstallApp: { confirm: UNKNOWN },
      revertApp: { revision: 1 },
    };
    const body = bodies[op.operationId];
    await attempt('unknown name', { method: op.method, path: fill(op, UNKNOWN), headers: JSON_TYPE, body: body === undefined ? undefined : JSON.stringify(body) }, true, status(404));
  }
  assert.equal(failures.splice(0), []);
  assert.is((await api.call('GET', '/api/v1/jobs')).body.jobs.length, jobsBefore, 'no job was created');
});

test('odd names and queries on every route: 4xx or an answer, never 5xx', async () => {
  const odd = '?tail=-5&follow=%ff&limit=abc&since=%zz&range=%&cols=x&rows=&name=%00&x=' + 'y'.repeat(4000);
  for (const signedIn of [false, true]) {
    for (const op of schema.operations) {
      if (signedIn && endsSession(op)) continue;
      for (const name of hasParam(op) ? [UNKNOWN, ...ODD_NAMES] : ['']) {
        await attempt('odd name', { method: op.method, path: fill(op, name), headers: JSON_TYPE, body: takesBody(op) ? '[]' : undefined }, signedIn, hasParam(op) ? clientError : undefined);
      }
      // The real app with an odd query: whatever the answer, not a 5xx.
      if (op.path.startsWith('/api/v1/apps/{') && op.method === 'GET') await attempt('odd query', { method: op.method, path: fill(op, app) + odd }, signedIn);
      await attempt('odd query', { method: op.method, path: fill(op, UNKNOWN) + odd, headers: JSON_TYPE, body: takesBody(op) ? '[]' : undefined }, signedIn);
    }
  }
  assert.equal(failures.splice(0), []);
});

test('hostile bodies on every route that takes one: 4xx, never 5xx', async () => {
  for (const signedIn of [false, true]) {
    for (const op of schema.operations.filter(takesBody)) {
      if (signedIn && endsSession(op)) continue;
      // On the real app too: a hostile body must not reach an uninstall, revert or update.
      const paths = hasParam(op) ? [fill(op, UNKNOWN), ...(op.path.startsWith('/api/v1/apps/') ? [fill(op, app)] : [])] : [op.path];
      for (const target of paths) {
        for (const variant of BODIES) {
          // Start, stop, restart and logout read no body: their answer does not depend on one.
          if (['startApp', 'stopApp', 'restartApp'].includes(op.operationId) && target.includes(app)) continue;
          await attempt(variant.what, { method: op.method, path: target, headers: variant.headers, body: variant.body }, signedIn, clientError);
        }
      }
    }
  }
  assert.equal(failures.splice(0), []);
});

test('nonsense app sources to install, preview and update: 4xx, never 5xx, nothing installed', async () => {
  const before = (await api.call('GET', '/api/v1/apps')).body.apps.map((a: { name: string }) => a.name);
  for (const op of schema.operations.filter((op) => ['installApp', 'previewApp', 'updateApp'].includes(op.operationId))) {
    for (const source of APP_SOURCES) {
      await attempt(`source ${JSON.stringify(source).slice(0, 60)}`, { method: op.method, path: fill(op, app), headers: JSON_TYPE, body: JSON.stringify(source) }, true, clientError);
    }
  }
  assert.equal(failures.splice(0), []);
  const after = (await api.call('GET', '/api/v1/apps')).body.apps.map((a: { name: string }) => a.name);
  assert.equal(after, before);
});

test('methods a route does not have are a 405 naming the allowed ones', async () => {
  // A concrete path may match several documented patterns (/api/v1/apps/preview is also
  // /api/v1/apps/{name}): a method is wrong only when no pattern that matches the path has it.
  const pattern = (route: string) => new RegExp(`^${route.replace(/\{[^}]+\}/g, '[^/]+')}$`);
  const served = (target: string, method: string) => schema.operations.some((op) => op.method === method && pattern(op.path).test(target));
  for (const signedIn of [false, true]) {
    for (const route of new Set(schema.operations.map((op) => op.path))) {
      const target = route.replace(/\{[^}]+\}/g, UNKNOWN);
      for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'].filter((m) => !served(target, m))) {
        await attempt('wrong method', { method, path: target, headers: JSON_TYPE, body: method === 'GET' || method === 'OPTIONS' ? undefined : '{}' }, signedIn, (answer) =>
          answer.status !== 405 ? 'expected 405' : answer.allow ? undefined : 'no Allow header');
      }
    }
  }
  assert.equal(failures.splice(0), []);
});

test('hostile headers: broken cookies, a huge CSRF token, an odd Host and X-Forwarded-For', async () => {
  const headers: Record<string, string>[] = [
    { cookie: 'piccolo_session=%ff%fe; =; ;;' },
    { cookie: `piccolo_session=${'a'.repeat(7000)}` },
    { 'x-csrf-token': 'x'.repeat(7000) },
    { host: '' },
    { host: '[::1' },
    { 'x-forwarded-for': '999.1.1.1, not-an-address' },
    { origin: 'null' },
  ];
  for (const op of schema.operations.filter((op) => !endsSession(op))) {
    for (const extra of headers) {
      await attempt(`header ${Object.keys(extra)[0]}`, { method: op.method, path: fill(op, UNKNOWN), headers: { ...JSON_TYPE, ...extra }, body: takesBody(op) ? '[]' : undefined }, !('cookie' in extra));
    }
  }
  assert.equal(failures.splice(0), []);
});

test('the daemon still answers, and logged no internal error', async () => {
  assert.ok(sent > 1000, `${sent} hostile requests sent`);
  assert.is(daemonExited, false, 'the daemon is still running');
  assert.is((await api.call('GET', '/api/v1/version')).status, 200);
  const apps = await api.call('GET', '/api/v1/apps');
  assert.is(apps.status, 200);
  assert.ok(apps.body.apps.some((a: { name: string }) => a.name === app), 'the real app is still installed');
  const internal = daemon.logs.filter((line) => line.msg === 'request failed');
  assert.equal(internal, [], 'no request ended in a logged 500');
});

test.run();
