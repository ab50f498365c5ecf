// Remote access end to end, every part real: our relay (the Nexus server side) on loopback, Debian's
// pebble as the ACME CA, the daemon, proxy and tunnel bundles as processes, apps on Podman.
// Remote access is configured through the API; the tunnel registers the names; certificates are
// issued by HTTP-01 through the relay and the tunnel; end users reach the portal and the apps over
// HTTPS, WebSocket and TLS passthrough through the relay, each seen with its own address; a
// follower event takes an app off this node. The real Go Nexus server runs too where it could be
// installed (scripts/setup.sh); here it cannot, and the test says so.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { freePort } from '../../image/qemu.js';
import type { Relay } from '../../services/relay/relay.js';
import { ApiSession } from '../support/api-session.js';
import { remoteSockets, startProxyAndTunnel, startTestRelay } from '../support/remote-stack.js';
import { buildNodeAppImage } from '../support/node-app-image.js';
import { startPebble, type Pebble } from '../support/pebble.js';
import { startPodman, type TestPodman } from '../support/podman.js';
import { ServiceProcess, removeTestDir, startTestDaemon, waitFor } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-remote-e2e-'));
const stateDir = path.join(dir, 'state');
const sockets = remoteSockets(dir);
const PASSWORD = 'Remote-E2E-Secret-42';
const SECRET = 'remote-e2e-device-secret-0123456789';
const PORTAL = 'portal.remote.test';
const APP_DOMAIN = 'apps.remote.test';

let podman: TestPodman;
let pebble: Pebble;
let relay: Relay;
let daemon: ServiceProcess;
let proxy: ServiceProcess;
let tunnel: ServiceProcess;
let session: ApiSession;
let issuerRoot = '';
/** The relay's hub certificate and key; the real Nexus server, where it runs, serves the same pair. */
let hubCert = '';
let hubKey = '';
let apps = { web: '', ws: '', vault: '' };
const names = () => ({ web: `web-${apps.web}.${APP_DOMAIN}`, ws: `ws-${apps.ws}.${APP_DOMAIN}`, vault: `tls-${apps.vault}.${APP_DOMAIN}` });
const relayTlsPort = () => relay.relayPorts[0]!;
const relayHttpPort = () => relay.relayPorts[1]!;
const call = (method: string, route: string, body?: unknown) => session.call(method, route, body);

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  peerCertificate: tls.PeerCertificate;
}

/** An HTTPS request to the relay's TLS port for a public name, as an end user from `from` sends it. */
function remoteHttps(hostname: string, urlPath: string, options: { method?: string; body?: unknown; from?: string; ca?: string } = {}): Promise<Answer> {
  const payload = options.body === undefined ? '' : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: relayTlsPort(),
        servername: hostname,
        method: options.method ?? 'GET',
        path: urlPath,
        ca: options.ca ?? issuerRoot,
        localAddress: options.from,
        agent: false,
        headers: { host: hostname, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        const peerCertificate = (res.socket as tls.TLSSocket).getPeerCertificate();
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, peerCertificate }));
      },
    );
    req.on('error', reject);
    req.setTimeout(15_000, () => req.destroy(new Error(`no answer from ${hostname}${urlPath} within 15 s`)));
    req.end(payload);
  });
}

/** A plain HTTP request to the relay's port-80 listener. */
function remoteHttp(hostname: string, urlPath: string): Promise<{ status: number; location?: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(relayHttpPort(), '127.0.0.1', () => socket.write(`GET ${urlPath} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`));
    let text = '';
    socket.on('data', (chunk) => (text += chunk));
    socket.on('end', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]), location: /\r\nlocation: ([^\r]+)/i.exec(text)?.[1] }));
    socket.on('error', reject);
  });
}

/** Whether a TLS connection for this name through the relay completes a handshake (with any certificate). */
function tlsHandshake(hostname: string): Promise<'secure' | 'closed'> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port: relayTlsPort(), servername: hostname, rejectUnauthorized: false });
    socket.once('secureConnect', () => (socket.destroy(), resolve('secure')));
    socket.once('error', () => resolve('closed'));
    socket.once('close', () => resolve('closed'));
    socket.setTimeout(10_000, () => (socket.destroy(), resolve('closed')));
  });
}

