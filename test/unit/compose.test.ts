import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BadRequestError } from '../../services/common/errors.js';
import { importCompose, importUmbrelApp, type ComposeImportOptions } from '../../services/daemon/apps/spec/compose.js';
import { substitute } from '../../services/daemon/apps/spec/import/variables.js';
import type { ServiceSpec } from '../../services/daemon/apps/spec/types.js';
import { thrown } from '../support/assertions.js';

/** The problems of a compose file that must be refused. */
const problemsOf = (text: string, options?: ComposeImportOptions): string[] =>
  thrown(() => importCompose(text, options), BadRequestError).details as string[];

/** Random bytes that are all 7: the generated secrets are known. */
const SEVENS = { random: (n: number) => Buffer.alloc(n, 7) };
const SECRET = '07'.repeat(16);

const service = (services: ServiceSpec[], name: string): ServiceSpec => {
  const found = services.find((s) => s.name === name);
  if (!found) throw new Error(`no service ${name} in ${services.map((s) => s.name).join(', ')}`);
  return found;
};

/** One service "app" publishing port 80, with `lines` added to it. */
const app = (...lines: string[]) => `services:\n  app:\n    image: nginx:1.25\n    ports: ["80"]\n${lines.map((l) => `    ${l}\n`).join('')}`;

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
    depends_on:
      db: { condition: service_healthy }
    healthcheck:
      test: ["CMD-SHELL", "curl -fsS http://localhost:3000/healthz || exit 1"]
      timeout: 10s
      retries: 5
  db:
    image: postgres:16
    environment: { POSTGRES_PASSWORD: secret, POSTGRES_DB: wiki }
    volumes: [db:/var/lib/postgresql/data]
    healthcheck:
      test: pg_isready -U postgres
      interval: 5s
volumes:
  wiki_data:
  db:
