// Apps through the daemon's API, end to end: the real daemon bundle, real Podman, the app's data
// in its own gocryptfs volume. Install from a spec, serve, lock (apps stop, volumes close),
// unlock (apps come back with their data), uninstall with confirmation.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { startTestDaemon, removeTestDir, waitFor, type ServiceProcess } from '../support/processes.js';
import { exposedBeyondLoopback, startPodman, type TestPodman } from '../support/podman.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-apps-api-'));
const stateDir = path.join(dir, 'state');
const PASSWORD = 'Apps-Api-Secret-42';
let podman: TestPodman;
let daemon: ServiceProcess;
let api = '';
let cookie = '';
let csrf = '';
let app = '';
let image = '';

async function call(method: string, route: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(api + route, {
    method,
    headers: { cookie, 'x-csrf-token': csrf, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const json = res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text;
  if (res.headers.get('set-cookie')) cookie = res.headers.get('set-cookie')!.split(';')[0]!;
  if (json?.csrfToken) csrf = json.csrfToken;
  return { status: res.status, body: json };
}

async function jobDone(job: { id: string }): Promise<any> {
  return waitFor(async () => {
    const { body } = await call('GET', `/api/v1/jobs/${job.id}`);
    return body.status === 'running' ? undefined : body;
  }, 60_000, `job ${job.id}`);
}

async function page(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/`)).text();
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  podman = await startPodman();
  app = `${podman.prefix}web`;
  image = await podman.buildHttpdImage('v1', '<h1>hello from the app</h1>');
  ({ proc: daemon, api } = await startTestDaemon(stateDir, { PICCOLO_PODMAN_SOCKET: podman.socketPath }));
  const claimCode = readFileSync(path.join(stateDir, 'claim-code'), 'utf8').trim();
  const claim = await call('POST', '/api/v1/setup/claim', { claimCode });
  assert.is((await call('POST', '/api/v1/setup', { setupToken: claim.body.setupToken, password: PASSWORD, recoveryKeySaved: true })).status, 201);
  // The app manager starts right after the unlock; until then apps answer 503.
  await waitFor(async () => ((await call('GET', '/api/v1/apps')).status === 200 ? true : undefined), 30_000, 'apps available');
});

test.after(async () => {
  await daemon?.kill('SIGTERM');
  await podman?.stop();
  removeTestDir(dir);
});

test('apps need a session; the catalog lists templates', async () => {
  const saved = cookie;
  cookie = '';
  assert.is((await call('GET', '/api/v1/apps')).status, 401);
  cookie = saved;
  const catalog = await call('GET', '/api/v1/catalog');
  assert.is(catalog.status, 200);
  assert.ok(catalog.body.apps.length >= 3);
});

test('a bad spec is a 400 naming each problem; nothing is installed', async () => {
  const bad = await call('POST', '/api/v1/apps', { spec: `name: ${app}\nimage: ${image}\nlisteners:\n  - name: web\n    guest_port: 70000\n    protocl: http\n` });
  assert.is(bad.status, 400);
  assert.ok(bad.body.error.details.some((d: string) => d.startsWith('listeners[0].guest_port')), JSON.stringify(bad.body));
  assert.ok(bad.body.error.details.some((d: string) => d.includes('did you mean protocol')), JSON.stringify(bad.body));
  assert.equal((await call('GET', '/api/v1/apps')).body.apps, []);
});

test('install from a spec: running, served on a loopback host-bind port, data in its encrypted volume', async () => {
  const spec = [
    `name: ${app}`,
    `image: ${image}`,
    'listeners:',
    '  - name: web',
    '    guest_port: 80',
    '    protocol: http',
    'storage:',
    '  persistent:',
    '    data:',
    '      container: /data',
  ].join('\n');
  const t0 = Date.now();
  const install = await call('POST', '/api/v1/apps', { spec });
  assert.is(install.status, 202, JSON.stringify(install.body));
  const job = await jobDone(install.body.job);
  assert.is(job.status, 'succeeded', JSON.stringify(job));
  const view = (await call('GET', `/api/v1/apps/${app}`)).body;
  assert.is(view.state, 'running');
  const hostPort = view.services[0].hostBindPort;
  assert.match(await page(hostPort), /hello from the app/);
  console.log(`  install to serving through the API: ${Date.now() - t0} ms`);
  const services = (await call('GET', '/api/v1/services')).body.services;
  assert.equal(services.map((s: any) => `${s.app}/${s.listener}`), [`${app}/web`]);
  assert.equal(await exposedBeyondLoopback([hostPort]), []);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  assert.ok(mounts.includes(`/volumes/app-${app}/mnt`), 'the app volume is a gocryptfs mount');
  // The page fetched above is in the app's log: busybox httpd -v logs each answer.
  assert.match((await call('GET', `/api/v1/apps/${app}/logs?tail=5`)).body, /response:200/);
  // Followed, the log streams what the app writes after the request: busybox httpd -v logs each
  // answer, and so far every answer was a 200; a 404 asked for once the tail has arrived must come
  // on the stream. Not before: Podman (k8s-file) reads the tail, then follows from the file's end,
  // and a line written in between is in neither (the likeliest cause of one CI failure).
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 15_000);
  let streamed = '';
  let askedFor404 = false;
  try {
    const followed = await fetch(`${api}/api/v1/apps/${app}/logs?tail=1&follow=true`, { headers: { cookie }, signal: abort.signal });
    assert.is(followed.status, 200);
    const reader = followed.body!.getReader();
    while (!streamed.includes('response:404')) {
      const { value, done } = await reader.read();
      if (done) break;
      streamed += Buffer.from(value).toString('utf8');
      if (!askedFor404 && streamed.includes('response:200')) {
        askedFor404 = true;
        await fetch(`http://127.0.0.1:${hostPort}/no-such-page`).then((res) => res.text(), () => '');
      }
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  assert.match(streamed, 'response:404', `the app's new line arrives on the followed log: ${JSON.stringify(streamed.slice(-300))}`);
  assert.match(streamed, /^[\s\S]*response:200[\s\S]*response:404/, 'after the last line before it (tail=1)');
  // With nothing to send yet (tail=0 of a quiet app) the response still starts at once: Podman
  // holds its head until the first line, and a proxy in between would time out waiting for it.
  const asked = Date.now();
  const quiet = await fetch(`${api}/api/v1/apps/${app}/logs?tail=0&follow=true`, { headers: { cookie }, signal: AbortSignal.timeout(10_000) });
  assert.is(quiet.status, 200);
  assert.ok(Date.now() - asked < 3000, `the followed log of a quiet app answered after ${Date.now() - asked} ms`);
  await quiet.body?.cancel();
  const stats = await call('GET', `/api/v1/apps/${app}/stats`);
  assert.is(stats.status, 200);
  assert.type(stats.body.memoryBytes, 'number');
});

test('lock stops the app and closes its volume; unlock brings both back', async () => {
  const hostPort = (await call('GET', `/api/v1/apps/${app}`)).body.services[0].hostBindPort;
  assert.is((await call('POST', '/api/v1/crypto/lock', { confirm: true })).status, 200);
  assert.not.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(`/volumes/app-${app}/mnt`));
  assert.is((await call('GET', '/api/v1/apps')).status, 401, 'the lock ended the session');
  const unlock = await call('POST', '/api/v1/crypto/unlock', { password: PASSWORD });
  assert.is(unlock.status, 200);
  await waitFor(async () => ((await call('GET', `/api/v1/apps/${app}`)).body.state === 'running' ? true : undefined), 60_000, 'app back');
  await waitFor(async () => ((await page(hostPort).catch(() => '')).includes('hello') ? true : undefined), 20_000, 'page back on the same port');
});

