// Remote access in the daemon over a real control store (in a temp folder standing in for the
// control volume), a temp bootstrap folder and the real internal API on a unix socket: settings,
// the secret file, the remote table and its long poll, the remote names in the proxy's routes,
// certificate names, the tunnel's status, and a restart that brings it all back.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LockedError } from '../../services/common/errors.js';
import { createLogger } from '../../services/common/logger.js';
import type { RemoteTable } from '../../services/common/remote-contract.js';
import type { CertificatePair, PortalRoute, Route } from '../../services/common/route-table.js';
import { UnixHttpClient } from '../../services/common/unix-http.js';
import { CONTROL_MIGRATIONS, CONTROL_SCHEMA_VERSION, initialControlDocument, type AppRecord, type ControlDocument } from '../../services/daemon/control-document.js';
import { InternalApi } from '../../services/daemon/internal/internal-api.js';
import { RemoteAccess, TUNNEL_QUIET_MS, type CertificateSource } from '../../services/daemon/remote/remote-access.js';
import { checkRemoteConfig } from '../../services/daemon/remote/settings.js';
import { ControlStore } from '../../services/daemon/store/store.js';
import type { VaultState } from '../../services/daemon/vault.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-remote-access-'));
const lines: string[] = [];
const logger = createLogger({ service: 'test', write: (line) => void lines.push(line) });
const SECRET = 'hunter2-but-much-longer-0123456789';
/** The clock remote access reads; tests move it forward. */
let clockOffsetMs = 0;
const CONFIG = { relayUrl: 'wss://Relay.Example.com:8443/connect', deviceSecret: SECRET, portalHostname: 'Portal.Example.com', appDomain: 'apps.example.com' };

/** The certificate manager's side as remote access drives it (the real one is remote/acme/). */
class RecordingCertificates implements CertificateSource {
  names: string[] = [];
  running = false;
  async start() {
    this.running = true;
  }
  async stop() {
    this.running = false;
  }
  setNames(names: string[]) {
    this.names = names;
  }
  inventory() {
    return this.names.map((name) => ({ name, state: 'pending' as const }));
  }
  async renew() {}
  current(): CertificatePair[] {
    return [];
  }
  challengeAnswer(token: string) {
    return token === 'known' ? 'known.thumbprint' : undefined;
  }
}

interface Harness {
  store: ControlStore<ControlDocument>;
  remote: RemoteAccess;
  published: { portal: PortalRoute | null; routes: Route[] }[];
  certificates: RecordingCertificates;
  modes: Map<string, 'local' | 'tunnel'>;
  vault: { state: VaultState };
}

async function open(state: 'unlocked' | 'locked' = 'unlocked'): Promise<Harness> {
  await mkdir(path.join(dir, 'control'), { recursive: true });
  await mkdir(path.join(dir, 'bootstrap'), { recursive: true });
  const store = await ControlStore.open<ControlDocument>({
    dir: path.join(dir, 'control', 'store'),
    logger,
    schemaVersion: CONTROL_SCHEMA_VERSION,
    migrations: CONTROL_MIGRATIONS,
    initial: initialControlDocument,
  });
  const published: Harness['published'] = [];
  const certificates = new RecordingCertificates();
  const modes = new Map<string, 'local' | 'tunnel'>();
  const vault = {
    state: state as VaultState,
    controlStore: store,
    bootstrapDir: path.join(dir, 'bootstrap'),
    assertUnlocked: () => {
      if (vault.state !== 'unlocked') throw new LockedError();
    },
  };
  const remote = new RemoteAccess({
    vault,
    logger,
    now: () => Date.now() + clockOffsetMs,
    publishRoutes: (table) => void published.push(table),
    modeFor: (app) => modes.get(app) ?? 'local',
    certificates: () => certificates,
  });
  await remote.start();
  return { store, remote, published, certificates, modes, vault };
}

function app(name: string, listeners: { name: string; flow: 'tcp' | 'tls'; protocol: 'http' | 'websocket' | 'raw' }[]): AppRecord {
  return { spec: { name, listeners }, revision: 1, installedAt: '', updatedAt: '', run: 'running', history: [], ports: {}, subnet: '10.89.0.0/24' } as unknown as AppRecord;
}