`;

test('a whole stack becomes one app: a container per service in start order, listeners, volumes', () => {
  const { spec, warnings } = importCompose(WIKI);
  // The service with the port is called web: the app is named after its image.
  assert.is(spec.name, 'wiki');
  assert.equal(spec.services.map((s) => [s.name, s.image]), [['db', 'postgres:16'], ['web', 'ghcr.io/example/wiki:2.5']]);
  const web = service(spec.services, 'web');
  assert.equal(web.depends_on, [{ service: 'db', condition: 'service_healthy' }]);
  assert.equal(web.environment, { DB_HOST: 'db' });
  assert.equal(web.mounts, [
    { volume: 'wiki-data', container: '/var/lib/wiki', read_only: false },
    { volume: 'var-cache-wiki', container: '/var/cache/wiki', read_only: false },
  ]);
  assert.equal(web.tmpfs, [{ container: '/tmp' }]);
  assert.equal(web.healthcheck?.test, ['CMD-SHELL', 'curl -fsS http://localhost:3000/healthz || exit 1']);
  assert.is(web.healthcheck?.timeout_ms, 10_000);
  assert.equal(service(spec.services, 'db').healthcheck?.test, ['CMD-SHELL', 'pg_isready -U postgres']);
  assert.equal(Object.keys(spec.storage.persistent).sort(), ['db', 'var-cache-wiki', 'wiki-data']);
  // 127.0.0.1:9000 is for the host's own tools: not a listener.
  assert.equal(spec.listeners.map(({ name, service, guest_port, protocol }) => ({ name, service, guest_port, protocol })), [
    { name: 'web', service: 'web', guest_port: 3000, protocol: 'http' },
  ]);
  assert.ok(warnings.includes('services.web.ports[1]: published on 127.0.0.1 only, for the host\'s own tools; not a listener'), warnings.join('\n'));
  assert.ok(warnings.includes('services.web.environment.FROM_SHELL: has no value (compose would take it from the shell); left out'));
  assert.is(spec.permissions.network.internet, 'allow');
});

test('serviceName imports one service and what it depends on', () => {
  assert.equal(importCompose(WIKI, { serviceName: 'web' }).spec.services.map((s) => s.name), ['db', 'web']);
  assert.equal(problemsOf(WIKI, { serviceName: 'cache' }), ['services: there is no service cache; the file defines web, db']);
  // db alone publishes nothing: no listener, said so.
  assert.equal(problemsOf(WIKI, { serviceName: 'db' }), ["services: no service publishes a port (ports:), so the app would have no listener; publish the web interface's port"]);
});

test('variables: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR:+other}, $VAR, $$ and nesting', () => {
  const values: Record<string, string> = { SET: 'x', EMPTY: '' };
  const run = (text: string) => substitute(text, { value: (name) => values[name] });
  assert.is(run('a${SET}b$SET-$$SET').value, 'axbx-$SET');
  assert.is(run('${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d}').value, 'd d  d');
  assert.is(run('${SET:+yes}|${UNSET:+yes}|${EMPTY+yes}').value, 'yes||yes');
  assert.is(run('${UNSET:-${SET}}').value, 'x');
  assert.equal(run('$UNSET ${OTHER} ${UNSET}').undefined, ['UNSET', 'OTHER']);
  assert.equal(run('${UNSET:?give a password}').required, [{ name: 'UNSET', message: 'give a password' }]);
  assert.equal(run('${BAD SYNTAX}').undefined, ['${BAD SYNTAX}']);
});

test('a variable without a value is named with where it is used; .env, variables and Piccolo\'s own fill them', () => {
  const text = app('environment:', '  URL: http://${DEVICE_HOSTNAME}:${PORT}/${PATH_PREFIX:-x}', '  REQ: ${NEEDED:?set NEEDED}', '  TZ: $TZ');
  assert.equal(problemsOf(text), [
    'services.app.environment.URL: the variable PORT is not defined; give it in variables or in the .env file',
    'services.app.environment.REQ: the variable NEEDED is required: set NEEDED',
  ]);
  const { spec } = importCompose(text, { env: 'PORT=81\n# comment\nNEEDED="from env"\n', variables: { PORT: '82' }, deviceName: 'box', timezone: 'Europe/Paris' });
  assert.equal(spec.services[0]!.environment, { URL: 'http://box:82/x', REQ: 'from env', TZ: 'Europe/Paris' });
});

test('generated secrets: APP_PASSWORD and password-like variables get one value per app, kept ones are reused, a default written in the file wins', () => {
  const text = app('environment:', '  A: ${APP_PASSWORD}', '  B: $APP_PASSWORD', '  DB: ${DB_PASSWORD}', '  KEPT: ${ADMIN_TOKEN:?needed}', '  DEFAULTED: ${OTHER_PASSWORD:-changeme}');
  const first = importCompose(text, SEVENS);
  assert.equal(first.spec.services[0]!.environment, { A: SECRET, B: SECRET, DB: SECRET, KEPT: SECRET, DEFAULTED: 'changeme' });
  assert.equal(Object.keys(first.secrets).sort(), ['ADMIN_TOKEN', 'APP_PASSWORD', 'DB_PASSWORD']);
  assert.ok(first.warnings.some((w) => w === 'variables: APP_PASSWORD, DB_PASSWORD, ADMIN_TOKEN are secrets made for this app, kept across updates and removed with its data'), first.warnings.join('\n'));
  const again = importCompose(text, { ...SEVENS, keptSecrets: (name): Record<string, string> => (name === 'nginx' ? { APP_PASSWORD: 'kept', DB_PASSWORD: 'kept-db' } : {}) });
  assert.equal(again.spec.services[0]!.environment.A, 'kept');
  assert.equal(again.spec.services[0]!.environment.DB, 'kept-db');
  assert.equal(again.secrets, { ADMIN_TOKEN: SECRET });
  // Real randomness: two imports without kept secrets differ.
  assert.is.not(importCompose(text).spec.services[0]!.environment.A, importCompose(text).spec.services[0]!.environment.A);
});

test('bind mounts of app data are folders of the app data volume; media folders are grants', () => {
  const { spec, warnings } = importCompose(
    app(
      'volumes:',
      '  - ./data:/data',
      '  - ${APP_DATA_DIR}/db:/var/lib/db',
      '  - /DATA/AppData/$AppID/config/:/config',
      '  - /DATA/AppData/$AppID:/all:ro',
      '  - /DATA/Media:/media:ro',
      '  - /DATA/Downloads/torrents:/downloads',
      '  - type: bind',
      '    source: ${UMBREL_ROOT}/data/storage/downloads',
      '    target: /umbrel-downloads',
      '  - /etc/localtime:/etc/localtime:ro',
    ),
  );
  assert.equal(spec.services[0]!.mounts, [
    { volume: 'app-data', subpath: 'data', container: '/data', read_only: false },
    { volume: 'app-data', subpath: 'db', container: '/var/lib/db', read_only: false },
    { volume: 'app-data', subpath: 'config', container: '/config', read_only: false },
    { volume: 'app-data', container: '/all', read_only: true },
    { media: 'Media', container: '/media', read_only: true },
    { media: 'Downloads', subpath: 'torrents', container: '/downloads', read_only: false },
    { media: 'Downloads', container: '/umbrel-downloads', read_only: false },
  ]);
  assert.equal(Object.keys(spec.storage.persistent), ['app-data']);
  assert.equal(spec.permissions.media, ['Downloads', 'Media']);
  assert.is(spec.services[0]!.environment.TZ, 'UTC');
  assert.ok(warnings.includes("services.app.volumes[7]: /etc/localtime is not mounted; the app gets the device's time zone in TZ instead"));
});

const REFUSED_MOUNTS: [string, string][] = [
  ['/etc:/etc', "/etc is outside the app's data: the host's configuration"],
  ['/etc/ssl/certs:/certs:ro', "/etc/ssl/certs is outside the app's data: the host's configuration"],
  ['/:/host', "/ is the whole host file system, outside the app's data"],
  ['/dev/bus/usb:/dev/bus/usb', "/dev/bus/usb is outside the app's data: the host's devices (use devices: for one device)"],
  ['/home/pi/media:/media', "/home/pi/media is outside the app's data: a home folder"],
  ['~/.ssh:/root/.ssh', "~/.ssh is a home folder, outside the app's data"],
  ['/root:/root', "/root is outside the app's data: a home folder"],
  ['../other:/data', "../other steps out of the app's folder"],
  ['${APP_DATA_DIR}/../bitcoin:/bitcoin', "${APP_DATA_DIR}/../bitcoin steps out of the app's data with .."],
  ['/srv/data:/data', "/srv/data is outside the app's data: the host's files"],
  ['/mnt/disk1:/data', "/mnt/disk1 is outside the app's data: the host's disks"],
  ['/DATA:/DATA', '/DATA is not an app data or shared folder (use /DATA/AppData/$AppID/..., /DATA/Media or /DATA/Downloads)'],
  ['/var/lib/docker:/var/lib/docker:ro', "/var/lib/docker is outside the app's data: the container engine's own data"],
  ['/somewhere/else:/data', "/somewhere/else is a host path outside the app's data"],
  ['./config.yml:/app/config.yml', "./config.yml is a single file; files next to the compose file are not uploaded, and Piccolo mounts folders of the app's data"],
];

for (const [mount, reason] of REFUSED_MOUNTS) {
  test(`refused by name: ${mount}`, () => {
    assert.equal(problemsOf(app('volumes:', `  - ${mount}`)), [`services.app.volumes[0]: ${reason}`]);
  });
}

test('named volumes: shared between services, external ones made empty (warned), drivers refused', () => {
  const two = `services:\n  a:\n    image: x\n    ports: [80]\n    volumes: [shared:/a]\n  b:\n    image: y\n    volumes: ["shared:/b:ro"]\nvolumes:\n  shared: { external: true }\n`;
  const { spec, warnings } = importCompose(two);
  assert.equal(spec.services.map((s) => s.mounts), [[{ volume: 'shared', container: '/a', read_only: false }], [{ volume: 'shared', container: '/b', read_only: true }]]);
  assert.ok(warnings.includes("volumes.shared.external: the volume is made empty in the app's encrypted volume, not taken from outside"));
  assert.equal(problemsOf(app('volumes: [nfs:/data]') + 'volumes:\n  nfs:\n    driver: local\n    driver_opts: { type: nfs, o: "addr=10.0.0.1", device: ":/export" }\n'), [
    "volumes.nfs.driver: volume drivers are not supported; app volumes live in the app's encrypted volume",
  ]);
});

test('the ways out of the fortress become permissions, not refusals', () => {
  const { spec } = importCompose(
    app('network_mode: host', 'privileged: true', 'cap_add: [NET_ADMIN, cap_chown]', 'devices: ["/dev/dri:/dev/dri", "/dev/ttyUSB0"]', 'volumes: ["/var/run/docker.sock:/var/run/docker.sock:ro"]'),
  );
  const { permissions } = spec;
  assert.equal(
    { host_network: permissions.host_network, privileged: permissions.privileged, engine_socket: permissions.engine_socket, devices: permissions.devices, capabilities: permissions.capabilities },
    { host_network: true, privileged: true, engine_socket: true, devices: ['/dev/dri', '/dev/ttyUSB0'], capabilities: ['NET_ADMIN'] },
  );
  assert.is(spec.services[0]!.network_mode, 'host');
  // bridge is compose's default: the app's own network, no permission.
  const bridge = importCompose(app('network_mode: bridge', 'cap_add: [CHOWN]'));
  assert.is(bridge.spec.services[0]!.network_mode, 'app');
  assert.is(bridge.spec.permissions.host_network, false);
  assert.equal(bridge.spec.permissions.capabilities, []);
});

const REFUSED_KEYS: [string, string][] = [
  ['build: .', 'services.app.build: building images is not supported; Piccolo runs published images only (give image:)'],
  ['network_mode: "service:vpn"', "services.app.network_mode: service:vpn shares another container's network; Piccolo gives each service its own address on the app network"],
  ['pid: host', "services.app.pid: sharing the host's process namespace is not allowed"],
  ['ipc: host', 'services.app.ipc: host: sharing an IPC namespace is not allowed'],
  ['security_opt: ["label=type:spc_t"]', "services.app.security_opt: label=type:spc_t weakens the container's isolation; it is not offered (privileged: true is the one way, as a permission)"],
  ['sysctls: { net.ipv4.ip_forward: 1 }', 'services.app.sysctls: kernel settings cannot be changed by an app'],
  ['env_file: [app.env]', 'services.app.env_file[0]: the file app.env was not given; add it next to the compose file, or put its variables under environment'],
  ['volumes_from: [other]', "services.app.volumes_from: apps cannot use another container's volumes; name the volume instead"],
  ['frobnicate: true', 'services.app.frobnicate: not a compose key Piccolo knows'],
  ['deploy: { replicas: 3 }', 'services.app.deploy.replicas: an app runs one container per service'],
  ['deploy: { resources: { reservations: { devices: [{ capabilities: [gpu] }] } } }', 'services.app.deploy.resources.reservations.devices: GPUs by driver are not supported; ask for the device (devices: /dev/dri) instead'],
  ['devices: ["/etc/passwd"]', 'services.app.devices[0]: /etc/passwd is not a device under /dev/'],
  ['stop_grace_period: soon', 'services.app.stop_grace_period: must be a duration such as 10s or 1m30s'],
  ['restart: sometimes', 'services.app.restart: must be no, always, on-failure or unless-stopped (got sometimes)'],
  ['depends_on: [ghost]', 'services.app.depends_on: ghost is not a service of this file'],
];

for (const [line, expected] of REFUSED_KEYS) {
  test(`refused: ${line}`, () => {
    assert.equal(problemsOf(app(line)), [expected]);
  });
}

test('per-container fields are kept: command, entrypoint, user, working_dir, restart, stop_grace_period, read_only, tmpfs, shm_size, cap_drop, healthcheck', () => {
  const { spec, warnings } = importCompose(
    app(
      'command: redis-server --save "60 1" --loglevel warning',
      'entrypoint: ["/bin/sh", "-c"]',
      'user: 1000',
      'working_dir: /srv',
      'restart: on-failure:5',
      'stop_grace_period: 1m30s',
      'read_only: true',
      'tmpfs: ["/run", "/tmp:size=64m,mode=1777"]',
      'shm_size: 1g',
      'cap_drop: [ALL]',
      'security_opt: ["no-new-privileges:true", "seccomp:unconfined"]',
      'healthcheck:',
      '  test: ["CMD", "redis-cli", "ping"]',
      '  interval: 1.5s',
      '  timeout: 500ms',
      '  retries: 2',
      '  start_period: 1m',
    ),
  );
  const only = spec.services[0]!;
  assert.equal(only.command, ['redis-server', '--save', '60 1', '--loglevel', 'warning']);
  assert.equal(only.entrypoint, ['/bin/sh', '-c']);
  assert.equal([only.user, only.working_dir, only.restart, only.stop_grace_period_ms, only.read_only, only.shm_size_bytes], ['1000', '/srv', 'on-failure', 90_000, true, 2 ** 30]);
  assert.equal(only.tmpfs, [{ container: '/run' }, { container: '/tmp', size_bytes: 64 * 2 ** 20 }]);
  assert.equal(only.cap_drop, ['ALL']);
  assert.equal(only.healthcheck, { test: ['CMD', 'redis-cli', 'ping'], interval_ms: 1500, timeout_ms: 500, retries: 2, start_period_ms: 60_000 });
  assert.ok(warnings.includes('services.app.security_opt: seccomp:unconfined is not applied; the container keeps the default seccomp profile'));
});

test('ports: UDP listeners, small ranges, TLS and raw TCP by port, several per service named by port; host port 53 (DNS) is kept', () => {
  const { spec } = importCompose(app().replace('ports: ["80"]', 'ports: ["53:53/udp", "53:53", "443:443", "5432:5432", "6881-6883:6881-6883/udp", { target: 8080, published: "8081", protocol: tcp }]'));
  assert.equal(spec.listeners.map((l) => [l.name, l.guest_port, l.protocol, l.flow]), [
    ['app-53-udp', 53, 'udp', 'tcp'],
    ['app-53', 53, 'raw', 'tcp'],
    ['app-443', 443, 'raw', 'tls'],
    ['app-5432', 5432, 'raw', 'tcp'],
    ['app-6881', 6881, 'udp', 'tcp'],
    ['app-6882', 6882, 'udp', 'tcp'],
    ['app-6883', 6883, 'udp', 'tcp'],
    ['app-8080', 8080, 'http', 'tcp'],
  ]);
  assert.equal(spec.listeners.map((l) => l.public_port), [53, 53, undefined, undefined, undefined, undefined, undefined, undefined], 'DNS clients only know 53: it stays the public port');
  const moved = importCompose(app().replace('ports: ["80"]', 'ports: ["5353:53/udp"]'));
  assert.is(moved.spec.listeners[0]!.public_port, undefined, 'any other host port is not kept');
  assert.ok(moved.warnings.includes('services.app.ports[0]: host port 5353 ignored; Piccolo publishes each listener at its own address'), moved.warnings.join('\n'));
  assert.equal(problemsOf(app().replace('ports: ["80"]', 'ports: ["27000-27100:27000-27100/udp", "80/sctp", "99999"]')), [
    'services.app.ports[0]: the range 27000-27100 is 101 ports; at most 20 become listeners',
    'services.app.ports[1]: the protocol must be tcp or udp (got sctp)',
    'services.app.ports[2]: 99999 is not a port 1-65535 or a range such as 6881-6889',
  ]);
});

test('container names in values become service names where they are surely hosts', () => {
  const text = `services:
  web:
    image: app
    ports: [80]
    environment:
      DB_HOST: my_db
      DATABASE_URL: postgres://user:pw@my_db:5432/app
      REDIS: redis://cache-box:6379
      POSTGRES_USER: my_db
      OLD: nextcloud_search_1
  My_Db:
    image: postgres
    container_name: my_db
  search:
    image: meili
  cache:
    image: redis
    hostname: cache-box
