// The remote access API through the real daemon bundle: real gocryptfs volumes, a real swtpm (so a
// restart unlocks by itself), pebble-challtestsrv as the daemon's DNS server (names resolve only
// when the test says so), and real WebSocket-over-TLS relays on loopback: one whose self-signed
// certificate the daemon trusts through NODE_EXTRA_CA_CERTS, one it does not. The ACME directory
// is a closed local port: certificates are wanted and fail, and no public CA is ever contacted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WebSocketServer } from 'ws';
import { freePort } from '../../image/qemu.js';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import type { RemoteTable } from '../../services/common/remote-contract.js';
import { UnixHttpClient } from '../../services/common/unix-http.js';
import { ApiSession } from '../support/api-session.js';
import { selfSignedCert } from '../support/certs.js';
import { ServiceProcess, removeTestDir, waitFor } from '../support/processes.js';
import { startSwtpm, type SoftTpm } from '../support/swtpm.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-remote-api-'));
const stateDir = path.join(dir, 'state');
const internalSocket = path.join(dir, 'internal.sock');
const PASSWORD = 'Correct-Horse-42x';
const SECRET = 'relay-device-secret-7f3a9c2e41d8';
let tpm: SoftTpm;
let dns: ChildProcess;
let dnsPort = 0;
let dnsManagementPort = 0;
let daemon: ServiceProcess | undefined;
const logs: Record<string, unknown>[][] = [];
let api = '';
let session: ApiSession;
let trustedPort = 0;
let untrustedPort = 0;
const relays: { close(): void }[] = [];
const internal = new UnixHttpClient(internalSocket);

const config = () => ({ relayUrl: `wss://relay.remote.test:${trustedPort}/connect`, deviceSecret: SECRET, portalHostname: 'portal.remote.test', appDomain: 'apps.remote.test' });

async function startDaemon(): Promise<void> {
  daemon = await ServiceProcess.start(
    'daemon',
    {
      PICCOLO_HEALTH_SOCKET: path.join(dir, 'no-health.sock'),
      PICCOLO_DAEMON_LISTEN: '127.0.0.1:0',
      PICCOLO_DAEMON_INTERNAL_SOCKET: internalSocket,
      PICCOLO_STATE_DIR: stateDir,
      PICCOLO_TPM_TCTI: tpm.tcti,
      PICCOLO_CONSOLE: 'none',
      PICCOLO_DNS_SERVER: `127.0.0.1:${dnsPort}`,
      PICCOLO_ACME_DIRECTORY_URL: `https://127.0.0.1:${await freePort()}/dir`,
      NODE_EXTRA_CA_CERTS: path.join(dir, 'trusted-cert.pem'),
    },
    TEST_BUNDLE_DIR,
  );
  logs.push(daemon.logs);
  await daemon.notified('READY=1', 20_000);
  api = `http://${await daemon.address('http')}`;
}

const call = (method: string, route: string, body?: unknown) => session.call(method, route, body);

async function remoteTable(wait?: number): Promise<RemoteTable> {
  const answer = await internal.call(`/v1/remote${wait === undefined ? '' : `?wait=${wait}`}`, { timeoutMs: 30_000 });
  assert.is(answer.status, 200);
  return JSON.parse(answer.body);
}

