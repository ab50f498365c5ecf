// The real client's address reaches the daemon from the LAN too: the proxy forwards the portal
// over the daemon's portal socket with X-Forwarded-For, which the daemon believes there and only
// there. Two LAN sources on loopback (127.0.0.2 and 127.0.0.3) are throttled apart at the login
// and named apart in the audit log; a client on the daemon's TCP port cannot forge either.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { ServiceProcess, removeTestDir, startTestDaemon, waitFor } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-client-address-'));
const stateDir = path.join(dir, 'state');
const PASSWORD = 'Correct-Horse-42x';
let daemon: ServiceProcess;
let proxy: ServiceProcess;
let daemonPort = 0;
let proxyPort = 0;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
}

/** A JSON request to 127.0.0.1:port from a chosen loopback source address. */
function call(port: number, method: string, urlPath: string, body: unknown, options: { from?: string; headers?: Record<string, string>; ca?: string } = {}): Promise<Answer> {
  const payload = body === undefined ? '' : JSON.stringify(body);
  const client = options.ca ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: urlPath,
        localAddress: options.from,
        ca: options.ca,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...options.headers },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const login = (port: number, password: string, options: Parameters<typeof call>[4] = {}) => call(port, 'POST', '/api/v1/auth/login', { password }, options);

function auditEntries(): { event: string; outcome: string; client?: string }[] {
  return readFileSync(path.join(stateDir, 'audit.log'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  const internalSocket = path.join(dir, 'daemon-internal.sock');
  ({ proc: daemon } = await startTestDaemon(stateDir, { PICCOLO_DAEMON_INTERNAL_SOCKET: internalSocket, PICCOLO_DAEMON_PORTAL_SOCKET: path.join(dir, 'daemon-portal.sock') }));
  daemonPort = Number((await daemon.address('http')).split(':').pop());
  proxy = await ServiceProcess.start(
    'proxy',
    {
      PICCOLO_PROXY_LISTEN: '127.0.0.1:0',
      PICCOLO_PROXY_BIND_HOST: '127.0.0.1',
      PICCOLO_PROXY_DAEMON_SOCKET: internalSocket,
      PICCOLO_PROXY_CERT_DIR: path.join(dir, 'proxy-certs'),
      PICCOLO_HEALTH_SOCKET: path.join(dir, 'no-health.sock'),
    },
    TEST_BUNDLE_DIR,
  );
  await proxy.notified('READY=1', 20_000);
  proxyPort = Number((await proxy.address('listener-0')).split(':').pop());
  await waitFor(() => proxy.logs.find((l) => l.msg === 'routes applied' && l.portal === true), 10_000, 'the proxy has the portal route');
  // Set the device up through the proxy, so that there is a password to get wrong.
  const claimCode = readFileSync(path.join(stateDir, 'claim-code'), 'utf8').trim();
  const claim = await call(proxyPort, 'POST', '/api/v1/setup/claim', { claimCode });
  assert.is(claim.status, 200);
  const setup = await call(proxyPort, 'POST', '/api/v1/setup', { setupToken: claim.body.setupToken, password: PASSWORD, recoveryKeySaved: true });
  assert.is(setup.status, 201);
});

test.after(async () => {
  await proxy?.kill('SIGTERM');
  await daemon?.kill('SIGTERM');
  removeTestDir(dir);
});

test('wrong passwords from 127.0.0.2 get it throttled while 127.0.0.3 is still only told the password is wrong; the audit log names each', async () => {
  const first = [];
  for (let i = 0; i < 4; i++) first.push((await login(proxyPort, 'Wrong-Horse-42x', { from: '127.0.0.2' })).status);
  assert.equal(first, [401, 401, 401, 401]);
  const throttled = await login(proxyPort, 'Wrong-Horse-42x', { from: '127.0.0.2' });
  assert.is(throttled.status, 429);
  assert.ok(Number(throttled.headers['retry-after']) >= 1, 'Retry-After says how long to wait');
  assert.is((await login(proxyPort, 'Wrong-Horse-42x', { from: '127.0.0.3' })).status, 401, 'the other LAN client is not throttled');
  const denied = auditEntries().filter((e) => e.event === 'auth.login' && e.outcome === 'denied');
  assert.equal(denied.map((e) => e.client), ['127.0.0.2', '127.0.0.2', '127.0.0.2', '127.0.0.2', '127.0.0.3']);
  assert.ok(auditEntries().some((e) => e.event === 'setup.claim' && e.client === '127.0.0.1'), 'the setup was audited with its client too');
});

test("on the daemon's TCP port a forged X-Forwarded-For is not believed: the peer address counts", async () => {
  // 127.0.0.2 is throttled by now: pretending to be it would get a 429, pretending to be
  // 127.0.0.3 would land in its record. Neither may happen.
  const forged = await login(daemonPort, 'Wrong-Horse-42x', { from: '127.0.0.4', headers: { 'x-forwarded-for': '127.0.0.2' } });
  assert.is(forged.status, 401);
  const last = auditEntries().at(-1)!;
  assert.equal([last.event, last.client], ['auth.login', '127.0.0.4']);
});

test('X-Forwarded-Proto is believed from the proxy (a TLS login gets a Secure cookie), never on the TCP port', async () => {
  const ca = readFileSync(path.join(dir, 'proxy-certs', 'local-ca', 'ca.cert.pem'), 'utf8');
  const overTls = await login(proxyPort, PASSWORD, { from: '127.0.0.5', ca });
  assert.is(overTls.status, 200);
  assert.match(String(overTls.headers['set-cookie']), /; Secure/);
  const forged = await login(daemonPort, PASSWORD, { from: '127.0.0.6', headers: { 'x-forwarded-proto': 'https' } });
  assert.is(forged.status, 200);
  assert.not.match(String(forged.headers['set-cookie']), /Secure/);
});

test('WebSocket upgrades to the portal go over the portal socket too', async () => {
  const signedIn = await login(proxyPort, PASSWORD, { from: '127.0.0.7' });
  const cookie = String(signedIn.headers['set-cookie']).split(';')[0]!;
  const ws = new WebSocket(`ws://127.0.0.1:${proxyPort}/api/v1/events`, { headers: { cookie }, localAddress: '127.0.0.7' });
  const outcome = await new Promise<string>((resolve) => {
    ws.once('open', () => resolve('open'));
    ws.once('unexpected-response', (_req, res) => resolve(`refused ${res.statusCode}`));
    ws.once('error', (err) => resolve(err.message));
  });
  ws.close();
  assert.is(outcome, 'open');
  const refused = new WebSocket(`ws://127.0.0.1:${proxyPort}/api/v1/events`);
  assert.is(await new Promise((resolve) => refused.once('unexpected-response', (_req, res) => resolve(res.statusCode))), 401, 'the daemon, not the proxy, decided');
});

test.run();