`;
  const { spec } = importCompose(text);
  assert.equal(service(spec.services, 'web').environment, {
    DB_HOST: 'my-db',
    DATABASE_URL: 'postgres://user:pw@my-db:5432/app',
    REDIS: 'redis://cache:6379',
    POSTGRES_USER: 'my_db',
    OLD: 'search',
  });
});

test('${PWD} is the app data, ${HOME} is refused once by name; network aliases are hosts; entrypoint "" clears; "true" is true', () => {
  const { spec } = importCompose(app('volumes: ["${PWD}/html:/html"]', 'entrypoint: ""', 'privileged: "true"'));
  assert.equal(spec.services[0]!.mounts, [{ volume: 'app-data', subpath: 'html', container: '/html', read_only: false }]);
  assert.equal(spec.services[0]!.entrypoint, ['']);
  assert.is(spec.services[0]!.privileged, true);
  assert.equal(problemsOf(app('volumes: ["${HOME}/media:/media"]')), ["services.app.volumes[0]: the variable HOME is the host's home folder, which an app cannot use"]);
  const aliased = importCompose(`${app('environment: { DB_HOST: database.internal }')}  db:\n    image: pg\n    networks: { default: { aliases: [database.internal] } }\n`);
  assert.equal(service(aliased.spec.services, 'app').environment, { DB_HOST: 'db' });
});

test('a service others wait to see finish runs once (restart no), unless the file says otherwise', () => {
  const text = `${app('depends_on: { migrate: { condition: service_completed_successfully }, seed: { condition: service_completed_successfully } }')}  migrate:\n    image: tool\n  seed:\n    image: tool\n    restart: on-failure\n`;
  const { spec } = importCompose(text);
  assert.equal(spec.services.map((s) => [s.name, s.restart]), [['migrate', 'no'], ['seed', 'on-failure'], ['app', 'unless-stopped']]);
});

const MANIFEST = `manifestVersion: 1
id: notes
name: Notes
tagline: Write things down
category: files
version: "1.2"
port: 8090
dependencies: [bitcoin]
defaultUsername: umbrel
defaultPassword: $APP_PASSWORD
`;

const umbrel = (proxy: string, extra = '') => `version: "3.7"
services:
  app_proxy:
    environment:
${proxy}
  web:
    image: example/notes:1.2@sha256:${'a'.repeat(64)}
    user: "1000:1000"
    container_name: notes-web
    environment:
      DB: notes_db_1
      PASSWORD: \${APP_PASSWORD}
    volumes: ["\${APP_DATA_DIR}/data:/data"]
${extra}  db:
    image: postgres:16
    environment: { POSTGRES_PASSWORD: "\${APP_PASSWORD}" }
`;

test('an Umbrel app folder: app_proxy becomes the main listener, the manifest names the app', () => {
  for (const host of ['notes_web_1', 'notes-web-1', 'web', 'notes-web']) {
    const { spec, about, secrets, warnings } = importUmbrelApp({ manifest: MANIFEST, compose: umbrel(`      APP_HOST: ${host}\n      APP_PORT: 3000`) }, SEVENS);
    assert.is(spec.name, 'notes');
    assert.equal(spec.listeners.map((l) => [l.name, l.service, l.guest_port, l.protocol]), [['web', 'web', 3000, 'http']], host);
    assert.equal(spec.services.map((s) => s.name).sort(), ['db', 'web']);
    assert.equal(service(spec.services, 'web').environment, { DB: 'db', PASSWORD: SECRET });
    assert.equal(service(spec.services, 'web').mounts, [{ volume: 'app-data', subpath: 'data', container: '/data', read_only: false }]);
    assert.equal(about, { source: 'umbrel', title: 'Notes', icon: 'https://getumbrel.github.io/umbrel-apps-gallery/notes/icon.svg', tagline: 'Write things down', category: 'files', version: '1.2', defaultUsername: 'umbrel', defaultPassword: SECRET });
    assert.equal(secrets, { APP_PASSWORD: SECRET });
    assert.ok(warnings.includes('umbrel-app.yml dependencies[0]: bitcoin is another Umbrel app; install it on Piccolo first if this app needs it'));
  }
});

test('an Umbrel app folder that cannot be imported says why', () => {
  const refuse = (manifest: string, compose: string) => thrown(() => importUmbrelApp({ manifest, compose }), BadRequestError).details as string[];
  assert.equal(refuse(MANIFEST, umbrel('      APP_HOST: elsewhere_1\n      APP_PORT: 3000')), [
    'services.app_proxy.environment.APP_HOST: elsewhere_1 is not a service of this file (write the service\'s name, or <app id>_<service>_1)',
  ]);
  assert.equal(refuse(MANIFEST, umbrel('      APP_HOST: notes_web_1')), ['services.app_proxy.environment.APP_PORT: is required']);
  assert.equal(refuse('name: x\n', umbrel('      APP_HOST: web\n      APP_PORT: 1')), ['umbrel-app.yml id: is required']);
  assert.equal(refuse(MANIFEST, umbrel('      APP_HOST: web\n      APP_PORT: 3000', '    command: tor --socks $TOR_PROXY_IP\n')), [
    "services.web.command: the variable TOR_PROXY_IP is umbrelOS's Tor service, which Piccolo does not have",
  ]);
});

const CASA = `name: photos
services:
  photos:
    image: example/photos:2
    network_mode: bridge
    ports:
      - target: 2342
        published: "8097"
        protocol: tcp
      - target: 9000
        published: "9000"
        protocol: tcp
    volumes:
      - type: bind
        source: /DATA/AppData/$AppID/storage
        target: /storage
      - type: bind
        source: /DATA/Gallery
        target: /originals
    environment:
      PUID: $PUID
      TZ: $TZ
    x-casaos:
      envs:
        - container: TZ
          description: { en_us: TimeZone }
