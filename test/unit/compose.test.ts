import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BadRequestError } from '../../services/common/errors.js';
import { importCompose, type ComposeImportOptions } from '../../services/daemon/apps/spec/compose.js';
import { thrown } from '../support/assertions.js';

/** The problems of a compose file that must be refused. */
const problemsOf = (text: string, options?: ComposeImportOptions): string[] =>
  thrown(() => importCompose(text, options), BadRequestError).details as string[];

const WIKI = `
x-defaults: &defaults
  restart: unless-stopped
services:
  web:
    <<: *defaults
    image: ghcr.io/example/wiki:2.5
    ports: ["8080:3000", "127.0.0.1:9000:9000/tcp"]
    environment:
      - DB_HOST=db
      - FROM_SHELL
    volumes:
      - wiki_data:/var/lib/wiki
      - /var/cache/wiki
      - type: tmpfs
        target: /tmp
    depends_on: [db]
    healthcheck:
      test: ["CMD-SHELL", "curl -fsS http://localhost:3000/healthz || exit 1"]
      timeout: 10s
      retries: 5
    deploy:
      resources:
        limits: { memory: 512m, cpus: "0.5" }
  db:
    image: postgres:16
    environment: { POSTGRES_PASSWORD: secret, POSTGRES_DB: wiki }
    volumes: [db:/var/lib/postgresql/data]
    ports: [5432]
volumes:
  wiki_data:
  db:
`;

test('the common subset becomes an app spec', () => {
  const { spec, warnings } = importCompose(WIKI, { serviceName: 'web' });
  assert.is(spec.name, 'web');
  assert.is(spec.services[0]!.image, 'ghcr.io/example/wiki:2.5');
  assert.equal(
    spec.listeners.map(({ name, guest_port, flow, protocol }) => ({ name, guest_port, flow, protocol })),
    [
      { name: 'web-3000', guest_port: 3000, flow: 'tcp', protocol: 'http' },
      { name: 'web-9000', guest_port: 9000, flow: 'tcp', protocol: 'http' },
    ],
  );
  assert.equal(spec.environment, { DB_HOST: 'db' });
  assert.equal(spec.storage, {
    persistent: { 'wiki-data': { container: '/var/lib/wiki' }, wiki: { container: '/var/cache/wiki' } },
    temporary: { tmp: { container: '/tmp' } },
  });
  assert.equal(spec.depends_on, ['db']);
  assert.equal(spec.healthcheck, { http: { path: '/healthz', port: 'web-3000', timeout: '10s', timeout_ms: 10_000, retries: 5 } });
  assert.equal(spec.resources.limits, { memory: '512Mi', memory_bytes: 512 * 2 ** 20, cpu: 0.5 });
  assert.is(spec.permissions.network.internet, 'allow');
  for (const expected of [
    'services.web.restart: ignored; Piccolo restarts apps itself',
    'services.web.ports[0]: host port 8080 ignored; Piccolo publishes listeners at their own address',
    'services.web.environment.FROM_SHELL: has no value (compose takes it from the shell); dropped',
    'services.web.depends_on: db: import each as an app of its own (serviceName: db)',
  ]) {
    assert.ok(warnings.includes(expected), `missing warning: ${expected}\n${warnings.join('\n')}`);
  }
});

test('environment as a map, a single port named after the service, map-form depends_on', () => {
  const { spec, warnings } = importCompose(WIKI, { serviceName: 'db' });
  assert.equal(spec.environment, { POSTGRES_PASSWORD: 'secret', POSTGRES_DB: 'wiki' });
  assert.equal(spec.listeners.map((l) => l.name), ['db']);
  assert.equal(spec.storage.persistent, { db: { container: '/var/lib/postgresql/data' } });

  const mapped = importCompose('services:\n  app:\n    image: a\n    ports: [80]\n    depends_on:\n      cache: { condition: service_healthy }\n');
  assert.equal(mapped.spec.depends_on, ['cache']);
  assert.ok(mapped.warnings.some((w) => w.includes('conditions are ignored')));
  assert.ok(warnings.length > 0);
});

test('several services need serviceName, which must exist', () => {
  assert.equal(problemsOf(WIKI), ['services: the file defines 2 services (web, db); choose one with serviceName']);
  assert.equal(problemsOf(WIKI, { serviceName: 'cache' }), ['services: there is no service cache; the file defines web, db']);
});