async function installApp(spec: string): Promise<void> {
  const install = await call('POST', '/api/v1/apps', { spec });
  assert.is(install.status, 202, JSON.stringify(install.body));
  const name = /^name: (\S+)/.exec(spec)![1]!;
  await waitFor(async () => ((await call('GET', `/api/v1/apps/${name}`)).body.state === 'running' ? true : undefined), 90_000, `${name} running`);
}

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  podman = await startPodman();
  apps = { web: `${podman.prefix}web`, ws: `${podman.prefix}ws`, vault: `${podman.prefix}vault` };
  const [httpdImage, nodeImage] = await Promise.all([podman.buildHttpdImage('remote', '<h1>remote web app</h1>'), buildNodeAppImage(podman.prefix, 'remote')]);

  // The relay's hub certificate is self-signed, as a private relay's would be; the device trusts it by NODE_EXTRA_CA_CERTS.
  ({ relay, hubCert, hubKey } = await startTestRelay(SECRET));
  // Pebble validates HTTP-01 on the relay's plain-HTTP port: the challenge travels relay → tunnel → proxy → daemon.
  pebble = await startPebble({ httpPort: relayHttpPort() });
  issuerRoot = await pebble.issuerRoot();
  const trust = path.join(dir, 'trust.pem');
  writeFileSync(trust, hubCert + pebble.apiCa);

  let api: string;
  ({ proc: daemon, api } = await startTestDaemon(stateDir, {
    PICCOLO_PODMAN_SOCKET: podman.socketPath,
    PICCOLO_DAEMON_INTERNAL_SOCKET: sockets.internal,
    PICCOLO_DAEMON_PORTAL_SOCKET: sockets.portal,
    PICCOLO_ACME_DIRECTORY_URL: pebble.directoryUrl,
    NODE_EXTRA_CA_CERTS: trust,
  }));
  session = new ApiSession(api);
  ({ proxy, tunnel } = await startProxyAndTunnel(dir, sockets, trust));

  const claimCode = readFileSync(path.join(stateDir, 'claim-code'), 'utf8').trim();
  const claim = await call('POST', '/api/v1/setup/claim', { claimCode });
  assert.is((await call('POST', '/api/v1/setup', { setupToken: claim.body.setupToken, password: PASSWORD, recoveryKeySaved: true })).status, 201);
  await waitFor(async () => ((await call('GET', '/api/v1/apps')).status === 200 ? true : undefined), 30_000, 'apps available');
  // 1. The apps: plain HTTP (the device terminates TLS), a WebSocket echo, and one that terminates its own TLS.
  await installApp(`name: ${apps.web}\nimage: ${httpdImage}\nlisteners:\n  - name: web\n    guest_port: 80\n    protocol: http\n    public: true\n`);
  await installApp(`name: ${apps.ws}\nimage: ${nodeImage}\nlisteners:\n  - name: ws\n    guest_port: 80\n    protocol: websocket\n    public: true\n`);
  await installApp(`name: ${apps.vault}\nimage: ${nodeImage}\nlisteners:\n  - name: tls\n    guest_port: 443\n    flow: tls\n    protocol: raw\n`);
  for (const name of [PORTAL, ...Object.values(names())]) await pebble.resolve(name, '127.0.0.1');
});

test.after(async () => {
  await tunnel?.kill('SIGTERM');
  await proxy?.kill('SIGTERM');
  await daemon?.kill('SIGTERM');
  await relay?.stop();
  await pebble?.stop();
  await podman?.stop();
  removeTestDir(dir);
});

test('2-3. remote access is configured through the API; the tunnel connects and registers every name', async () => {
  const registered = new Promise<string[]>((resolve) => relay.events.on('registered', (event: { hostnames: string[] }) => resolve(event.hostnames)));
  const configured = await call('POST', '/api/v1/remote/configure', { relayUrl: `wss://localhost:${relay.hubPort}/connect`, deviceSecret: SECRET, portalHostname: PORTAL, appDomain: APP_DOMAIN });
  assert.is(configured.status, 200, JSON.stringify(configured.body));
  assert.not.ok(JSON.stringify(configured.body).includes(SECRET), 'the secret is never returned');
  const declared = await registered;
  assert.equal([...declared].sort(), [PORTAL, ...Object.values(names())].sort());
  const status = await waitFor(async () => {
    const { body } = await call('GET', '/api/v1/remote/status');
    return body.tunnel?.status?.state === 'connected' ? body : undefined;
  }, 20_000, 'the daemon shows the tunnel connected');
  assert.is(status.tunnel.status.relay, `wss://localhost:${relay.hubPort}/connect`);
});

