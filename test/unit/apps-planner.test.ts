// The planner from tables: current engine state → desired apps → steps. Also the depends_on
// order and the rendering that the planner's hashes come from.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AppRecord } from '../../services/daemon/control-document.js';
import { engineName, renderApp, serviceUrlVariable, type DesiredApp } from '../../services/daemon/apps/container-spec.js';
import { checkDependencies } from '../../services/daemon/apps/dependencies.js';
import { DependencyCycleError, DependencyError } from '../../services/daemon/apps/errors.js';
import { dependentsOf, startOrder, withDependencies } from '../../services/daemon/apps/order.js';
import { plan, type CurrentContainer, type CurrentNetwork, type CurrentState, type DesiredAppState, type Step } from '../../services/daemon/apps/planner.js';
import { normalizeSpec } from '../../services/daemon/apps/spec/normalize.js';
import type { AppSpecInput } from '../../services/daemon/apps/spec/types.js';
import { deriveState } from '../../services/daemon/apps/status.js';

interface AppOptions {
  run?: 'running' | 'stopped';
  dependsOn?: string[];
  internet?: 'allow' | 'deny';
  image?: string;
  subnet?: number;
}

function desiredApp(name: string, { run = 'running', dependsOn = [], internet = 'allow', image = 'localhost/web:1', subnet = 1 }: AppOptions = {}): DesiredApp {
  const input: AppSpecInput = { name, image, listeners: [{ name: 'web', guest_port: 80, protocol: 'http' }], depends_on: dependsOn, permissions: { network: { internet } } };
  const record: AppRecord = {
    spec: normalizeSpec(input),
    revision: 1,
    installedAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
    run,
    history: [],
    ports: { web: { hostBind: 15000 + subnet, public: 35000 + subnet } },
    subnet: `10.201.${subnet}.0/24`,
  };
  return { name, record, imageId: `sha256:${image}` };
}

function desired(...apps: DesiredApp[]): DesiredAppState[] {
  const byName = new Map(apps.map((app) => [app.name, app]));
  return apps.map((app) => ({ name: app.name, run: app.record.run, dependsOn: app.record.spec.depends_on, ...renderApp(app, byName) }));
}

/** The containers and networks the engine would report with everything of `state` converged. */
function converged(state: DesiredAppState[], running = true): CurrentState {
  return {
    containers: state.map((app) => container(app.name, { configHash: app.configHash, running, networks: [engineName(app.name), ...app.container.dependencyNetworks] })),
    networks: state.map((app) => network(app.name, { subnet: app.network.subnet, internal: app.network.internal })),
  };
}

function container(app: string, overrides: Partial<CurrentContainer> = {}): CurrentContainer {
  return { id: `id-${app}`, name: engineName(app), app, role: 'app', configHash: 'old', running: true, networks: [engineName(app)], ...overrides };
}

function network(app: string, overrides: Partial<CurrentNetwork> = {}): CurrentNetwork {
  return { name: engineName(app), app, subnet: '10.201.1.0/24', internal: false, ...overrides };
}

/** Steps as short strings: "create-container web", "remove-container id-x (reason)". */
function brief(steps: Step[]): string[] {
  return steps.map((step) => {
    switch (step.kind) {
      case 'remove-container':
        return `remove-container ${step.containerId} (${step.reason})`;
      case 'remove-network':
        return `remove-network ${step.network}`;
      case 'create-network':
        return `create-network ${step.network.name}${step.network.internal ? ' internal' : ''}`;
      case 'create-container':
        return `create-container ${step.container.name}`;
      case 'start-container':
        return `start-container ${step.container}`;
      case 'stop-container':
        return `stop-container ${step.containerId}`;
    }
  });
}

const NOTHING: CurrentState = { containers: [], networks: [] };

test('fresh install: network, container, start', () => {
  assert.equal(brief(plan(NOTHING, desired(desiredApp('web')))), ['create-network piccolo-web', 'create-container piccolo-web', 'start-container piccolo-web']);
});

test('converged: no steps', () => {
  const want = desired(desiredApp('web'), desiredApp('db', { subnet: 2 }));
  assert.equal(plan(converged(want), want), []);
});

