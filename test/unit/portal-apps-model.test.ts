// What the portal's Apps screens decide from the daemon's data, without a browser: which actions
// an app's state allows, where its Open links go (local, remote, none for raw TCP), how a job
// reads (the image download in bytes, then the steps), and how a refused source lists its faults.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiError } from '../../services/daemon/portal/src/api/client.js';
import { formatBytes } from '../../services/daemon/portal/src/format.js';
import { actionsFor, appLinks, canOpen, jobDetail, jobFraction, stateWords, type JobRecord, type ServiceEntry } from '../../services/daemon/portal/src/screens/apps/model.js';
import { problemText, sourceProblems } from '../../services/daemon/portal/src/screens/apps/source.js';
import type { RemoteStatus } from '../../services/daemon/remote/remote-access.js';

const service = (listener: string, protocol: ServiceEntry['protocol'], publicPort: number): ServiceEntry => ({
  app: 'web',
  listener,
  guestPort: 80,
  hostBindPort: 15000,
  publicPort,
  localUrl: 'http://127.0.0.1:15000',
  protocol,
  flow: 'tcp',
});

test('actions: a running app stops and restarts; a stopped one only starts; a failed one starts again or stops retrying; a busy one waits', () => {
  assert.equal(actionsFor({ state: 'running', run: 'running' }), { start: false, stop: true, restart: true, uninstall: true, update: true });
  assert.equal(actionsFor({ state: 'stopped', run: 'stopped' }), { start: true, stop: false, restart: false, uninstall: true, update: true });
  assert.equal(actionsFor({ state: 'failed', run: 'running' }), { start: true, stop: true, restart: false, uninstall: true, update: true });
  assert.equal(actionsFor({ state: 'failed', run: 'stopped' }).stop, false);
  for (const state of ['installing', 'starting', 'stopping', 'updating', 'removing'] as const) {
    assert.equal(Object.values(actionsFor({ state, run: 'running' })), [false, false, false, false, false], state);
  }
  assert.equal(Object.values(actionsFor({ state: 'running', run: 'running' }, true)), [false, false, false, false, false], 'a job of its own is running');
});

test('Open only while running; a failed app says why', () => {
  assert.ok(canOpen({ state: 'running' }));
  for (const state of ['failed', 'stopped', 'starting', 'installing'] as const) assert.not.ok(canOpen({ state }), state);
  assert.is(stateWords({ state: 'failed', reason: 'the container exited with code 3', run: 'running' }), 'Failed: the container exited with code 3');
  assert.match(stateWords({ state: 'stopped', run: 'stopped' })!, /^Stopped/);
});

test('links: a web listener gets Open links (local, and remote when on; serviceUrls builds them), raw TCP an address to copy', () => {
  const services = [service('web', 'http', 35001), service('ssh', 'raw', 35002)];
  assert.equal(appLinks(services, undefined, 'piccolo.local'), [
    { listener: 'web', localUrl: 'http://piccolo.local:35001/', remoteUrl: undefined },
    { listener: 'ssh', address: 'piccolo.local:35002' },
  ]);
  const remote = { enabled: true, hostnames: [{ hostname: 'web-web.apps.example.net', kind: 'app', app: 'web', listener: 'web', mode: 'local', tls: 'device' }] } as unknown as RemoteStatus;
  assert.is(appLinks(services, remote, '192.168.1.5')[0]!.remoteUrl, 'https://web-web.apps.example.net/');
});

const job = (progress: JobRecord['progress'], status: JobRecord['status'] = 'running'): JobRecord => ({
  id: 'j',
  app: 'web',
  kind: 'install',
  status,
  progress,
  createdAt: '2026-01-01T00:00:00Z',
  updatedAt: '2026-01-01T00:00:00Z',
});

test('a job: the download in bytes as the bar, then the steps; done says what was downloaded; failed says why', () => {
  const pulling = job({ done: 0, total: 0, step: 'pull-image', pull: { image: 'r/web:1', currentBytes: 3 * 1024 * 1024, totalBytes: 12 * 1024 * 1024, layersDone: 0, layersTotal: 2, done: false } });
  assert.is(jobDetail(pulling, formatBytes), 'Downloading r/web:1: 3.0 MB of 12 MB, layer 1 of 2');
  assert.equal(jobFraction(pulling), { value: 3 * 1024 * 1024, max: 12 * 1024 * 1024 });
  const stepping = job({ done: 1, total: 3, step: 'create-container' });
  assert.is(jobDetail(stepping, formatBytes), 'Step 2 of 3: creating the container');
  assert.equal(jobFraction(stepping), { value: 1, max: 3 });
  assert.equal(jobFraction(job({ done: 0, total: 0 })), {}, 'nothing known yet: an indeterminate bar');
  const done = job({ done: 3, total: 3, pull: { ...pulling.progress.pull!, currentBytes: 12 * 1024 * 1024, done: true } }, 'succeeded');
  assert.is(jobDetail(done, formatBytes), 'Done, downloaded 12 MB of r/web:1.');
  assert.is(jobDetail({ ...job({ done: 0, total: 0 }, 'failed'), error: 'no space left' }, formatBytes), 'Failed: no space left');
});

test('a refused source: each "path: problem" line, counted, paths untouched; other errors are not source problems', () => {
  const invalid = new ApiError(400, 'bad_request', 'invalid app spec', { 'listeners[0].guest_port': 'must be 1-65535' }, undefined, ['listeners[0].guest_port: must be 1-65535', 'listeners[0].protocl: unknown field']);
  assert.is(problemText(sourceProblems(invalid)), '2 problems:\nlisteners[0].guest_port: must be 1-65535\nlisteners[0].protocl: unknown field');
  const clash = new ApiError(409, 'conflict', 'the app would share a host name', {}, undefined, ['listeners[0].name: its host name web-a is already used by a/web']);
  assert.is(problemText(sourceProblems(clash)), '1 problem:\nlisteners[0].name: its host name web-a is already used by a/web');
  assert.is(sourceProblems(new ApiError(409, 'conflict', 'app web is already installed')), undefined);
  assert.is(sourceProblems(new ApiError(0, 'offline', 'The device does not answer.')), undefined);
});

test.run();