const check = (answer: { body: any }, id: string) => answer.body.checks.find((c: { id: string }) => c.id === id);

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  tpm = await startSwtpm();
  for (const [name, host] of [['trusted', 'relay.remote.test'], ['untrusted', 'untrusted.remote.test']]) {
    const { key, cert } = await selfSignedCert([host]);
    writeFileSync(path.join(dir, `${name}-key.pem`), key);
    writeFileSync(path.join(dir, `${name}-cert.pem`), cert);
  }
  trustedPort = await startRelay('trusted');
  untrustedPort = await startRelay('untrusted');
  [dnsPort, dnsManagementPort] = [await freePort(), await freePort()];
  // No default addresses: a name resolves only once added below.
  dns = spawn('pebble-challtestsrv', ['-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${dnsManagementPort}`, '-defaultIPv4', '', '-defaultIPv6', ''], { stdio: 'ignore' });
  await waitFor(() => fetch(`http://127.0.0.1:${dnsManagementPort}/`).then(() => true, () => undefined), 10_000, 'pebble-challtestsrv');
  for (const host of ['relay.remote.test', 'untrusted.remote.test', 'portal.remote.test']) {
    const res = await fetch(`http://127.0.0.1:${dnsManagementPort}/add-a`, { method: 'POST', body: JSON.stringify({ host: `${host}.`, addresses: ['127.0.0.1'] }) });
    assert.ok(res.ok, `add-a ${host}`);
  }
  await startDaemon();
  session = new ApiSession(api);
  const claimCode = readFileSync(path.join(stateDir, 'claim-code'), 'utf8').trim();
  const claim = await call('POST', '/api/v1/setup/claim', { claimCode });
  assert.is((await call('POST', '/api/v1/setup', { setupToken: claim.body.setupToken, password: PASSWORD, recoveryKeySaved: true })).status, 201);
});

test.after(async () => {
  internal.close();
  await daemon?.kill('SIGTERM');
  for (const relay of relays) relay.close();
  dns?.kill('SIGTERM');
  removeTestDir(dir);
  await tpm?.stop();
});

test('without a session 401, without the CSRF token 403; nothing changes', async () => {
  const stranger = new ApiSession(api);
  assert.is((await stranger.call('GET', '/api/v1/remote/status')).status, 401);
  assert.is((await stranger.call('POST', '/api/v1/remote/configure', config())).status, 401);
  const withoutCsrf = Object.assign(new ApiSession(api), { cookie: session.cookie });
  assert.is((await withoutCsrf.call('POST', '/api/v1/remote/configure', config())).status, 403);
  assert.is((await withoutCsrf.call('POST', '/api/v1/remote/preflight', {})).status, 403);
  assert.is((await call('GET', '/api/v1/remote/status')).body.configured, false);
  assert.is((await call('POST', '/api/v1/remote/preflight', {})).status, 409, 'nothing stored, nothing given');
  const half = await call('POST', '/api/v1/remote/preflight', { relayUrl: config().relayUrl });
  assert.is(half.status, 400);
  assert.equal(half.body.error.details, ['portalHostname: missing']);
});

