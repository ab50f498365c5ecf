// An app's state over all of its containers, and supervision's restart decisions by each
// service's restart policy, from tables.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AppRecord } from '../../services/daemon/control-document.js';
import type { ContainerStatus, EngineState } from '../../services/daemon/apps/engine.js';
import { normalizeSpec } from '../../services/daemon/apps/spec/normalize.js';
import type { AppSpecInput, RestartPolicy } from '../../services/daemon/apps/spec/types.js';
import { deriveState } from '../../services/daemon/apps/status.js';
import { dueForRestart, heldContainers, restartable } from '../../services/daemon/apps/supervision.js';
import type { RestartBackoff } from '../../services/daemon/apps/status.js';
import { appView } from '../../services/daemon/apps/views.js';

function status(name: string, overrides: Partial<ContainerStatus> = {}): ContainerStatus {
  return {
    id: `id-${name}`,
    name,
    app: 'stack',
    role: 'app',
    service: name.replace(/^piccolo-stack-/, ''),
    configHash: 'h',
    running: true,
    networks: ['piccolo-stack'],
    state: 'running',
    exitCode: undefined,
    error: undefined,
    health: undefined,
    imageId: 'sha256:x',
    startedAt: '2026-01-01T00:00:00Z',
    finishedAt: undefined,
    ...overrides,
  };
}

const exited = (name: string, exitCode: number) => status(name, { running: false, state: 'exited', exitCode });

function stack(workerRestart: RestartPolicy = 'unless-stopped'): AppRecord {
  const input: AppSpecInput = {
    name: 'stack',
    services: {
      db: { image: 'db:1' },
      migrate: { image: 'db:1', restart: 'no', depends_on: ['db'] },
      worker: { image: 'w:1', restart: workerRestart, depends_on: ['db'] },
      web: { image: 'web:1', depends_on: ['db'] },
    },
    listeners: [{ name: 'web', guest_port: 80, service: 'web' }],
  };
  return { spec: normalizeSpec(input), revision: 1, installedAt: 'x', updatedAt: 'x', run: 'running', history: [], ports: { web: { hostBind: 15001, public: 35001 } }, subnet: '10.201.1.0/24' };
}

const engine = (...containers: ContainerStatus[]): EngineState => ({ containers, networks: [] });
const all = (overrides: Record<string, ContainerStatus> = {}) =>
  engine(...['db', 'migrate', 'worker', 'web'].map((service) => overrides[service] ?? (service === 'migrate' ? exited('piccolo-stack-migrate', 0) : status(`piccolo-stack-${service}`))));
const without = (service: string) => engine(...all().containers.filter((c) => c.service !== service));
const facts = { run: 'running' as const, activeJob: undefined, failure: undefined, backoff: undefined, now: 0 };
const verdict = { health: 'unknown' as const };

test('state: jobs, failures, desired run state and the container (short form)', () => {
  const base = { services: [], shortForm: true, activeJob: undefined, failure: undefined, backoff: undefined, now: 0 } as const;
  const one = (container: ContainerStatus | undefined) => [{ service: 'app', container, restart: 'unless-stopped' as const }];
  assert.equal(deriveState({ ...base, run: 'running', activeJob: 'install' }), { state: 'installing' });
  assert.equal(deriveState({ ...base, run: 'running', activeJob: 'revert' }), { state: 'updating' });
  assert.equal(deriveState({ ...base, run: 'running', failure: 'port 15001 is in use' }), { state: 'failed', reason: 'port 15001 is in use' });
  assert.equal(deriveState({ ...base, run: 'running', services: one(status('piccolo-web')) }), { state: 'running' });
  assert.equal(deriveState({ ...base, run: 'stopped', services: one(exited('piccolo-web', 3)) }), { state: 'stopped' });
  assert.equal(deriveState({ ...base, run: 'running', services: one(exited('piccolo-web', 3)), backoff: { attempts: 2, nextAt: 8000 }, now: 1000 }), {
    state: 'failed',
    reason: 'the container exited with code 3; restart 3 in 7 s',
  });
  assert.equal(deriveState({ ...base, run: 'running', services: one(undefined) }), { state: 'failed', reason: 'the app has no container; the next reconcile creates it' });
});