test('table: one app, current → desired → steps', () => {
  const running = desired(desiredApp('web'));
  const stopped = desired(desiredApp('web', { run: 'stopped' }));
  const hash = running[0]!.configHash;
  const rows: { name: string; current: CurrentState; want: DesiredAppState[]; steps: string[] }[] = [
    { name: 'stopped container, want running', current: converged(running, false), want: running, steps: ['start-container piccolo-web'] },
    { name: 'running, want stopped', current: converged(running), want: stopped, steps: ['stop-container id-web'] },
    { name: 'stopped, want stopped', current: converged(running, false), want: stopped, steps: [] },
    { name: 'nothing, want stopped: nothing to make', current: NOTHING, want: stopped, steps: ['create-network piccolo-web'] },
    {
      name: 'outdated config: replaced',
      current: { containers: [container('web', { configHash: 'old' })], networks: [network('web')] },
      want: running,
      steps: ['remove-container id-web (configuration changed)', 'create-container piccolo-web', 'start-container piccolo-web'],
    },
    {
      name: 'outdated config while stopped: removed, made at the next start',
      current: { containers: [container('web', { configHash: 'old', running: false })], networks: [network('web')] },
      want: stopped,
      steps: ['remove-container id-web (configuration changed)'],
    },
    {
      name: 'container without its network: network made, container kept if attached',
      current: { containers: [container('web', { configHash: hash })], networks: [] },
      want: running,
      steps: ['create-network piccolo-web'],
    },
    {
      name: 'duplicates: the running one with the current config is kept',
      current: {
        containers: [container('web', { id: 'a', configHash: hash, running: false }), container('web', { id: 'b', configHash: hash }), container('web', { id: 'c' })],
        networks: [network('web')],
      },
      want: running,
      steps: ['remove-container a (duplicate container)', 'remove-container c (duplicate container)'],
    },
    {
      name: 'a labelled container that is not the app container is a stray',
      current: { containers: [...converged(running).containers, container('web', { id: 'x', name: 'piccolo-web-old' })], networks: [network('web')] },
      want: running,
      steps: ['remove-container x (not the app container)'],
    },
  ];
  for (const row of rows) assert.equal(brief(plan(row.current, row.want)), row.steps, row.name);
});

test('strays of uninstalled apps go first, containers before their network', () => {
  const want = desired(desiredApp('web'));
  const current = converged(want);
  const withStray: CurrentState = {
    containers: [...current.containers, container('gone', { id: 'g1' }), container('gone', { id: 'g2', name: 'other' })],
    networks: [...current.networks, network('gone', { subnet: '10.201.9.0/24' })],
  };
  assert.equal(brief(plan(withStray, want)), ['remove-container g1 (app is not installed)', 'remove-container g2 (app is not installed)', 'remove-network piccolo-gone']);
});

test('internet deny: an internal network; switching recreates network and container', () => {
  const open = desired(desiredApp('web'));
  const closed = desired(desiredApp('web', { internet: 'deny' }));
  assert.equal(brief(plan(NOTHING, closed)), ['create-network piccolo-web internal', 'create-container piccolo-web', 'start-container piccolo-web']);
  const start = plan(NOTHING, closed).find((step) => step.kind === 'start-container');
  assert.equal(start, { kind: 'start-container', app: 'web', container: 'piccolo-web', hostPorts: [15001], internalNetwork: 'piccolo-web' });
  assert.equal(brief(plan(converged(open), closed)), [
    'remove-container id-web (attached to network piccolo-web, which is removed)',
    'remove-network piccolo-web',
    'create-network piccolo-web internal',
    'create-container piccolo-web',
    'start-container piccolo-web',
  ]);
});

test('depends_on: dependencies first; a dependent joins its dependency network', () => {
  const want = desired(desiredApp('web', { dependsOn: ['db'], subnet: 1 }), desiredApp('db', { subnet: 2 }), desiredApp('cache', { subnet: 3 }));
  assert.equal(brief(plan(NOTHING, want)).filter((s) => s.startsWith('start')), ['start-container piccolo-cache', 'start-container piccolo-db', 'start-container piccolo-web']);
  const web = want.find((app) => app.name === 'web')!;
  assert.equal(web.container.dependencyNetworks, ['piccolo-db']);
});

test('a dependency network recreated: the dependent attached to it is recreated too', () => {
  const before = desired(desiredApp('web', { dependsOn: ['db'] }), desiredApp('db', { subnet: 2 }));
  const after = desired(desiredApp('web', { dependsOn: ['db'] }), desiredApp('db', { subnet: 2, internet: 'deny' }));
  assert.equal(brief(plan(converged(before), after)), [
    'remove-container id-web (attached to network piccolo-db, which is removed)',
    'remove-container id-db (attached to network piccolo-db, which is removed)',
    'remove-network piccolo-db',
    'create-network piccolo-db internal',
    'create-container piccolo-db',
    'start-container piccolo-db',
    'create-container piccolo-web',
    'start-container piccolo-web',
  ]);
});

test('a container missing a network attachment is recreated', () => {
  const want = desired(desiredApp('web', { dependsOn: ['db'] }), desiredApp('db', { subnet: 2 }));
  const current = converged(want);
  const detached: CurrentState = { ...current, containers: current.containers.map((c) => (c.app === 'web' ? { ...c, networks: ['piccolo-web'] } : c)) };
  assert.equal(brief(plan(detached, want)), ['remove-container id-web (network attachments changed)', 'create-container piccolo-web', 'start-container piccolo-web']);
});

test('a new image changes the hash; the same spec renders the same hash', () => {
  const [one] = desired(desiredApp('web'));
  const [same] = desired(desiredApp('web'));
  const [other] = desired(desiredApp('web', { image: 'localhost/web:2' }));
  assert.is(one!.configHash, same!.configHash);
  assert.is.not(one!.configHash, other!.configHash);
});