test('4. certificates are issued by HTTP-01 through the relay and the tunnel, for the portal and the device-terminated apps only', async () => {
  const certificates = await waitFor(async () => {
    const { body } = await call('GET', '/api/v1/remote/certificates');
    return body.certificates.length === 3 && body.certificates.every((c: { state: string }) => c.state === 'valid') ? body.certificates : undefined;
  }, 90_000, 'three valid certificates');
  assert.equal(certificates.map((c: { name: string }) => c.name).sort(), [PORTAL, names().web, names().ws].sort());
  assert.ok(certificates.every((c: { issuer: string }) => /pebble/i.test(c.issuer)), JSON.stringify(certificates));
});

test('5. HTTPS through the relay reaches the portal and the app, with the Pebble-issued certificate verified against its CA', async () => {
  const portal = await waitFor(async () => {
    const answer = await remoteHttps(PORTAL, '/api/v1/version').catch(() => undefined);
    return answer?.status === 200 ? answer : undefined;
  }, 20_000, 'portal over HTTPS through the relay');
  assert.is(JSON.parse(portal.body).name, 'piccolod');
  const app = await remoteHttps(names().web, '/');
  assert.is(app.status, 200);
  assert.match(app.body, 'remote web app');
  const served = new X509Certificate(app.peerCertificate.raw);
  assert.ok(served.checkHost(names().web), `the certificate names ${names().web}`);
  assert.not.ok(/piccolo/i.test(served.issuer), 'issued by the ACME CA, not the local device CA');
  // Plain HTTP on the relay's port 80 is only for ACME: everything else is sent to HTTPS.
  const plain = await remoteHttp(PORTAL, '/some/page?x=1');
  assert.is(plain.status, 308);
  assert.is(plain.location, `https://${PORTAL}/some/page?x=1`);
});

test('6. a WebSocket app works through the relay', async () => {
  // To the relay's address, with the public name as SNI and Host (ws passes TLS options through).
  const options: ClientOptions & { servername: string } = { servername: names().ws, headers: { host: names().ws }, ca: issuerRoot };
  const ws = new WebSocket(`wss://127.0.0.1:${relayTlsPort()}/ws`, options);
  const echoed = await new Promise<string>((resolve, reject) => {
    ws.once('open', () => ws.send('over the relay'));
    ws.once('message', (data) => resolve(String(data)));
    ws.once('error', reject);
  });
  ws.close();
  assert.is(echoed, 'echo:over the relay');
});

test('7. a flow: tls app terminates its own TLS end to end', async () => {
  const answer = await remoteHttps(names().vault, '/', { ca: undefined }).catch((err: Error) => err);
  assert.instance(answer, Error, 'the app’s self-signed certificate is not trusted by the ACME root: the device did not terminate');
  const insecure = await new Promise<{ subject: string; body: string }>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: relayTlsPort(), servername: names().vault, rejectUnauthorized: false }, () => {
      const subject = socket.getPeerCertificate().subject.CN;
      socket.write(`GET / HTTP/1.1\r\nHost: ${names().vault}\r\nConnection: close\r\n\r\n`);
      let body = '';
      socket.on('data', (chunk) => (body += chunk));
      socket.on('end', () => resolve({ subject, body }));
    });
    socket.on('error', reject);
  });
  assert.match(insecure.subject, 'self-signed');
  assert.match(insecure.body, 'over its own tls');
});