test('stop, start, restart, update, history and revert over HTTP: each a job, the page follows', async () => {
  const hostPort = () => call('GET', `/api/v1/apps/${app}/services`).then(({ body }) => body.services[0].hostBindPort as number);
  assert.equal((await call('GET', `/api/v1/apps/${app}/services`)).body.services.map((s: any) => s.listener), ['web']);
  for (const action of ['stop', 'start', 'restart']) {
    const answer = await call('POST', `/api/v1/apps/${app}/${action}`, {});
    assert.is(answer.status, 202, `${action}: ${JSON.stringify(answer.body)}`);
    assert.is((await jobDone(answer.body.job)).status, 'succeeded', action);
    const state = (await call('GET', `/api/v1/apps/${app}`)).body.state;
    assert.is(state, action === 'stop' ? 'stopped' : 'running', `after ${action}`);
  }
  await waitFor(async () => ((await page(await hostPort()).catch(() => '')).includes('hello') ? true : undefined), 20_000, 'page after restart');
  const v2 = await podman.buildHttpdImage('v2', '<h1>version two</h1>');
  const update = await call('PUT', `/api/v1/apps/${app}`, { spec: `name: ${app}\nimage: ${v2}\nlisteners:\n  - name: web\n    guest_port: 80\n    protocol: http\n` });
  assert.is(update.status, 202, JSON.stringify(update.body));
  assert.is((await jobDone(update.body.job)).status, 'succeeded');
  await waitFor(async () => ((await page(await hostPort()).catch(() => '')).includes('version two') ? true : undefined), 20_000, 'version two served');
  const history = (await call('GET', `/api/v1/apps/${app}/history`)).body.history;
  assert.ok(history.some((entry: any) => entry.spec.services[0].image === image), `the first revision is kept: ${JSON.stringify(history)}`);
  const first = history.find((entry: any) => entry.spec.services[0].image === image).revision;
  assert.is((await call('POST', `/api/v1/apps/${app}/revert`, { revision: 'one' })).status, 400, 'a revision must be a number');
  const revert = await call('POST', `/api/v1/apps/${app}/revert`, { revision: first });
  assert.is(revert.status, 202, JSON.stringify(revert.body));
  assert.is((await jobDone(revert.body.job)).status, 'succeeded');
  await waitFor(async () => ((await page(await hostPort()).catch(() => '')).includes('hello from the app') ? true : undefined), 20_000, 'the first version back');
});