test('state of a multi-container app: running only when every service is (a completed one-shot counts); failed names the service', () => {
  const record = stack();
  assert.is(appView('stack', record, all(), facts, verdict).state, 'running');
  const down = appView('stack', record, all({ worker: exited('piccolo-stack-worker', 2) }), facts, verdict);
  assert.equal([down.state, down.reason], ['failed', 'service worker: the container exited with code 2']);
  const missing = appView('stack', record, without('db'), facts, verdict);
  assert.ok(missing.state === 'failed' && missing.reason!.startsWith('service db'), missing.reason);
  const failedOneShot = appView('stack', record, all({ migrate: exited('piccolo-stack-migrate', 1) }), facts, verdict);
  assert.equal([failedOneShot.state, failedOneShot.reason], ['failed', 'service migrate: the container exited with code 1']);
});

test('the view lists every container; the main one is the first listener\'s service', () => {
  const view = appView('stack', stack(), all({ db: status('piccolo-stack-db', { health: 'healthy' }) }), facts, verdict);
  assert.equal(view.containers.map((c) => `${c.service}:${c.name}:${c.state}`), ['db:piccolo-stack-db:running', 'migrate:piccolo-stack-migrate:exited', 'worker:piccolo-stack-worker:running', 'web:piccolo-stack-web:running']);
  assert.is(view.containers[0]!.health, 'healthy');
  assert.is(view.container!.id, 'id-piccolo-stack-web');
  assert.equal(view.services.map((s) => s.localUrl), ['tcp://127.0.0.1:15001']);
});

test('supervision by restart policy: no stays down, on-failure only after a failure, unless-stopped always', () => {
  const rows: [RestartPolicy, number, boolean][] = [
    ['no', 1, false],
    ['no', 0, false],
    ['on-failure', 1, true],
    ['on-failure', 0, false],
    ['unless-stopped', 0, true],
    ['always', 0, true],
  ];
  for (const [policy, code, expected] of rows) {
    const record = stack(policy);
    assert.is(restartable('stack', record, all({ worker: exited('piccolo-stack-worker', code) })), expected, `${policy} after exit ${code}`);
  }
  assert.equal([...heldContainers('stack', stack('no'), all({ worker: exited('piccolo-stack-worker', 1) }))].sort(), ['piccolo-stack-migrate', 'piccolo-stack-worker']);
  assert.is(restartable('stack', stack(), without('db')), true, 'a missing container is made again');
});

test('supervision backoff: first seen down waits, then doubles; stable running forgets it', () => {
  const backoff = new Map<string, RestartBackoff>();
  const policy = { initialMs: 1000, maxMs: 5000, stableMs: 10_000 };
  const apps = [{ name: 'stack', record: stack() }];
  const down = all({ web: exited('piccolo-stack-web', 137) });
  assert.equal([...dueForRestart(apps, down, backoff, policy, 0)], []);
  assert.equal(backoff.get('stack'), { attempts: 0, nextAt: 1000 });
  assert.equal([...dueForRestart(apps, down, backoff, policy, 500)], []);
  assert.equal([...dueForRestart(apps, down, backoff, policy, 1000)], ['stack']);
  assert.equal(backoff.get('stack'), { attempts: 1, nextAt: 3000 });
  assert.equal([...dueForRestart(apps, down, backoff, policy, 3000)], ['stack']);
  assert.equal(backoff.get('stack'), { attempts: 2, nextAt: 7000 });
  const up = all();
  dueForRestart(apps, up, backoff, policy, Date.parse('2026-01-01T00:00:05Z'));
  assert.ok(backoff.has('stack'), 'up for 5 s: not yet stable');
  dueForRestart(apps, up, backoff, policy, Date.parse('2026-01-01T00:00:11Z'));
  assert.not.ok(backoff.has('stack'), 'up for 11 s: forgotten');
});

test.run();