x-casaos:
  main: photos
  title: { en_us: Photos, zh_cn: 照片 }
  tagline: { en_us: Your pictures }
  icon: https://example.com/icon.png
  category: Gallery
  index: /library
  port_map: "8097"
  store_app_id: photos
`;

test('a CasaOS file: x-casaos names the app and its icon, port_map marks the web interface', () => {
  const { spec, about } = importCompose(CASA);
  assert.is(spec.name, 'photos');
  assert.equal(spec.listeners.map((l) => [l.name, l.guest_port, l.protocol]), [['photos-2342', 2342, 'http'], ['photos-9000', 9000, 'http']]);
  assert.equal(spec.services[0]!.mounts, [
    { volume: 'app-data', subpath: 'storage', container: '/storage', read_only: false },
    { media: 'Gallery', container: '/originals', read_only: false },
  ]);
  assert.equal(spec.services[0]!.environment, { PUID: '1000', TZ: 'UTC' });
  assert.equal(about, { source: 'casaos', title: 'Photos', tagline: 'Your pictures', icon: 'https://example.com/icon.png', category: 'Gallery', path: '/library' });
  // On the host's network the app binds port_map itself.
  const host = importCompose(CASA.replace('network_mode: bridge', 'network_mode: host').replace(/ {4}ports:\n(?: {6}.*\n)+/, '').replace('"8097"', '"8123"'));
  assert.equal(host.spec.listeners.map((l) => [l.name, l.guest_port]), [['photos', 8123]]);
  assert.is(host.spec.permissions.host_network, true);
});

test('top-level keys, names and YAML safety', () => {
  assert.equal(problemsOf(`${app()}bogus: 1\ninclude: [other.yml]\n`), ['bogus: not a compose key Piccolo knows', 'include: other compose files are not uploaded; paste one file with every service']);
  assert.equal(problemsOf('services: {}\n'), ['services: must define at least one service']);
  assert.equal(problemsOf('services:\n  app:\n    ports: [80]\n'), ['services.app.image: is required; Piccolo runs published images only']);
  assert.is(importCompose('services:\n  My_Wiki:\n    image: a\n    ports: [80]\n').spec.name, 'my-wiki');
  assert.is(importCompose('services:\n  admin:\n    image: a\n    ports: [80]\n').spec.name, 'admin-app');
  assert.is(importCompose(`name: family-wiki\n${app()}`).spec.name, 'family-wiki');
  assert.is(importCompose(app(), { name: 'chosen' }).spec.name, 'chosen');
  assert.is(importCompose('services:\n  server:\n    image: gitea/gitea:1.21\n    ports: [3000]\n').spec.name, 'gitea');
  const bomb = ['a: &a [x,x,x,x,x,x,x,x,x]', 'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]', 'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]', 'services: [*c,*c,*c,*c,*c,*c,*c,*c,*c]'].join('\n');
  assert.equal(problemsOf(bomb), ['document: aliases expand too much (more than 100); this looks like a YAML bomb']);
  assert.equal(problemsOf('- services'), ['document: must be a mapping of fields, not a list']);
});

test.run();