const REFUSED: [string, string][] = [
  ['build: .', 'services.app.build: building images is not supported; use a published image'],
  ['privileged: true', 'services.app.privileged: privileged containers are not allowed'],
  ['network_mode: host', 'services.app.network_mode: host networking is not allowed; each app gets its own network'],
  ['cap_add: [NET_ADMIN]', 'services.app.cap_add: extra capabilities are not allowed'],
  ['devices: ["/dev/ttyUSB0:/dev/ttyUSB0"]', 'services.app.devices: device access is not allowed'],
  ['pid: host', 'services.app.pid: sharing host namespaces is not allowed'],
  ['security_opt: ["seccomp:unconfined"]', 'services.app.security_opt: security options cannot be changed'],
  ['command: ["serve"]', 'services.app.command: the app spec has no command; use an image whose default command runs the app'],
  ['env_file: .env', 'services.app.env_file: files next to the compose file are not uploaded; put the variables under environment'],
  ['volumes_from: [other]', "services.app.volumes_from: apps cannot use each other's volumes"],
  ['frobnicate: true', 'services.app.frobnicate: not supported by the Piccolo app spec'],
  ['volumes: ["./data:/data"]', 'services.app.volumes[0]: host path ./data cannot be mounted; an app only gets its own encrypted volume (use a named volume such as data:/data)'],
  ['volumes: [{ type: bind, source: /etc, target: /etc }]', 'services.app.volumes[0]: host path /etc cannot be mounted; an app only gets its own encrypted volume (use a named volume such as data:/etc)'],
  ['volumes: ["data:/a", "data:/b"]', 'services.app.volumes[1]: volume data is mounted twice; each volume is mounted once in an app'],
  ['deploy: { replicas: 3 }', 'services.app.deploy.replicas: an app runs one container'],
  ['mem_limit: lots', 'services.app.mem_limit: must be a size such as 512m or 1g'],
];

for (const [line, expected] of REFUSED) {
  test(`refused: ${line}`, () => {
    assert.equal(problemsOf(`services:\n  app:\n    image: nginx\n    ports: ["80"]\n    ${line}\n`), [expected]);
  });
}

test('ports that cannot become listeners are refused by index', () => {
  assert.equal(problemsOf('services:\n  app:\n    image: dns\n    ports: ["53:53/udp", "8000-8010:8000-8010", "99999"]\n'), [
    'services.app.ports[0]: only tcp ports can become listeners (got udp)',
    'services.app.ports[1]: port ranges (8000-8010) are not supported; list each port',
    'services.app.ports[2]: must be a port 1-65535 (got 99999)',
  ]);
  assert.equal(problemsOf('services:\n  app:\n    image: worker\n'), ['services.app.ports: an app needs at least one published port to become a listener']);
  assert.equal(problemsOf('services:\n  app:\n    ports: [80]\n'), ['services.app.image: is required; building images is not supported']);
});

test('external or driver-backed named volumes and unknown top-level keys are refused', () => {
  assert.equal(problemsOf('services:\n  app:\n    image: a\n    ports: [80]\n    volumes: [data:/data]\nvolumes:\n  data: { external: true }\nbogus: 1\n'), [
    'bogus: not a compose key Piccolo can import',
    "volumes.data.external: not supported; app volumes live in the app's encrypted volume",
  ]);
});

test('healthchecks that are not HTTP probes of localhost are dropped with a warning', () => {
  const shell = importCompose('services:\n  db:\n    image: postgres\n    ports: [5432]\n    healthcheck:\n      test: pg_isready\n');
  assert.is(shell.spec.healthcheck, undefined);
  assert.ok(shell.warnings.includes('services.db.healthcheck.test: only curl or wget probes of http://localhost can be imported; health checking is off'));
  const otherPort = importCompose('services:\n  app:\n    image: a\n    ports: [80]\n    healthcheck:\n      test: wget -qO- http://127.0.0.1:8081/health\n');
  assert.is(otherPort.spec.healthcheck, undefined);
  assert.ok(otherPort.warnings.includes("services.app.healthcheck.test: the probe's port 8081 is not published under ports; health checking is off"));
  const wget = importCompose('services:\n  app:\n    image: a\n    ports: [80]\n    healthcheck:\n      test: ["CMD", "wget", "-qO-", "http://localhost/ping"]\n');
  assert.equal(wget.spec.healthcheck?.http.path, '/ping');
});

test('service names become DNS labels; the result still goes through the app spec validator', () => {
  const { spec } = importCompose('services:\n  My_Wiki:\n    image: a\n    ports: [80]\n');
  assert.is(spec.name, 'my-wiki');
  try {
    importCompose('services:\n  admin:\n    image: a\n    ports: [80]\n');
    assert.unreachable('a reserved name must be refused');
  } catch (err) {
    assert.equal((err as BadRequestError).details, ['name: "admin" is reserved', 'listeners[0].name: "admin" is reserved']);
  }
});

test('compose files get the same YAML safety as app specs', () => {
  const bomb = ['a: &a [x,x,x,x,x,x,x,x,x]', 'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]', 'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]', 'services: [*c,*c,*c,*c,*c,*c,*c,*c,*c]'].join('\n');
  assert.equal(problemsOf(bomb), ['document: aliases expand too much (more than 100); this looks like a YAML bomb']);
  assert.equal(problemsOf('- services'), ['document: must be a mapping of fields, not a list']);
});

test.run();
