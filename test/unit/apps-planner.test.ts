// The planner from tables: current engine state → desired apps → steps. Also the depends_on
// order and the rendering that the planner's hashes come from, for the single-container short
// form and for multi-container apps.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AppRecord } from '../../services/daemon/control-document.js';
import { containerName, engineName, renderApp, serviceUrlVariable, type DesiredApp } from '../../services/daemon/apps/container-spec.js';
import { checkDependencies } from '../../services/daemon/apps/dependencies.js';
import { DependencyCycleError, DependencyError, PermissionNotGrantedError } from '../../services/daemon/apps/errors.js';
import { dependentsOf, startOrder, withDependencies } from '../../services/daemon/apps/order.js';
import { plan, retireReplaced, type CurrentContainer, type CurrentNetwork, type CurrentState, type DesiredAppState, type Step } from '../../services/daemon/apps/planner.js';
import { normalizeSpec } from '../../services/daemon/apps/spec/normalize.js';
import type { AppSpecInput } from '../../services/daemon/apps/spec/types.js';

interface AppOptions {
  run?: 'running' | 'stopped';
  dependsOn?: string[];
  internet?: 'allow' | 'deny';
  image?: string;
  subnet?: number;
}

function record(input: AppSpecInput, { run = 'running', subnet = 1 }: AppOptions = {}): AppRecord {
  return {
    spec: normalizeSpec(input),
    revision: 1,
    installedAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
    run,
    history: [],
    ports: Object.fromEntries(input.listeners.map((listener, i) => [listener.name, { hostBind: 15000 + subnet + 100 * i, public: 35000 + subnet + 100 * i }])),
    subnet: `10.201.${subnet}.0/24`,
  };
}

function desiredApp(name: string, { run = 'running', dependsOn = [], internet = 'allow', image = 'localhost/web:1', subnet = 1 }: AppOptions = {}): DesiredApp {
  const input: AppSpecInput = { name, image, listeners: [{ name: 'web', guest_port: 80, protocol: 'http' }], depends_on: dependsOn, permissions: { network: { internet } } };
  return { name, record: record(input, { run, subnet }), imageIds: { app: `sha256:${image}` } };
}

/** A web front and its db, the db with a healthcheck the front waits for, and a one-shot migration. */
function stackApp(name = 'stack', overrides: Partial<AppSpecInput> = {}, granted: string[] = []): DesiredApp {
  const input: AppSpecInput = {
    name,
    services: {
      db: { image: 'localhost/db:1', healthcheck: { test: ['CMD', 'true'], interval: '1s', timeout: '1s', retries: 2 }, mounts: [{ volume: 'data', container: '/var/lib/db' }] },
      migrate: { image: 'localhost/db:1', command: ['migrate'], restart: 'no', depends_on: { db: { condition: 'service_healthy' } } },
      web: {
        image: 'localhost/web:1',
        environment: { MODE: 'web' },
        user: '1000:1000',
        read_only: true,
        cap_drop: ['ALL'],
        depends_on: { db: { condition: 'service_healthy' }, migrate: { condition: 'service_completed_successfully' } },
      },
    },
    listeners: [{ name: 'web', guest_port: 8080, protocol: 'http', service: 'web' }],
    storage: { persistent: { data: {} } },
    environment: { TZ: 'UTC', MODE: 'app' },
    permissions: { network: { internet: 'allow' } },
    ...overrides,
  };
  const app: DesiredApp = {
    name,
    record: record(input),
    imageIds: { db: 'sha256:db', migrate: 'sha256:db', web: 'sha256:web' },
    volumeDir: `/vol/${name}`,
  };
  if (granted.length) app.record.granted = granted;
  return app;
}

function desired(...apps: DesiredApp[]): DesiredAppState[] {
  const byName = new Map(apps.map((app) => [app.name, app]));
  return apps.map((app) => ({ name: app.name, run: app.record.run, dependsOn: app.record.spec.depends_on, ...renderApp(app, byName) }));
}

/** The containers and networks the engine would report with everything of `state` converged. */
function converged(state: DesiredAppState[], running = true): CurrentState {
  return {
    containers: state.flatMap((app) =>
      app.containers.map(({ container: spec, configHash }) =>
        container(app.name, { id: `id-${spec.name}`, name: spec.name, configHash, running, state: running ? 'running' : 'exited', exitCode: running ? undefined : 137, networks: [engineName(app.name), ...spec.dependencyNetworks] }),
      ),
    ),
    networks: state.map((app) => network(app.name, { subnet: app.network.subnet, internal: app.network.internal })),
  };
}

