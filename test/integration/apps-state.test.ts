// The engine state kept in memory (apps/live-state.ts) against real Podman: containers stopped and
// removed behind the daemon's back with the podman CLI show at once through the event stream; an
// event that never arrived is repaired by the periodic resync; a restarted Podman service is
// followed again and read back at once. Then through the daemon's API: GET /api/v1/apps answers
// from that state, and shows a container stopped or removed with the CLI within a couple of seconds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { createLogger } from '../../services/common/logger.js';
import { LABELS } from '../../services/daemon/apps/container-spec.js';
import { Engine, type EngineEvent, type EngineState } from '../../services/daemon/apps/engine.js';
import { LiveEngineState } from '../../services/daemon/apps/live-state.js';
import { setUpWithApps } from '../support/portal.js';
import { jobDone } from '../support/jobs.js';
import { removeTestDir, startTestDaemon, waitFor, type ServiceProcess } from '../support/processes.js';
import { startPodman, startPodmanService, type PodmanService, type TestPodman } from '../support/podman.js';
import type { ApiSession } from '../support/api-session.js';

const execFileAsync = promisify(execFile);
const logger = createLogger({ service: 'test', level: process.env.PICCOLO_TEST_LOG ? 'debug' : 'error' });
const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-apps-state-'));
const HOUR = 3_600_000;
let podman: TestPodman;
let image = '';
const running: { stop(): Promise<void> }[] = [];

function engineOn(docker: TestPodman['docker']): Engine {
  return new Engine({ docker, logger, stopTimeoutS: 1, instance: `apps-state-${podman.prefix}` });
}

function live(engine: Pick<Engine, 'state' | 'events'>, resyncMs: number, reconnect = { initialMs: 200, maxMs: 1000 }): LiveEngineState {
  const state = new LiveEngineState({ engine, logger, resyncMs, reconnect });
  running.push(state);
  return state;
}

/** A container the runtime would own (its labels and this run's mark), made with the CLI. */
async function runContainer(name: string): Promise<string> {
  const labels = [`${LABELS.managed}=true`, `${LABELS.app}=${name}`, `${LABELS.role}=app`, `piccolo.instance=apps-state-${podman.prefix}`];
  const { stdout } = await execFileAsync('podman', ['run', '-d', '--name', name, ...labels.flatMap((label) => ['--label', label]), image]);
  return stdout.trim();
}

const podmanCli = (...args: string[]) => execFileAsync('podman', args, { timeout: 30_000 });
const find = (state: EngineState, name: string) => state.containers.find((c) => c.name === name);

/** How long until the cached state satisfies `probe` (polling its current(), never the engine). */
async function seenWithin(state: LiveEngineState, probe: (s: EngineState) => boolean, timeoutMs: number, what: string): Promise<number> {
  const started = Date.now();
  // While the engine cannot be read, current() throws (the API answers 502): not seen yet.
  const seen = () => {
    try {
      return probe(state.current());
    } catch {
      return false;
    }
  };
  await waitFor(() => (seen() ? true : undefined), timeoutMs, what);
  return Date.now() - started;
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  podman = await startPodman();
  image = await podman.buildHttpdImage('state', '<p>state</p>');
});

test.after(async () => {
  for (const state of running) await state.stop();
  await podman?.stop();
  removeTestDir(dir);
});

test('a container stopped, then removed, with the podman CLI shows through the event stream alone', async () => {
  const name = `${podman.prefix}-events`;
  const state = live(engineOn(podman.docker), HOUR);
  await state.start();
  await runContainer(name);
  const startedMs = await seenWithin(state, (s) => find(s, name)?.running === true, 5000, 'the new container');
  const readsBefore = state.stats.reads;
  await podmanCli('stop', '-t', '0', name);
  const stoppedMs = await seenWithin(state, (s) => find(s, name)?.running === false, 2000, 'the stop');
  assert.is(find(state.current(), name)!.state, 'exited');
  await podmanCli('rm', '-f', name);
  const removedMs = await seenWithin(state, (s) => !find(s, name), 2000, 'the removal');
  // No resync ran (an hour away): the reads were the events' own.
  assert.ok(state.stats.reads > readsBefore, 'read back after the events');
  assert.ok(state.stats.events >= 2, `events counted: ${state.stats.events}`);
  console.log(`  seen after the CLI: run ${startedMs} ms, stop ${stoppedMs} ms, rm ${removedMs} ms`);
});