test('bad input: 400s that name the field', async () => {
  const refused = async (change: Record<string, unknown>) => {
    const answer = await call('POST', '/api/v1/remote/configure', { ...config(), ...change });
    assert.is(answer.status, 400, JSON.stringify(change));
    return (answer.body.error.details as string[]).join('\n');
  };
  assert.match(await refused({ relayUrl: `https://relay.remote.test:${trustedPort}/connect` }), /^relayUrl: must start with wss:\/\//);
  assert.match(await refused({ relayUrl: `wss://relay.remote.test:${trustedPort}/` }), /^relayUrl: must end with the path \/connect/);
  assert.match(await refused({ deviceSecret: 'short' }), /^deviceSecret: must NOT have fewer than 16 characters/);
  assert.match(await refused({ portalHostname: 'not a host' }), /^portalHostname: must be a full DNS name/);
  assert.match(await refused({ appDomain: 'apps' }), /^appDomain: must be a full DNS name/);
  assert.match(await refused({ extra: 1 }), /unknown field extra/);
  assert.match(await refused({ deviceSecret: undefined }), /missing field deviceSecret/);
  assert.is((await call('GET', '/api/v1/remote/status')).body.configured, false);
  assert.is((await remoteTable()).enabled, false);
});

test('configure: status shows the config and the names but never the secret; the tunnel gets it', async () => {
  const configured = await call('POST', '/api/v1/remote/configure', config());
  assert.is(configured.status, 200);
  const status = (await call('GET', '/api/v1/remote/status')).body;
  assert.is(status.enabled, true);
  assert.is(status.relayUrl, config().relayUrl);
  assert.is(status.portalHostname, 'portal.remote.test');
  assert.is(status.deviceSecretSet, true);
  assert.equal(status.hostnames, [{ hostname: 'portal.remote.test', kind: 'portal', mode: 'local', tls: 'device' }]);
  assert.equal(status.tunnel, { reporting: false });
  assert.not.match(JSON.stringify(configured.body) + JSON.stringify(status), SECRET);
  const table = await remoteTable();
  assert.equal(table.routes, [{ hostname: 'portal.remote.test', kind: 'portal', mode: 'local' }]);
  assert.is(table.relayUrl, config().relayUrl);
  assert.is(table.deviceSecret, SECRET);
  const proxyTable = JSON.parse((await internal.call('/v1/routes', { timeoutMs: 5000 })).body);
  assert.equal(proxyTable.portal.hostnames, ['piccolo.local', 'portal.remote.test'], 'the proxy routes the remote portal name by Host/SNI');
});

test('the certificate inventory wants the portal name and says why it has none yet', async () => {
  const inventory = await waitFor(async () => {
    const { body } = await call('GET', '/api/v1/remote/certificates');
    return body.certificates[0]?.lastError ? body.certificates : undefined;
  }, 15_000, 'a failed first order');
  assert.equal(inventory.map((c: { name: string }) => c.name), ['portal.remote.test']);
  assert.match(inventory[0].lastError, /could not reach the ACME server/);
  const renew = await call('POST', '/api/v1/remote/certificates/renew', { name: 'portal.remote.test' });
  assert.is(renew.status, 502);
  assert.match(renew.body.error.message, /portal\.remote\.test: could not reach the ACME server/);
  assert.is((await call('POST', '/api/v1/remote/certificates/renew', { name: 'other.remote.test' })).status, 404);
});

test('the secret is in a 0600 file in the bootstrap volume, not in the control store, the audit log or any log line', async () => {
  const secretFile = path.join(stateDir, 'volumes', 'bootstrap', 'mnt', 'remote', 'device-secret');
  assert.is(readFileSync(secretFile, 'utf8'), SECRET);
  assert.is(statSync(secretFile).mode & 0o777, 0o600);
  const store = readFileSync(path.join(stateDir, 'volumes', 'control', 'mnt', 'store', 'control.json'), 'utf8');
  assert.match(store, /"relayUrl"/);
  assert.not.match(store, SECRET);
  const audit = readFileSync(path.join(stateDir, 'audit.log'), 'utf8');
  assert.match(audit, /"event":"remote.configure","outcome":"ok"/);
  assert.not.match(audit, SECRET);
  assert.not.match(JSON.stringify(logs), SECRET);
});

test('a pushed tunnel status shows in the status; a bad one is a 400 naming the field', async () => {
  const pushed = { state: 'backoff', relay: config().relayUrl, lastError: 'handshake refused', backoffMs: 1500, streams: 0, bytesIn: 12, bytesOut: 34, since: new Date().toISOString() };
  assert.is((await internal.call('/v1/tunnel/status', { method: 'POST', body: pushed, timeoutMs: 5000 })).status, 204);
  const { tunnel } = (await call('GET', '/api/v1/remote/status')).body;
  assert.is(tunnel.reporting, true);
  assert.equal(tunnel.status, pushed);
  const bad = await internal.call('/v1/tunnel/status', { method: 'POST', body: { ...pushed, bytesIn: 'lots' }, timeoutMs: 5000 });
  assert.is(bad.status, 400);
  assert.equal(JSON.parse(bad.body).error.details, ['bytesIn: must be a whole number >= 0']);
});

test('preflight against the trusted local relay: every check passes', async () => {
  const stored = await call('POST', '/api/v1/remote/preflight');
  assert.is(stored.status, 200);
  assert.equal(stored.body.checks.map((c: { id: string; ok: boolean }) => [c.id, c.ok]), [
    ['relay-url', true], ['relay-dns', true], ['portal-dns', true], ['relay-tcp', true], ['relay-tls', true], ['relay-websocket', true],
  ]);
  assert.is(stored.body.ok, true);
  assert.match(check(stored, 'relay-tls').message, /valid for relay\.remote\.test/);
  assert.is(check(stored, 'relay-websocket').message, 'the relay accepted a WebSocket at /connect');
});

test('preflight failures say what to do: closed port, unresolvable name, untrusted certificate', async () => {
  const closed = await freePort();
  const refused = await call('POST', '/api/v1/remote/preflight', { relayUrl: `wss://relay.remote.test:${closed}/connect`, portalHostname: 'portal.remote.test' });
  assert.is(refused.body.ok, false);
  assert.match(check(refused, 'relay-tcp').message, new RegExp(`^nothing accepts connections at relay\\.remote\\.test port ${closed} \\(127\\.0\\.0\\.1\\): check the port`));

  const unknown = await call('POST', '/api/v1/remote/preflight', { relayUrl: 'wss://nowhere.remote.test/connect', portalHostname: 'missing.remote.test' });
  assert.is(check(unknown, 'relay-dns').message, 'nowhere.remote.test does not resolve: check the spelling or your DNS');
  assert.match(check(unknown, 'portal-dns').message, /^missing\.remote\.test does not resolve/);

  const untrusted = await call('POST', '/api/v1/remote/preflight', { relayUrl: `wss://untrusted.remote.test:${untrustedPort}/connect`, portalHostname: 'portal.remote.test' });
  assert.is(check(untrusted, 'relay-tcp').ok, true);
  assert.match(check(untrusted, 'relay-tls').message, /^the relay's certificate is not trusted: self-signed certificate\. /);

  // One field given: the stored portal name fills in the other.
  const partial = await call('POST', '/api/v1/remote/preflight', { relayUrl: `wss://untrusted.remote.test:${untrustedPort}/connect` });
  assert.is(partial.status, 200);
  assert.match(check(partial, 'portal-dns').message, /^portal\.remote\.test resolves to 127\.0\.0\.1/);
  assert.is(check(partial, 'relay-tls').ok, false);
});

test('disable needs {"confirm": true}; then the tunnel long poll answers disabled at once', async () => {
  assert.is((await call('POST', '/api/v1/remote/disable', {})).status, 400);
  const unconfirmed = await call('POST', '/api/v1/remote/disable', { confirm: false });
  assert.is(unconfirmed.status, 400);
  assert.match(unconfirmed.body.error.details.join(), /^confirm: /);
  assert.is((await remoteTable()).enabled, true);

  const before = await remoteTable();
  const waiting = remoteTable(before.rev);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const disabled = await call('POST', '/api/v1/remote/disable', { confirm: true });
  assert.is(disabled.status, 200);
  assert.is(disabled.body.enabled, false);
  assert.is(disabled.body.configured, true);
  const after = await waiting;
  assert.is(after.rev, before.rev + 1);
  assert.is(after.enabled, false);
  assert.is(after.deviceSecret, undefined);
  assert.match(readFileSync(path.join(stateDir, 'audit.log'), 'utf8'), /"event":"remote.disable","outcome":"ok"/);
});

test('after a restart that the TPM unlocks, remote access resumes with no API call', async () => {
  assert.is((await call('POST', '/api/v1/remote/configure', config())).status, 200);
  assert.is(await daemon!.kill('SIGTERM'), 0);
  await startDaemon();
  // Already at READY: the TPM unlock opens remote access before the internal socket listens.
  const table = await remoteTable();
  assert.is(table.enabled, true);
  assert.is(table.relayUrl, config().relayUrl);
  assert.is(table.deviceSecret, SECRET);
  assert.equal(table.routes.map((r) => r.hostname), ['portal.remote.test']);
  assert.match(JSON.stringify(daemon!.logs), /unlocked with the TPM/);
  assert.not.match(JSON.stringify(logs), SECRET, 'the secret is in no log line of either run');
});

async function startRelay(name: string): Promise<number> {
  const server = https.createServer({ key: readFileSync(path.join(dir, `${name}-key.pem`)), cert: readFileSync(path.join(dir, `${name}-cert.pem`)) });
  const wss = new WebSocketServer({ server, path: '/connect' });
  relays.push(wss, server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

test.run();
