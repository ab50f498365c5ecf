// Composition root of piccolod: encrypted persistence, auth, the API, the portal and setup wizard.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { field, loadServiceConfig, parseAbsolutePath, parseBoolean, parseListen, parsePositiveInt, parseUrl } from '../common/config.js';
import { HealthReporter, ServingReport } from '../common/health-report.js';
import { HttpServerModule } from '../common/http.js';
import { runMain, startService } from '../common/lifecycle.js';
import { createLogger } from '../common/logger.js';
import { createNotifier } from '../common/notify.js';
import openApiDocument from 'piccolo:openapi';
import portalBundle from 'piccolo:portal';
import { PortalAssets } from './api/portal-assets.js';
import { EVENTS_PATH, EventHub, EventStream } from './api/events.js';
import { UpgradeRouter } from './api/upgrades.js';
import { TERMINAL_PATH, TerminalService } from './apps/terminal.js';
import { addAppRoutes } from './api/app-routes.js';
import { AppSecretStore } from './apps/spec/import/secrets.js';
import { daemonRoutes, sessionGuard } from './api/routes.js';
import { Engine } from './apps/engine.js';
import { DEFAULT_RESERVE_BYTES, ImageSpaceCheck } from './apps/image-space.js';
import { addStorageRoutes } from './api/storage-routes.js';
import { LiveEngineState } from './apps/live-state.js';
import { createCatalog } from './apps/catalog/catalog.js';
import { CATALOG_TEMPLATES } from './apps/catalog/templates.js';
import { AppsHost } from './apps-host.js';
import { AppLeadership } from './cluster/app-leadership.js';
import { leaderOnlyWrites } from './cluster/management-writes.js';
import { addRoleTestRoutes } from './cluster/role-test-hook.js';
import { ScriptedRoles, SingleNodeRoles, type RoleSource } from './cluster/roles.js';
import { InternalApi } from './internal/internal-api.js';
import { InMemoryRouteSource } from './internal/memory-route-source.js';
import { CertificateManager } from './remote/acme/certificate-manager.js';
import { addRemoteRoutes } from './remote/api.js';
import { serverLookup, systemLookup } from './remote/preflight.js';
import { RemoteAccess } from './remote/remote-access.js';
import Docker from 'dockerode';
import { ApiSchema } from './api/schema.js';
import { AuditLog } from './auth/audit.js';
import { ClaimCode } from './auth/claim.js';
import { SessionStore } from './auth/sessions.js';
import { ensureWebCrypto } from './auth/second-factor/passkeys.js';
import { SecondFactor } from './auth/second-factor/second-factor.js';
import { AttemptThrottle } from './auth/throttle.js';
import { Tpm } from './crypto/tpm.js';
import { FaultSwitch, TEST_HOOKS } from './test-hooks.js';
import { Vault } from './vault.js';
import { BackupService } from './backup/backup-service.js';
import { parseDeviceName } from './system/device-name.js';
import { SystemArea } from './system/system.js';
import { DiskSpaceWatch } from './system/disk-space.js';
import { addDiskRoutes, engineImages } from './system/disk-api.js';
import { VERSION } from '../common/version.js';
import { OsUpdateManager } from './updates/manager.js';
import { addOsUpdateRoutes } from './updates/routes.js';
import { pathRunner } from './updates/runner.js';
import { AvahiResponder } from './mdns/avahi.js';
import { MdnsPublisher } from './mdns/publisher.js';
import { hostLabel } from './apps/routes-from-apps.js';