function container(app: string, overrides: Partial<CurrentContainer> = {}): CurrentContainer {
  return { id: `id-${engineName(app)}`, name: engineName(app), app, role: 'app', configHash: 'old', running: true, networks: [engineName(app)], ...overrides };
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
      case 'retire-container':
        return `retire-container ${step.containerId}`;
      case 'remove-network':
        return `remove-network ${step.network}`;
      case 'create-network':
        return `create-network ${step.network.name}${step.network.internal ? ' internal' : ''}`;
      case 'create-container':
        return `create-container ${step.container.name}`;
      case 'wait-container':
        return `wait-container ${step.container} ${step.condition}`;
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
  const want = desired(desiredApp('web'), desiredApp('db', { subnet: 2 }), stackApp('stack'));
  assert.equal(plan(converged(want), want), []);
});

test('table: one app, current → desired → steps', () => {
  const running = desired(desiredApp('web'));
  const stopped = desired(desiredApp('web', { run: 'stopped' }));
  const hash = running[0]!.containers[0]!.configHash;
  const rows: { name: string; current: CurrentState; want: DesiredAppState[]; steps: string[] }[] = [
    { name: 'stopped container, want running', current: converged(running, false), want: running, steps: ['start-container piccolo-web'] },
    { name: 'running, want stopped', current: converged(running), want: stopped, steps: ['stop-container id-piccolo-web'] },
    { name: 'stopped, want stopped', current: converged(running, false), want: stopped, steps: [] },
    { name: 'nothing, want stopped: nothing to make', current: NOTHING, want: stopped, steps: ['create-network piccolo-web'] },
    {
      name: 'outdated config: replaced',
      current: { containers: [container('web', { configHash: 'old' })], networks: [network('web')] },
      want: running,
      steps: ['remove-container id-piccolo-web (configuration changed)', 'create-container piccolo-web', 'start-container piccolo-web'],
    },
    {
      name: 'outdated config while stopped: removed, made at the next start',
      current: { containers: [container('web', { configHash: 'old', running: false })], networks: [network('web')] },
      want: stopped,
      steps: ['remove-container id-piccolo-web (configuration changed)'],
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
      name: 'a labelled container that is none of the app\'s containers is a stray',
      current: { containers: [...converged(running).containers, container('web', { id: 'x', name: 'piccolo-web-old' })], networks: [network('web')] },
      want: running,
      steps: ['remove-container x (not a container of the app)'],
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
  assert.equal(start, { kind: 'start-container', app: 'web', container: 'piccolo-web', hostPorts: [15001], internalNetwork: 'piccolo-web', address: '10.201.1.2' });
  assert.equal(brief(plan(converged(open), closed)), [
    'remove-container id-piccolo-web (attached to network piccolo-web, which is removed)',
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
  assert.equal(web.containers[0]!.container.dependencyNetworks, ['piccolo-db']);
});

test('a dependency network recreated: the dependent attached to it is recreated too', () => {
  const before = desired(desiredApp('web', { dependsOn: ['db'] }), desiredApp('db', { subnet: 2 }));
  const after = desired(desiredApp('web', { dependsOn: ['db'] }), desiredApp('db', { subnet: 2, internet: 'deny' }));
  assert.equal(brief(plan(converged(before), after)), [
    'remove-container id-piccolo-web (attached to network piccolo-db, which is removed)',
    'remove-container id-piccolo-db (attached to network piccolo-db, which is removed)',
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
  assert.equal(brief(plan(detached, want)), ['remove-container id-piccolo-web (network attachments changed)', 'create-container piccolo-web', 'start-container piccolo-web']);
});

test('a new image changes the hash; the same spec renders the same hash', () => {
  const hash = (app: DesiredApp) => desired(app)[0]!.containers[0]!.configHash;
  assert.is(hash(desiredApp('web')), hash(desiredApp('web')));
  assert.is.not(hash(desiredApp('web')), hash({ ...desiredApp('web'), imageIds: { app: 'sha256:other' } }));
});

test('the short form hashes as before services existed: a daemon update recreates no installed app', () => {
  // The hash the previous runtime (one container per app) gave this app, computed with it.
  const app = desiredApp('web');
  app.record.spec = normalizeSpec({
    name: 'web',
    image: 'localhost/web:1',
    listeners: [{ name: 'web', guest_port: 80, protocol: 'http' }],
    environment: { MODE: 'prod' },
    storage: { persistent: { data: { container: '/data' } }, temporary: { cache: { container: '/cache', size_limit: '1Mi' } } },
    permissions: { network: { internet: 'allow' } },
  });
  app.record.ports = { web: { hostBind: 15001, public: 35001 } };
  app.imageIds = { app: 'sha256:abc' };
  app.volumeDir = '/vol/web';
  const [rendered] = renderApp(app, new Map([['web', app]])).containers;
  assert.is(rendered!.container.name, 'piccolo-web');
  assert.is(rendered!.configHash, 'e6da96bca1cd4301');
});

test('render: loopback ports, fixed address, service URLs for own and dependency listeners', () => {
  const db = desiredApp('db', { subnet: 2 });
  const web = desiredApp('web', { dependsOn: ['db'], subnet: 1 });
  const { containers, network } = renderApp(web, new Map([['db', db], ['web', web]]));
  const container = containers[0]!.container;
  assert.equal(container.ports, [{ guestPort: 80, hostPort: 15001 }]);
  assert.equal(container.network, { name: 'piccolo-web', ip: '10.201.1.2', aliases: ['app'] });
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
  const { container } = renderApp(app, new Map([['web', app]])).containers[0]!;
  assert.is(container.env.MODE, 'prod');
  assert.is(container.env.PORT, '80');
  assert.is(container.memoryBytes, 64 * 1024 * 1024);
  assert.is(container.nanoCpus, 500_000_000);
  assert.equal(container.binds, [{ host: '/vol/web/data', container: '/data' }]);
  assert.equal(container.tmpfs, [{ container: '/cache', sizeBytes: 1024 * 1024 }]);
});

test('multi-container render: one container per service, names, addresses, /etc/hosts, aliases, merged environment', () => {
  const app = stackApp();
  const { containers } = renderApp(app, new Map([['stack', app]]));
  assert.equal(containers.map((c) => c.container.name), ['piccolo-stack-db', 'piccolo-stack-migrate', 'piccolo-stack-web']);
  assert.equal(containers.map((c) => c.container.network?.ip), ['10.201.1.2', '10.201.1.254', '10.201.1.253']);
  const [db, migrate, web] = containers.map((c) => c.container);
  assert.equal(web!.extraHosts, ['db:10.201.1.2', 'migrate:10.201.1.254']);
  assert.equal(web!.network!.aliases, ['web']);
  assert.is(web!.env.TZ, 'UTC', 'app-wide environment');
  assert.is(web!.env.MODE, 'web', "the service's own wins");
  assert.is(db!.env.MODE, 'app');
  assert.is(web!.env.PICCOLO_SERVICE_URL_WEB, 'http://127.0.0.1:8080', 'its own listener on loopback');
  assert.is(db!.env.PICCOLO_SERVICE_URL_WEB, 'http://web:8080', "a sibling's by service name");
  assert.equal(web!.ports, [{ guestPort: 8080, hostPort: 15001 }]);
  assert.equal(db!.ports, [], 'only the listener\'s service publishes it');
  assert.equal(db!.binds, [{ host: '/vol/stack/data', container: '/var/lib/db' }]);
  assert.is(web!.user, '1000:1000');
  assert.is(web!.readOnly, true);
  assert.equal(web!.capDrop, ['ALL']);
  assert.equal(migrate!.command, ['migrate']);
  assert.equal(db!.healthcheck, { test: ['CMD', 'true'], intervalNs: 1e9, timeoutNs: 1e9, retries: 2, startPeriodNs: 0 });
  assert.is(migrate!.imageId, 'sha256:db');
  assert.equal(containers[2]!.dependsOn, [
    { service: 'db', condition: 'service_healthy', container: 'piccolo-stack-db' },
    { service: 'migrate', condition: 'service_completed_successfully', container: 'piccolo-stack-migrate' },
  ]);
  assert.is(containerName('stack', 'db', false), 'piccolo-stack-db');
});

test('multi-container plan: start order with waits for healthy and completed services', () => {
  const want = desired(stackApp());
  assert.equal(brief(plan(NOTHING, want)), [
    'create-network piccolo-stack',
    'create-container piccolo-stack-db',
    'start-container piccolo-stack-db',
    'create-container piccolo-stack-migrate',
    'wait-container piccolo-stack-db service_healthy',
    'start-container piccolo-stack-migrate',
    'create-container piccolo-stack-web',
    'wait-container piccolo-stack-db service_healthy',
    'wait-container piccolo-stack-migrate service_completed_successfully',
    'start-container piccolo-stack-web',
  ]);
  const wait = plan(NOTHING, want).find((step) => step.kind === 'wait-container')!;
  // start period 0 + (1 s interval + 1 s timeout) × (2 retries + 1) + 10 s margin.
  assert.equal(wait, { kind: 'wait-container', app: 'stack', container: 'piccolo-stack-db', service: 'db', condition: 'service_healthy', timeoutMs: 16_000 });
});

test('multi-container plan: a completed one-shot stays; stop goes in reverse order; held containers stay down', () => {
  const want = desired(stackApp());
  const current = converged(want);
  const migrated = (exitCode: number): CurrentState => ({
    ...current,
    containers: current.containers.map((c) => (c.name === 'piccolo-stack-migrate' ? { ...c, running: false, state: 'exited', exitCode } : c)),
  });
  assert.equal(brief(plan(migrated(0), want)), [], 'a one-shot that exited 0 (restart no) is not started again');
  assert.equal(brief(plan(migrated(1), want)), ['wait-container piccolo-stack-db service_healthy', 'start-container piccolo-stack-migrate'], 'a failed one is, on a job or a full reconcile');
  const held = want.map((app) => ({ ...app, hold: new Set(['piccolo-stack-migrate']) }));
  assert.equal(brief(plan(migrated(1), held)), [], 'but not by the supervisor: restart no');
  const created: CurrentState = { ...current, containers: current.containers.map((c) => (c.name === 'piccolo-stack-migrate' ? { ...c, running: false, state: 'created' } : c)) };
  assert.equal(brief(plan(created, held)), ['wait-container piccolo-stack-db service_healthy', 'start-container piccolo-stack-migrate'], 'never started: started');
  const stopped = desired({ ...stackApp(), record: { ...stackApp().record, run: 'stopped' } });
  assert.equal(brief(plan(current, stopped)), ['stop-container id-piccolo-stack-web', 'stop-container id-piccolo-stack-migrate', 'stop-container id-piccolo-stack-db']);
});

test('multi-container plan: only the changed service is replaced; an update retires it instead', () => {
  const before = desired(stackApp());
  const changed = stackApp();
  changed.imageIds = { ...changed.imageIds, web: 'sha256:web2' };
  const after = desired(changed);
  const steps = plan(converged(before), after);
  const waits = ['wait-container piccolo-stack-db service_healthy', 'wait-container piccolo-stack-migrate service_completed_successfully'];
  assert.equal(brief(steps), ['remove-container id-piccolo-stack-web (configuration changed)', 'create-container piccolo-stack-web', ...waits, 'start-container piccolo-stack-web']);
  assert.equal(brief(retireReplaced(steps, 'stack')), ['retire-container id-piccolo-stack-web', 'create-container piccolo-stack-web', ...waits, 'start-container piccolo-stack-web']);
  assert.equal(brief(retireReplaced(steps, 'other')), brief(steps), 'other apps are not touched');
});

test('permissions: a service needing what was not granted is refused by name; granted it renders', () => {
  const hostApp = () =>
    stackApp('hass', {
      services: { app: { image: 'localhost/hass:1', network_mode: 'host', devices: ['/dev/ttyUSB0'], cap_add: ['NET_ADMIN'], privileged: true } },
      listeners: [{ name: 'web', guest_port: 8123, protocol: 'http' }],
      storage: {},
    });
  const refused = (app: DesiredApp) => {
    try {
      renderApp(app, new Map([[app.name, app]]));
      return undefined;
    } catch (err) {
      assert.instance(err, PermissionNotGrantedError);
      return (err as Error).message;
    }
  };
  assert.is(refused(hostApp()), 'app hass: service app needs the host network (permission host_network), which was not granted');
  const partly = hostApp();
  partly.record.granted = ['host_network', 'privileged'];
  assert.match(refused(partly)!, /devices \/dev\/ttyUSB0 \(permission devices\)/);
  const granted = hostApp();
  granted.record.granted = ['capabilities', 'devices', 'host_network', 'privileged'];
  granted.imageIds = { app: 'sha256:hass' };
  const { container } = renderApp(granted, new Map([['hass', granted]])).containers[0]!;
  assert.is(container.hostNetwork, true);
  assert.is(container.network, undefined);
  assert.equal(container.ports, [], 'the host network publishes nothing');
  assert.equal(container.devices, ['/dev/ttyUSB0']);
  assert.equal(container.capAdd, ['NET_ADMIN']);
  assert.is(container.privileged, true);

  const socket = stackApp('dozzle', { services: { app: { image: 'localhost/dozzle:1', engine_socket: true } }, listeners: [{ name: 'web', guest_port: 8080 }], storage: {} });
  socket.imageIds = { app: 'sha256:d' };
  assert.match(refused(socket)!, /engine socket \(permission engine_socket\)/);
  socket.record.granted = ['engine_socket'];
  socket.engineSocket = '/run/podman/podman.sock';
  assert.equal(renderApp(socket, new Map([['dozzle', socket]])).containers[0]!.container.binds, [{ host: '/run/podman/podman.sock', container: '/var/run/docker.sock' }]);

  const media = stackApp('jelly', { services: { app: { image: 'localhost/jelly:1', mounts: [{ media: 'Media', container: '/media', read_only: true }] } }, listeners: [{ name: 'web', guest_port: 8096 }], storage: {} });
  media.imageIds = { app: 'sha256:j' };
  assert.match(refused(media)!, /shared media folder \(permission media\)/);
  media.record.granted = ['media'];
  media.mediaDirs = { Media: '/srv/media/Media' };
  assert.equal(renderApp(media, new Map([['jelly', media]])).containers[0]!.container.binds, [{ host: '/srv/media/Media', container: '/media', readOnly: true }]);
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

test.run();