test('an event that never arrived is repaired by the periodic resync', async () => {
  const name = `${podman.prefix}-missed`;
  const engine = engineOn(podman.docker);
  // The stream is followed, but every event is lost on the way.
  const deaf: Pick<Engine, 'state' | 'events'> = {
    state: () => engine.state(),
    events: async (signal) => {
      const events = await engine.events(signal);
      return (async function* () {
        for await (const _event of events) if (signal.aborted) return;
      })() as AsyncIterable<EngineEvent>;
    },
  };
  await runContainer(name);
  const repaired = live(deaf, 1500);
  const stale = live(deaf, HOUR);
  await Promise.all([repaired.start(), stale.start()]);
  // Each reads back once its stream is accepted; that read must be behind us before the stop.
  for (const state of [repaired, stale]) {
    await waitFor(() => state.stats.connections === 1 || undefined, 10_000, 'the event stream accepted');
    await state.refresh();
  }
  await seenWithin(repaired, (s) => find(s, name)?.running === true, 5000, 'the running container');
  await seenWithin(stale, (s) => find(s, name)?.running === true, 5000, 'the running container (control)');
  await podmanCli('stop', '-t', '0', name);
  const ms = await seenWithin(repaired, (s) => find(s, name)?.running === false, 5000, 'the stop, by the resync');
  // Without the resync the lost event is never made good: the control still says running.
  assert.is(find(stale.current(), name)?.running, true, 'the control (no resync) still has the old state');
  console.log(`  missed stop repaired by the resync after ${ms} ms (resync every 1500 ms)`);
  await podmanCli('rm', '-f', name);
});

test('a restarted Podman service: the stream reconnects and what changed meanwhile is read at once', async () => {
  const name = `${podman.prefix}-reconnect`;
  const socketPath = path.join(dir, 'second.sock');
  let service: PodmanService = await startPodmanService({ socketPath });
  const engine = engineOn(service.docker);
  const state = live(engine, HOUR);
  await runContainer(name);
  await state.start();
  await seenWithin(state, (s) => find(s, name)?.running === true, 5000, 'the running container');
  await waitFor(() => state.stats.connections === 1 || undefined, 10_000, 'the event stream accepted');
  await service.stop();
  // While the service is down the CLI stops the container: no stream can tell of it.
  await podmanCli('stop', '-t', '0', name);
  service = await startPodmanService({ socketPath });
  running.push(service);
  const ms = await seenWithin(state, (s) => find(s, name)?.running === false, 8000, 'the stop made while the stream was down');
  assert.ok(state.stats.connections >= 2, `connections: ${state.stats.connections}`);
  console.log(`  after the service came back: read in ${ms} ms, ${state.stats.connections - 1} reconnect(s)`);
  await podmanCli('rm', '-f', name);
});

let daemon: ServiceProcess | undefined;
let api: ApiSession;

test('through the API: GET /api/v1/apps shows a container stopped and then removed with the CLI within 2 s', async () => {
  const stateDir = path.join(dir, 'state');
  const started = await startTestDaemon(stateDir, { PICCOLO_PODMAN_SOCKET: podman.socketPath });
  daemon = started.proc;
  running.push({ stop: async () => void (await daemon?.kill('SIGTERM')) });
  api = await setUpWithApps(started.api, stateDir);
  const app = `${podman.prefix}web`;
  const spec = [`name: ${app}`, `image: ${image}`, 'listeners:', '  - name: web', '    guest_port: 80', '    protocol: http'].join('\n');
  const install = await api.call('POST', '/api/v1/apps', { spec });
  assert.is(install.status, 202, JSON.stringify(install.body));
  await jobDone(api, install.body.job, 120_000);
  const view = async () => (await api.call('GET', '/api/v1/apps')).body.apps.find((a: { name: string }) => a.name === app);
  assert.is((await view()).state, 'running');
  const container = `piccolo-${app}`;

  await podmanCli('stop', '-t', '0', container);
  const t0 = Date.now();
  const stopped = await waitFor(async () => {
    const current = await view();
    return current.containers[0].state === 'exited' ? current : undefined;
  }, 2000, 'the stop in GET /api/v1/apps');
  console.log(`  stop with the CLI → seen in GET /api/v1/apps after ${Date.now() - t0} ms`);
  assert.is(stopped.state, 'failed');
  assert.match(stopped.reason, /exited with code/);

  await podmanCli('rm', '-f', container);
  const t1 = Date.now();
  const removed = await waitFor(async () => {
    const current = (await api.call('GET', `/api/v1/apps/${app}`)).body;
    return current.containers[0].state === 'missing' ? current : undefined;
  }, 2000, 'the removal in GET /api/v1/apps/{name}');
  console.log(`  rm with the CLI → seen in GET /api/v1/apps/{name} after ${Date.now() - t1} ms`);
  assert.match(removed.reason, /has no container/);
  // The supervisor makes it again, and the API says so without being asked to look.
  await waitFor(async () => ((await view()).state === 'running' ? true : undefined), 30_000, 'the app recreated by the supervisor');
});

test.run();