test('render: loopback ports, fixed address, service URLs for own and dependency listeners', () => {
  const db = desiredApp('db', { subnet: 2 });
  const web = desiredApp('web', { dependsOn: ['db'], subnet: 1 });
  const { container, network } = renderApp(web, new Map([['db', db], ['web', web]]));
  assert.equal(container.ports, [{ guestPort: 80, hostPort: 15001 }]);
  assert.equal(container.network, { name: 'piccolo-web', ip: '10.201.1.2' });
  assert.equal(network, { name: 'piccolo-web', app: 'web', subnet: '10.201.1.0/24', gateway: '10.201.1.1', internal: false });
  assert.is(container.env.PICCOLO_SERVICE_URL_WEB, 'http://127.0.0.1:80');
  assert.is(container.env.PICCOLO_SERVICE_URL_DB_WEB, 'http://10.201.2.2:80');
  assert.is(serviceUrlVariable('my-api', 'note-app'), 'PICCOLO_SERVICE_URL_NOTE_APP_MY_API');
});

test('render: environment, limits, persistent and temporary storage', () => {
  const app = desiredApp('web');
  app.record.spec = normalizeSpec({
    name: 'web',
    image: 'localhost/web:1',
    listeners: [{ name: 'web', guest_port: 80 }],
    environment: { MODE: 'prod', PORT: 80 },
    resources: { limits: { memory: '64Mi', cpu: 0.5 } },
    storage: { persistent: { data: { container: '/data' } }, temporary: { cache: { container: '/cache', size_limit: '1Mi' } } },
  });
  app.volumeDir = '/vol/web';
  const { container } = renderApp(app, new Map([['web', app]]));
  assert.is(container.env.MODE, 'prod');
  assert.is(container.env.PORT, '80');
  assert.is(container.memoryBytes, 64 * 1024 * 1024);
  assert.is(container.nanoCpus, 500_000_000);
  assert.equal(container.binds, [{ host: '/vol/web/data', container: '/data' }]);
  assert.equal(container.tmpfs, [{ container: '/cache', sizeBytes: 1024 * 1024 }]);
});

test('start order: topological, stable, cycles named', () => {
  const nodes = [
    { name: 'web', dependsOn: ['api'] },
    { name: 'api', dependsOn: ['db', 'cache'] },
    { name: 'db', dependsOn: [] },
    { name: 'cache', dependsOn: [] },
    { name: 'admin', dependsOn: ['db'] },
  ];
  assert.equal(startOrder(nodes), ['db', 'admin', 'cache', 'api', 'web']);
  assert.equal(dependentsOf('db', nodes), ['admin', 'api', 'web']);
  assert.equal(withDependencies('api', nodes), ['api', 'cache', 'db']);
  try {
    startOrder([...nodes, { name: 'x', dependsOn: ['y'] }, { name: 'y', dependsOn: ['z'] }, { name: 'z', dependsOn: ['x'] }]);
    assert.unreachable('a cycle must throw');
  } catch (err) {
    assert.instance(err, DependencyCycleError);
    assert.is((err as Error).message, 'depends_on forms a cycle: x → y → z → x');
  }
  assert.throws(() => plan(NOTHING, desired(desiredApp('a', { dependsOn: ['b'] }), desiredApp('b', { dependsOn: ['a'], subnet: 2 }))), (err: Error) => err instanceof DependencyCycleError);
});

test('dependency rules: installed, no cycle, no internet leak through a dependency', () => {
  const spec = (name: string, depends_on: string[], internet: 'allow' | 'deny' = 'allow') =>
    normalizeSpec({ name, image: 'i', listeners: [], depends_on, permissions: { network: { internet } } });
  checkDependencies({ web: spec('web', ['db']), db: spec('db', []) });
  assert.throws(() => checkDependencies({ web: spec('web', ['db']) }), (err: Error) => err instanceof DependencyError && /db, which is not installed/.test(err.message));
  assert.throws(() => checkDependencies({ web: spec('web', ['db'], 'deny'), db: spec('db', []) }), /route out/);
  checkDependencies({ web: spec('web', ['db']), db: spec('db', [], 'deny') });
});

test('state: jobs, failures, desired run state and the container', () => {
  const base = { container: undefined, activeJob: undefined, failure: undefined, backoff: undefined, now: 0 } as const;
  const running = { ...container('web'), state: 'running', exitCode: undefined, error: undefined, startedAt: undefined, finishedAt: undefined };
  const exited = { ...running, running: false, state: 'exited', exitCode: 3 };
  assert.equal(deriveState({ ...base, run: 'running', activeJob: 'install' }), { state: 'installing' });
  assert.equal(deriveState({ ...base, run: 'running', activeJob: 'revert' }), { state: 'updating' });
  assert.equal(deriveState({ ...base, run: 'running', failure: 'port 15001 is in use' }), { state: 'failed', reason: 'port 15001 is in use' });
  assert.equal(deriveState({ ...base, run: 'running', container: running }), { state: 'running' });
  assert.equal(deriveState({ ...base, run: 'stopped', container: exited }), { state: 'stopped' });
  assert.equal(deriveState({ ...base, run: 'running', container: exited, backoff: { attempts: 2, nextAt: 8000 }, now: 1000 }), {
    state: 'failed',
    reason: 'the container exited with code 3; restart 3 in 7 s',
  });
});

test.run();