async function main(env: NodeJS.ProcessEnv) {
  ensureWebCrypto();
  const config = loadServiceConfig(
    'daemon',
    {
      // Loopback only: the proxy is the device's door and forwards the portal here.
      listen: field('PICCOLO_DAEMON_LISTEN', parseListen, parseListen('127.0.0.1:8080')),
      internalSocket: field('PICCOLO_DAEMON_INTERNAL_SOCKET', parseAbsolutePath, '/run/piccolo-daemon/internal.sock'),
      // The portal again, for the proxy only (0660, group piccolo): there it may say who the client is.
      portalSocket: field('PICCOLO_DAEMON_PORTAL_SOCKET', parseAbsolutePath, '/run/piccolo-daemon/portal.sock'),
      deviceName: field('PICCOLO_DEVICE_NAME', parseDeviceName, 'piccolo'),
      stateDir: field('PICCOLO_STATE_DIR', parseAbsolutePath, '/var/lib/piccolo'),
      // "none" runs without a TPM: the device then unlocks only with the password.
      tpmTcti: field('PICCOLO_TPM_TCTI', String, existsSync('/dev/tpmrm0') ? 'device:/dev/tpmrm0' : 'none'),
      console: field('PICCOLO_CONSOLE', String, '/dev/console'),
      podmanSocket: field('PICCOLO_PODMAN_SOCKET', parseAbsolutePath, '/run/podman/podman.sock'),
      // host:port of a DNS server for the remote preflight; empty: the system's resolver.
      dnsServer: field('PICCOLO_DNS_SERVER', String, ''),
      acmeDirectoryUrl: field('PICCOLO_ACME_DIRECTORY_URL', String, 'https://acme-v02.api.letsencrypt.org/directory'),
      // Empty: no contact address (the CA then sends no expiry notices).
      acmeEmail: field('PICCOLO_ACME_EMAIL', String, ''),
      // The health service's public side, read for the dashboard.
      healthUrl: field('PICCOLO_HEALTH_URL', (raw) => parseUrl(raw).origin, 'http://127.0.0.1:4040'),
      // How often the dashboard's metrics are published, and the apps' stats recorded (short in tests).
      metricsIntervalMs: field('PICCOLO_METRICS_INTERVAL_MS', parsePositiveInt, 10_000),
      statsIntervalMs: field('PICCOLO_STATS_INTERVAL_MS', parsePositiveInt, 30_000),
      // A web terminal with no byte either way for this long is closed.
      terminalIdleMs: field('PICCOLO_TERMINAL_IDLE_MS', parsePositiveInt, 15 * 60_000),
      // Development (`make run`): stopping the daemon also stops its apps and closes the volumes,
      // as a lock does. On a device they outlive a daemon restart, which takes them over.
      stopAppsOnExit: field('PICCOLO_STOP_APPS_ON_EXIT', parseBoolean, false),
      // Held back on the state disk so that a full one can still be emptied (system/disk-space.ts).
      diskReserveBytes: field('PICCOLO_DISK_RESERVE_BYTES', parsePositiveInt, 4 * 1024 * 1024),
      // Where the OS update tools (transactional-update, snapper, systemd-run...) are looked up;
      // empty: the daemon's PATH. Tests put the fakes of test/fixtures/os-update-fake/ here.
      osUpdatePath: field('PICCOLO_OS_UPDATE_PATH', String, ''),
      // An OS update (transactional-update dup) still running after this long is stopped.
      osUpdateTimeoutMs: field('PICCOLO_OS_UPDATE_TIMEOUT_MS', parsePositiveInt, 2 * 60 * 60_000),
      // mDNS through Avahi (mdns/): <name>.local and the apps' names on the LAN, polled this often.
      mdns: field('PICCOLO_MDNS', parseBoolean, true),
      mdnsPollMs: field('PICCOLO_MDNS_POLL_MS', parsePositiveInt, 5_000),
      // Kept free on the engine's storage beyond an image, when checking room before a pull.
      imageSpaceReserveBytes: field('PICCOLO_IMAGE_SPACE_RESERVE_BYTES', parsePositiveInt, DEFAULT_RESERVE_BYTES),
    },
    env,
  );
  const logger = createLogger({ service: 'daemon', level: config.logLevel });
  const now = Date.now;
  const health = new HealthReporter({ socketPath: config.healthSocket, intervalMs: config.healthIntervalMs, logger });
  const serving = new ServingReport(health, 'daemon');
  const tpm = config.tpmTcti === 'none' ? undefined : new Tpm({ tcti: config.tpmTcti, logger });
  const faults = TEST_HOOKS ? new FaultSwitch() : undefined;
  // A single node leads everything; test builds let a test flip roles as a cluster engine would.
  const scriptedRoles = TEST_HOOKS ? new ScriptedRoles(`${config.deviceName}.local`) : undefined;
  const roles: RoleSource = scriptedRoles ?? new SingleNodeRoles(`${config.deviceName}.local`);
  const leadership = new AppLeadership({ roles, logger: logger.child({ module: 'leadership' }) });
  leadership.logChanges();
  const hub = new EventHub(now);
  const docker = new Docker({ socketPath: config.podmanSocket });
  // A full state disk is a named state: daemon.store degraded, system.disk events for the banner.
  const diskSpace = new DiskSpaceWatch({
    stateDir: config.stateDir,
    logger: logger.child({ module: 'disk-space' }),
    onChange: (status) => {
      vault.diskSpaceChanged();
      hub.publish('system.disk', status);
    },
    images: () => engineImages(docker),
    reserveBytes: config.diskReserveBytes,
  });
  const vault = new Vault({
    diskSpace,
    stateDir: config.stateDir,
    logger,
    health,
    tpm,
    injectedFault: faults?.current,
    onStateChange: (state, reason) => {
      hub.publish('vault.state', { state, reason });
      system.deviceName.follow(state === 'unlocked' ? vault.controlStore : undefined);
      appsHost.onVaultState(state);
      remote.onVaultState(state);
    },
  });
  const sessions = new SessionStore({ now });
  const events = new EventStream({ hub, sessions, logger });
  const claim = new ClaimCode({ file: path.join(config.stateDir, 'claim-code'), logger, console: config.console === 'none' ? undefined : config.console });
  // Marked by state folder: each daemon sharing the engine (tests, `make run`) sees only its own apps.
  const instance = createHash('sha256').update(path.resolve(config.stateDir)).digest('hex').slice(0, 16);
  const engine = new Engine({
    docker,
    logger: logger.child({ module: 'engine' }),
    instance,
    // Containers made before the mark: this device's own apps are, anything else another daemon's.
    adopts: (app) => {
      try {
        return Object.hasOwn(vault.controlStore.data.apps, app);
      } catch {
        return false; // locked: no app of this device is known, so none is adopted
      }
    },
    spaceCheck: (image) => imageSpace.assertRoom([image]),
  });
  const imageSpace = new ImageSpaceCheck({ storage: () => engine.storage(), has: (image) => engine.hasImage(image), logger: logger.child({ module: 'image-space' }), reserveBytes: config.imageSpaceReserveBytes });
  const routeSource = new InMemoryRouteSource();
  // The proxy's table goes through remote access, which adds the remote names and certificates.
  const remote = new RemoteAccess({
    vault,
    logger: logger.child({ module: 'remote' }),
    now,
    publishRoutes: (table) => routeSource.set(table),
    modeFor: leadership.modeFor,
    certificates: ({ dir, onChange }) =>
      new CertificateManager({ dir, directoryUrl: config.acmeDirectoryUrl, email: config.acmeEmail || undefined, logger: logger.child({ module: 'acme' }), now, onChange }),
    onStatus: (status) => hub.publish('remote.status', status),
  });
  leadership.onAppRoleChange(() => remote.refresh());
  const system = new SystemArea({
    stateDir: config.stateDir,
    defaultName: config.deviceName,
    healthUrl: config.healthUrl,
    metricsIntervalMs: config.metricsIntervalMs,
    statsIntervalMs: config.statsIntervalMs,
    apps: () => appsHost.apps,
    hub,
    logger,
    now,
    version: VERSION,
  });
  const deviceName = () => system.deviceName.current;
  // The name the LAN reaches the device at (piccolo-2 when another host holds piccolo.local): the
  // apps' host names hang below it, in the proxy's routes and in the addresses the API shows.
  const lanName = () => system.deviceName.inUse;
  const mdns = config.mdns
    ? new MdnsPublisher({ responder: new AvahiResponder(), chosenName: deviceName, pollMs: config.mdnsPollMs, onChange: (status) => system.deviceName.setAnnounced(status), logger: logger.child({ module: 'mdns' }) })
    : undefined;
  // The engine's state in memory, fed by its event stream: what the apps API and the dashboard read.
  const live = new LiveEngineState({ engine, logger: logger.child({ module: 'engine-state' }), now });
  const appsHost = new AppsHost({ engine, live, vault, health, hub, logger, deviceName: lanName, leadership, onRoutes: (routes) => {
    remote.setAppRoutes(routes);
    mdns?.setAppLabels(routes.map((route) => hostLabel(route.app, route.listener)));
  } });
  const schema = new ApiSchema(openApiDocument);
  const audit = new AuditLog({ file: path.join(config.stateDir, 'audit.log'), logger, now });
  const terminals = new TerminalService({ sessions, apps: () => appsHost.apps, engine, audit, logger: logger.child({ module: 'terminal' }), now, idleMs: config.terminalIdleMs });
  const upgrades = new UpgradeRouter().on(EVENTS_PATH, events.handleUpgrade).on(TERMINAL_PATH, terminals.handleUpgrade);
  const requireSession = sessionGuard(sessions);
  const backup = new BackupService({
    vault,
    // With apps running, each app is stopped while its volume is copied; otherwise nothing runs to stop.
    quiesce: (app, work) => (appsHost.running ? appsHost.apps.quiesce(app, work) : work()),
    publish: (progress) => hub.publish(`${progress.kind}.progress`, progress),
    logger: logger.child({ module: 'backup' }),
    deviceName: () => system.deviceName.current,
    version: VERSION,
    now,
  });
  const lookup = config.dnsServer ? serverLookup(config.dnsServer) : systemLookup;
  const routes = addRemoteRoutes(addAppRoutes(daemonRoutes({
    schema,
    vault,
    // Before a lock, terminals close first (their shells would otherwise end with the apps).
    apps: { suspend: () => (terminals.closeAll('the device is locking'), appsHost.suspend()) },
    sessions,
    throttle: new AttemptThrottle({ now }),
    claim,
    audit,
    secondFactor: new SecondFactor({ store: () => vault.controlStore, now, deviceName }),
    logger,
    now,
    // The sign-in cookie is shared with the apps' names below the name the LAN knows.
    deviceName: lanName,
    portal: new PortalAssets(portalBundle),
    backup,
  }), { schema, apps: () => appsHost.apps, catalog: createCatalog(CATALOG_TEMPLATES), audit, requireSession, deviceName: lanName, secrets: new AppSecretStore(() => vault.controlStore), imageSpace, beforeFreeingSpace: (why) => diskSpace.releaseReserveIfFull(why) }), { schema, remote, audit, lookup, requireSession });
  system.addRoutes(routes, { schema, requireSession, audit, store: () => vault.controlStore });
  addStorageRoutes(routes, { apps: () => appsHost.apps, vault, requireSession });
  addDiskRoutes(routes, { requireSession, disk: diskSpace });
  const osUpdates = new OsUpdateManager({
    runner: pathRunner(config.osUpdatePath || process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin'),
    recordFile: path.join(config.stateDir, 'os-updates.json'),
    timeoutMs: config.osUpdateTimeoutMs,
    publish: (type, data) => hub.publish(type, data),
    audit,
    logger: logger.child({ module: 'os-updates' }),
    now,
  });
  addOsUpdateRoutes(routes, { schema, requireSession, audit, updates: osUpdates });
  routes.before(leaderOnlyWrites(roles));
  const listener = (faults && scriptedRoles ? addRoleTestRoutes(faults.addRoutes(routes), scriptedRoles, leadership) : routes).listener;
  // A restore uploads a whole backup in one request: allowed an hour (the proxy has its own limit).
  const requestTimeoutMs = 60 * 60_000;
  const http = new HttpServerModule({ name: 'http', address: config.listen, listener, onUpgrade: upgrades.handle, logger, requestTimeoutMs });
  const portalSocket = new HttpServerModule({ name: 'portal-socket', address: { path: config.portalSocket, mode: 0o660 }, listener, onUpgrade: upgrades.handle, logger, requestTimeoutMs });
  // The WebSockets (events and terminals) start and stop together, before http stops.
  const eventStream = {
    name: 'events',
    start: async () => {
      events.start();
      terminals.start();
    },
    stop: async () => {
      upgrades.close();
      terminals.stop();
      events.stop();
    },
  };
  const internalApi = new InternalApi({
    socketPath: config.internalSocket,
    routes: routeSource,
    sessions: {
      check: async (id) => {
        const session = sessions.get(id);
        return { valid: session !== undefined, user: session?.user };
      },
    },
    challenges: { get: (token) => remote.challengeAnswer(token) },
    remote: { table: remote, tunnelStatus: (body) => remote.recordTunnelStatus(body) },
    deviceCa: system.deviceCa,
    logger,
  });
  // The portal route goes to the proxy once the daemon's own port and socket are bound, and
  // again (with the apps' routes) whenever the device is renamed.
  let portalBound = false;
  const publishPortal = () => remote.setPortal({ hostBindPort: http.port, socketPath: config.portalSocket, hostnames: [...new Set([system.deviceName.info.hostname, `${lanName()}.local`])] });
  const portalRoute = {
    name: 'portal-route',
    start: async () => {
      portalBound = true;
      publishPortal();
    },
    stop: async () => void (portalBound = false),
  };
  let lastChosen = deviceName();
  system.deviceName.onChange(() => {
    if (portalBound) publishPortal();
    appsHost.refreshRoutes();
    // A new name is asked of the responder at once (its own status changes come through here too).
    if (deviceName() !== lastChosen) void mdns?.tick();
    lastChosen = deviceName();
  });
  // Listed after the apps, so it stops before them: the containers stop, then the volumes close.
  const stopAppsOnExit = {
    name: 'stop-apps-on-exit',
    start: async () => {},
    stop: async () => {
      if (!config.stopAppsOnExit || vault.state !== 'unlocked') return;
      terminals.closeAll('the daemon is stopping');
      await appsHost.suspend();
      await vault.lock().catch((err) => logger.warn('could not close the volumes on the way out', { err }));
    },
  };
  const claimOnFirstBoot = {
    name: 'claim-code',
    start: async () => {
      if (vault.state === 'unclaimed') await claim.ensure();
    },
    stop: async () => {},
  };
  logger.info('starting', { stateDir: config.stateDir, tpm: config.tpmTcti, configFile: config.configFile });
  // The health reporter first, so that a vault fault during start is reported; `serving` last, so
  // the daemon counts as ready only once all of it serves. The events stream after http: it stops
  // first, closing its WebSockets, which would otherwise hold the server open.
  return startService({ logger, notifier: createNotifier({ env, pid: process.pid }), modules: [health, ...system.modules, diskSpace, vault, claimOnFirstBoot, remote, appsHost, stopAppsOnExit, http, portalSocket, eventStream, portalRoute, internalApi, ...(mdns ? [mdns] : []), serving] });
}

void runMain('daemon', () => main(process.env));