const appRoute = (appName: string, listener: string, publicPort: number): Route => ({
  app: appName,
  listener,
  publicPort,
  hostBindPort: publicPort - 20000,
  flow: 'tcp',
  protocol: 'http',
  access: 'private',
  middleware: [],
  hostnames: [`${listener}-${appName}.piccolo.local`],
});

let harness: Harness;

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('settings: every problem is named by its field; names are lower-cased', () => {
  const problems = (input: Partial<typeof CONFIG>) => {
    try {
      checkRemoteConfig({ ...CONFIG, ...input });
      return [];
    } catch (err) {
      return (err as { details: string[] }).details;
    }
  };
  assert.match(problems({ relayUrl: 'https://relay.example.com/connect' }).join(), /^relayUrl: must start with wss:\/\//);
  assert.match(problems({ relayUrl: 'wss://relay.example.com/connect/' }).join(), /^relayUrl: must end with the path \/connect/);
  assert.match(problems({ relayUrl: 'wss://user:pw@relay.example.com/connect' }).join(), /^relayUrl: must not hold a user name/);
  assert.match(problems({ relayUrl: 'wss://relay.example.com/connect?x=1' }).join(), /^relayUrl: must have no query/);
  assert.match(problems({ relayUrl: 'relay.example.com' }).join(), /^relayUrl: is not a URL/);
  assert.equal(problems({ portalHostname: 'portal', appDomain: 'bad_name.example.com' }), [
    'portalHostname: must be a full DNS name such as portal.example.com',
    'appDomain: must be a full DNS name such as apps.example.com',
  ]);
  assert.match(problems({ deviceSecret: ` ${SECRET}` }).join(), /^deviceSecret: /);
  assert.equal(checkRemoteConfig(CONFIG), { relayUrl: 'wss://relay.example.com:8443/connect', portalHostname: 'portal.example.com', appDomain: 'apps.example.com' });
});

test('a v2 store (apps and jobs) migrates to v3 with remote null and an auth section, apps kept', async () => {
  const storeDir = path.join(dir, 'v2', 'store');
  await mkdir(path.dirname(storeDir), { recursive: true });
  const v2 = await ControlStore.open<Record<string, unknown>>({ dir: storeDir, logger, schemaVersion: 2, migrations: CONTROL_MIGRATIONS.slice(0, 1), initial: () => ({ device: { createdAt: 'then' }, apps: { blog: { kept: true } }, jobs: [] }) });
  const revBefore = v2.rev;
  await v2.close();
  const v3 = await ControlStore.open<ControlDocument>({ dir: storeDir, logger, schemaVersion: 3, migrations: CONTROL_MIGRATIONS.slice(0, 2), initial: initialControlDocument });
  assert.is(v3.rev, revBefore + 1);
  assert.equal(v3.data as unknown, { device: { createdAt: 'then' }, apps: { blog: { kept: true } }, jobs: [], remote: null, auth: {} });
  await v3.close();
});

test('a new store is schema v3 with remote null and an auth section; not configured means disabled', async () => {
  harness = await open();
  assert.is(harness.store.data.remote, null);
  assert.equal(harness.store.data.auth, {});
  assert.equal({ ...harness.remote.current(), rev: 0 }, { rev: 0, enabled: false, routes: [] });
  const status = harness.remote.status();
  assert.is(status.configured, false);
  assert.is(status.deviceSecretSet, false);
  assert.equal(status.tunnel, { reporting: false });
});

test('configure: store rev bumped, secret only in a 0600 file, table enabled with the portal name', async () => {
  const { store, remote } = harness;
  const revBefore = store.rev;
  const tableRev = remote.current().rev;
  const status = await remote.configure(CONFIG);
  assert.is(store.rev, revBefore + 1);
  assert.equal(store.data.remote, { relayUrl: 'wss://relay.example.com:8443/connect', portalHostname: 'portal.example.com', appDomain: 'apps.example.com', enabled: true });
  assert.not.match(readFileSync(store.file, 'utf8'), SECRET);
  const secretFile = path.join(dir, 'bootstrap', 'remote', 'device-secret');
  assert.is(readFileSync(secretFile, 'utf8'), SECRET);
  assert.is(statSync(secretFile).mode & 0o777, 0o600);
  const table = remote.current();
  assert.is(table.rev, tableRev + 1);
  assert.equal(table, { rev: table.rev, enabled: true, relayUrl: 'wss://relay.example.com:8443/connect', deviceSecret: SECRET, routes: [{ hostname: 'portal.example.com', kind: 'portal', mode: 'local' }] });
  assert.is(status.deviceSecretSet, true);
  assert.not.match(JSON.stringify(status), SECRET);
  assert.not.match(lines.join(''), SECRET);
});

test('app listeners get <listener>-<app>.<appDomain>; certificates only for device-terminated ones; modeFor decides the mode', async () => {
  const { store, remote, certificates, modes } = harness;
  await store.commit((doc) => {
    doc.apps.blog = app('blog', [{ name: 'web', flow: 'tcp', protocol: 'http' }, { name: 'live', flow: 'tcp', protocol: 'websocket' }]);
    doc.apps.vault = app('vault', [{ name: 'tls', flow: 'tls', protocol: 'http' }, { name: 'db', flow: 'tcp', protocol: 'raw' }]);
  });
  const hostnames = remote.current().routes.map((route) => route.hostname);
  assert.equal(hostnames, ['portal.example.com', 'web-blog.apps.example.com', 'live-blog.apps.example.com', 'tls-vault.apps.example.com', 'db-vault.apps.example.com']);
  assert.equal(remote.current().routes[3], { hostname: 'tls-vault.apps.example.com', kind: 'app', app: 'vault', listener: 'tls', flow: 'tls', protocol: 'http', mode: 'local' });
  assert.equal(certificates.names, ['portal.example.com', 'web-blog.apps.example.com', 'live-blog.apps.example.com']);
  assert.equal(remote.status().hostnames.map((name) => name.tls), ['device', 'device', 'device', 'passthrough', 'passthrough']);

  const rev = remote.current().rev;
  modes.set('blog', 'tunnel');
  remote.refresh();
  assert.is(remote.current().rev, rev + 1);
  assert.equal(remote.current().routes.filter((r) => r.app === 'blog').map((r) => r.mode), ['tunnel', 'tunnel']);
  modes.delete('blog');
  remote.refresh();
});

test('a store commit that touches neither remote nor listeners (a job) leaves the table and the proxy alone', async () => {
  const { store, remote, published } = harness;
  const rev = remote.current().rev;
  const publishedBefore = published.length;
  await store.commit((doc) => void doc.jobs.push({ id: 'j1', app: 'blog', kind: 'start', status: 'running', progress: { done: 0, total: 1 }, createdAt: '', updatedAt: '' }));
  assert.is(remote.current().rev, rev);
  assert.is(published.length, publishedBefore);
});

test('the proxy gets the remote names added to the portal and to each app route', () => {
  const { remote, published } = harness;
  remote.setPortal({ hostBindPort: 8080, hostnames: ['piccolo.local'] });
  remote.setAppRoutes([appRoute('blog', 'web', 35001)]);
  const last = published.at(-1)!;
  assert.equal(last.portal!.hostnames, ['piccolo.local', 'portal.example.com']);
  assert.equal(last.routes[0]!.hostnames, ['web-blog.piccolo.local', 'web-blog.apps.example.com']);
});

test('internal API: long poll answers on change; tunnel status is checked, kept, and shown', async () => {
  const { remote } = harness;
  const socketPath = path.join(dir, 'internal.sock');
  const api = new InternalApi({
    socketPath,
    routes: Object.assign(new (await import('node:events')).EventEmitter(), { current: () => ({ rev: 0, portal: null, routes: [] }) }),
    sessions: { check: async () => ({ valid: false }) },
    challenges: { get: (token) => remote.challengeAnswer(token) },
    remote: { table: remote, tunnelStatus: (body) => remote.recordTunnelStatus(body) },
    logger,
  });
  await api.start();
  const client = new UnixHttpClient(socketPath);
  try {
    const now = JSON.parse((await client.call('/v1/remote', { timeoutMs: 2000 })).body) as RemoteTable;
    assert.is(now.deviceSecret, SECRET);
    const waiting = client.call(`/v1/remote?wait=${now.rev}`, { timeoutMs: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await remote.disable();
    const next = JSON.parse((await waiting).body) as RemoteTable;
    assert.is(next.rev, now.rev + 1);
    assert.equal({ ...next, rev: 0 }, { rev: 0, enabled: false, routes: [] });

    assert.is((await client.call('/v1/acme-challenge/known', { timeoutMs: 2000 })).body, 'known.thumbprint');

    const status = { state: 'connected', relay: 'wss://relay.example.com:8443/connect', streams: 2, bytesIn: 10, bytesOut: 20, since: new Date().toISOString() };
    assert.is((await client.call('/v1/tunnel/status', { method: 'POST', body: status, timeoutMs: 2000 })).status, 204);
    const shown = remote.status().tunnel;
    assert.is(shown.reporting, true);
    assert.equal(shown.status, status);
    const bad = await client.call('/v1/tunnel/status', { method: 'POST', body: { ...status, state: 'flying', streams: -1, extra: 1 }, timeoutMs: 2000 });
    assert.is(bad.status, 400);
    assert.equal(JSON.parse(bad.body).error.details, ['extra: unknown field', 'state: must be one of disabled, connecting, connected, backoff', 'streams: must be a whole number >= 0']);
    assert.equal(remote.status().tunnel.status, status, 'a bad push changes nothing');

    clockOffsetMs += TUNNEL_QUIET_MS + 1;
    const quiet = remote.status().tunnel;
    assert.is(quiet.reporting, false, 'connected, but no heartbeat for too long: not reporting');
    assert.equal(quiet.status, status, 'the last status still comes along');
    assert.is((await client.call('/v1/tunnel/status', { method: 'POST', body: status, timeoutMs: 2000 })).status, 204);
    assert.is(remote.status().tunnel.reporting, true);
  } finally {
    client.close();
    await api.stop();
  }
});

test('disabled: no remote names for the proxy; settings, secret and certificates kept', () => {
  const { remote, published, certificates, store } = harness;
  assert.equal(published.at(-1)!.portal!.hostnames, ['piccolo.local']);
  assert.equal(published.at(-1)!.routes[0]!.hostnames, ['web-blog.piccolo.local']);
  assert.equal(certificates.names, ['portal.example.com', 'web-blog.apps.example.com', 'live-blog.apps.example.com'], 're-enabling must not order them again');
  assert.is(store.data.remote!.enabled, false);
  assert.is(remote.status().deviceSecretSet, true);
});

test('a restart (new store handle, new module) resumes enabled remote access without any call', async () => {
  await harness.remote.configure(CONFIG);
  await harness.remote.stop();
  await harness.store.close();
  const again = await open();
  const table = again.remote.current();
  assert.is(table.enabled, true);
  assert.is(table.relayUrl, 'wss://relay.example.com:8443/connect');
  assert.is(table.deviceSecret, SECRET);
  assert.is(table.routes.length, 5);
  harness = again;
});

test('a commit from elsewhere (a follower applying the leader\'s settings) is followed', async () => {
  const { store, remote } = harness;
  await store.commit((doc) => void (doc.remote = { ...doc.remote!, portalHostname: 'home.example.net' }));
  assert.is(remote.current().routes[0]!.hostname, 'home.example.net');
});

test('locked: the table goes disabled and the API answers 423', async () => {
  const { remote, vault } = harness;
  vault.state = 'locked';
  remote.onVaultState('locked');
  await remote.stop();
  assert.is(remote.current().enabled, false);
  assert.throws(() => remote.status(), (err: unknown) => err instanceof LockedError);
  assert.is(harness.certificates.running, false, 'the certificate manager stopped with the lock');
  await harness.store.close();
  assert.not.match(lines.join(''), SECRET, 'the secret is in no log line');
});

test.run();