test('8. two remote clients with different client_ips are throttled separately at the login', async () => {
  const login = (from: string) => remoteHttps(PORTAL, '/api/v1/auth/login', { method: 'POST', body: { password: 'Wrong-Password-42x' }, from });
  const first = [];
  for (let i = 0; i < 4; i++) first.push((await login('127.0.0.2')).status);
  assert.equal(first, [401, 401, 401, 401]);
  assert.is((await login('127.0.0.2')).status, 429, 'the guesser at 127.0.0.2 is throttled');
  assert.is((await login('127.0.0.3')).status, 401, 'the other remote client is not');
  const audit = readFileSync(path.join(stateDir, 'audit.log'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  const clients = new Set(audit.filter((entry) => entry.event === 'auth.login').map((entry) => entry.client));
  assert.ok(clients.has('127.0.0.2') && clients.has('127.0.0.3'), `the audit log names each remote client: ${[...clients].join(', ')}`);
});

test('9. the follower event stops the app, and its remote name flips to tunnel mode (refused here)', async () => {
  const flipped = await call('POST', '/api/v1/test/role', { resource: `app:${apps.web}`, role: 'follower', leader: 'node-b.local' });
  assert.is(flipped.body.mode, 'tunnel');
  await waitFor(async () => ((await call('GET', `/api/v1/apps/${apps.web}`)).body.state === 'stopped' ? true : undefined), 30_000, 'app stopped');
  await waitFor(async () => {
    const { body } = await call('GET', '/api/v1/remote/status');
    return body.hostnames.find((entry: { hostname: string }) => entry.hostname === names().web)?.mode === 'tunnel' ? true : undefined;
  }, 10_000, 'remote name in tunnel mode');
  await waitFor(async () => ((await tlsHandshake(names().web)) === 'closed' ? true : undefined), 10_000, 'the relay stream for the follower app is refused');
  assert.ok(
    tunnel.logs.some((line) => line.msg === 'stream refused' && line.hostname === names().web && String(line.reason).includes('leader')),
    'the tunnel refused the stream itself and logged that it would go to the leader',
  );
  assert.is((await remoteHttps(PORTAL, '/api/v1/version')).status, 200, 'the portal is still served');
  await call('POST', '/api/v1/test/role', { resource: `app:${apps.web}`, role: 'leader' });
  await waitFor(async () => ((await remoteHttps(names().web, '/').catch(() => undefined))?.status === 200 ? true : undefined), 60_000, 'app back through the relay as leader');
});

/** The real Go Nexus server, where setup could install it (never here: the Go module proxy refuses it). */
const nexusServer = (() => {
  try {
    return execFileSync('sh', ['-c', 'PATH="$PATH:/usr/local/go/bin:$HOME/go/bin" command -v nexus-proxy-server'], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
})();
if (!nexusServer) console.log('remote-e2e: skipping the real Nexus server: nexus-proxy-server is not installed (scripts/setup.sh says why); remote access is tested against our relay only');

(nexusServer ? test : test.skip)('the real Nexus server: the tunnel registers with it and the portal answers through it', async () => {
  const config = path.join(dir, 'nexus.yaml');
  writeFileSync(path.join(dir, 'hub.crt'), hubCert);
  writeFileSync(path.join(dir, 'hub.key'), hubKey);
  const [hub, tlsPort] = [await freePort(), await freePort()];
  writeFileSync(config, `backendListenAddress: "127.0.0.1:${hub}"\nhubTlsCertFile: "${path.join(dir, 'hub.crt')}"\nhubTlsKeyFile: "${path.join(dir, 'hub.key')}"\nrelayPorts: [${tlsPort}]\nidleTimeoutSeconds: 60\nbackendsJWTSecret: "${SECRET}"\n`);
  const { spawn } = await import('node:child_process');
  const server = spawn(nexusServer, ['-config', config], { stdio: 'ignore' });
  try {
    await waitFor(() => new Promise<boolean | undefined>((resolve) => net.connect(hub, '127.0.0.1').once('connect', function (this: net.Socket) { this.destroy(); resolve(true); }).once('error', () => resolve(undefined))), 15_000, 'nexus-proxy-server listening');
    assert.is((await call('POST', '/api/v1/remote/configure', { relayUrl: `wss://localhost:${hub}/connect`, deviceSecret: SECRET, portalHostname: PORTAL, appDomain: APP_DOMAIN })).status, 200);
    const answer = await waitFor(() => new Promise<string | undefined>((resolve) => {
      const req = https.request({ host: '127.0.0.1', port: tlsPort, servername: PORTAL, path: '/api/v1/version', ca: issuerRoot, agent: false, headers: { host: PORTAL } }, (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve(res.statusCode === 200 ? body : undefined));
      });
      req.on('error', () => resolve(undefined));
      req.end();
    }), 30_000, 'portal through the real Nexus server');
    assert.is(JSON.parse(answer).name, 'piccolod');
  } finally {
    server.kill('SIGTERM');
  }
});

test.run();