test('two installs at once whose host names clash: one wins, the other is a 409 naming the name; nothing of it is left', async () => {
  // web-<P>q-<P>r is the host label of listener "web" of app "<P>q-<P>r" and of listener
  // "web-<P>q" of app "<P>r": the proxy could route that name to only one of them.
  const P = podman.prefix;
  const [long, short] = [`${P}q-${P}r`, `${P}r`];
  const label = `web-${P}q-${P}r`;
  const specOf = (name: string, listener: string) => `name: ${name}\nimage: ${image}\nlisteners:\n  - name: ${listener}\n    guest_port: 80\n    protocol: http\n`;
  const jobsBefore = (await call('GET', '/api/v1/jobs')).body.jobs.length;
  const answers = await Promise.all([call('POST', '/api/v1/apps', { spec: specOf(long, 'web') }), call('POST', '/api/v1/apps', { spec: specOf(short, `web-${P}q`) })]);
  assert.equal(answers.map((a) => a.status).sort(), [202, 409], JSON.stringify(answers.map((a) => a.body)));
  const winner = answers[0]!.status === 202 ? long : short;
  const loser = winner === long ? short : long;
  const refused = answers.find((a) => a.status === 409)!.body.error;
  assert.is(refused.code, 'conflict');
  assert.ok(refused.message.includes(`host name ${label}`), refused.message);
  assert.ok(refused.message.includes(winner), `names the app that holds it: ${refused.message}`);
  assert.is((await jobDone(answers.find((a) => a.status === 202)!.body.job)).status, 'succeeded');
  assert.is((await call('GET', `/api/v1/apps/${loser}`)).status, 404, 'the loser is not installed');
  const jobs = (await call('GET', '/api/v1/jobs')).body.jobs;
  assert.is(jobs.length, jobsBefore + 1, 'one job: the winner\'s');
  assert.not.ok(jobs.some((job: any) => job.app === loser), 'no job for the loser');
  assert.equal(await podman.docker.listContainers({ all: true, filters: { name: [`piccolo-${loser}`] } }).then((list) => list.filter((c) => c.Names.includes(`/piccolo-${loser}`))), []);
  // An update is checked in its commit too: the loser, installed under another listener name, may not take the label by an update.
  const other = loser === short ? specOf(short, 'site') : specOf(long, 'site');
  const install = await call('POST', '/api/v1/apps', { spec: other });
  assert.is(install.status, 202, JSON.stringify(install.body));
  assert.is((await jobDone(install.body.job)).status, 'succeeded');
  const update = await call('PUT', `/api/v1/apps/${loser}`, { spec: loser === short ? specOf(short, `web-${P}q`) : specOf(long, 'web') });
  assert.is(update.status, 409, JSON.stringify(update.body));
  assert.ok(update.body.error.message.includes(`host name ${label}`), update.body.error.message);
  assert.is((await call('GET', `/api/v1/apps/${loser}/history`)).body.history.length, 1, 'the update left no revision behind');
  for (const name of [long, short]) {
    const removal = await call('DELETE', `/api/v1/apps/${name}`, { confirm: name, purge: true });
    assert.is(removal.status, 202, JSON.stringify(removal.body));
    assert.is((await jobDone(removal.body.job)).status, 'succeeded');
  }
});

test('uninstall needs the app name typed as confirmation; purge removes the data', async () => {
  const unconfirmed = await call('DELETE', `/api/v1/apps/${app}`, { confirm: 'yes' });
  assert.is(unconfirmed.status, 400);
  assert.match(unconfirmed.body.error.message, /type the app's name/);
  const removal = await call('DELETE', `/api/v1/apps/${app}`, { confirm: app, purge: true });
  assert.is(removal.status, 202);
  assert.is((await jobDone(removal.body.job)).status, 'succeeded');
  assert.is((await call('GET', `/api/v1/apps/${app}`)).status, 404);
  assert.match(readFileSync(path.join(stateDir, 'audit.log'), 'utf8'), /"event":"app.purge"/);
});

test.run();
