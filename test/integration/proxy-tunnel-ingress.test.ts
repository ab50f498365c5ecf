// The proxy's tunnel ingress, through the real proxy bundle: two unix sockets on which every
// connection starts with a PROXY v2 header (built here with proxy-protocol-js, as the tunnel
// does). The header's source is the client for middleware and X-Forwarded-For; TLS streams are
// terminated with the route table's certificates or passed through by SNI; plain HTTP streams get
// only ACME answers and redirects.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { X509Certificate } from 'node:crypto';
import { statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { Command, IPv4Address, IPv4ProxyAddress, TransportProtocol, V2ProxyProtocol } from 'proxy-protocol-js';
import { bundleServices } from '../../image/bundle.js';
import { LocalCa } from '../../services/proxy/local-ca.js';
import { echoServer, freePort, listenOn, rawExchange, route, startProxy, type ProxyHarness } from '../support/proxy-harness.js';

const HEADERS_TIMEOUT_MS = 1500;
// An existing group other than the proxy's own, so that the hand-over of the sockets shows.
const TUNNEL_GROUP = { name: 'nogroup', gid: 65534 };

let harness: ProxyHarness;
let app: { server: http.Server; port: number };
let tlsApp: { server: tls.Server; port: number; sawServerName: string[] };
const remoteCa = await LocalCa.create('remote-test');
const wildcardPair = await remoteCa.issue(['remote.example.test', '*.remote.example.test']);
const exactPair = await remoteCa.issue(['web-blog.remote.example.test']);
const appCa = await LocalCa.create('app-test');
const appPair = await appCa.issue(['secure-vault.remote.example.test']);
let blogPort = 0;

test.before(async () => {
  await bundleServices();
  app = await echoServer('app');
  tlsApp = await startTlsApp();
  harness = await startProxy({ PICCOLO_PROXY_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS), PICCOLO_PROXY_TUNNEL_GROUP: TUNNEL_GROUP.name });
  blogPort = await freePort();
  await harness.setRoutes({
    portal: { hostBindPort: app.port, hostnames: ['piccolo.local', 'remote.example.test'] },
    routes: [
      route({ app: 'blog', publicPort: blogPort, hostBindPort: app.port, hostnames: ['web-blog.remote.example.test'], middleware: [{ name: 'ip_allow', params: { cidrs: ['203.0.113.0/24'] } }] }),
      route({ app: 'rate', publicPort: await freePort(), hostBindPort: app.port, hostnames: ['web-rate.remote.example.test'], middleware: [{ name: 'rate_limit', params: { rate: 0.01, burst: 2 } }] }),
      route({ app: 'vault', listener: 'secure', flow: 'tls', publicPort: await freePort(), hostBindPort: tlsApp.port, hostnames: ['secure-vault.remote.example.test'] }),
    ],
    certificates: [wildcardPair, exactPair],
  });
});

test.after(async () => {
  await harness?.stop();
  app?.server.close();
  tlsApp?.server.close();
});

/** A TLS app that terminates its own TLS and says which name it was asked for. */
async function startTlsApp(): Promise<{ server: tls.Server; port: number; sawServerName: string[] }> {
  const sawServerName: string[] = [];
  const server = tls.createServer({ ...appPair }, (socket) => {
    sawServerName.push((socket as tls.TLSSocket & { servername?: string }).servername ?? '');
    socket.end('vault speaking\n');
  });
  return { server, port: await listenOn(server), sawServerName };
}

function proxyHeader(source: string, sourcePort = 40_000): Buffer {
  const address = new IPv4ProxyAddress(IPv4Address.createFrom(source.split('.').map(Number)), sourcePort, IPv4Address.createFrom([192, 0, 2, 1]), 443);
  return Buffer.from(new V2ProxyProtocol(Command.PROXY, TransportProtocol.STREAM, address).build());
}

/** A connection to an ingress socket that has sent its PROXY header. */
function dialIngress(socketPath: string, source: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath, () => socket.write(proxyHeader(source), () => resolve(socket)));
    socket.once('error', reject);
  });
}

async function tlsOverIngress(source: string, servername: string, ca: string): Promise<tls.TLSSocket> {
  const raw = await dialIngress(harness.tunnelTlsSocket, source);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ socket: raw, servername, ca, ALPNProtocols: ['http/1.1'] }, () => resolve(socket));
    socket.once('error', reject);
  });
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP/1.1 request on an open connection (kept alive, so the next can follow on it). */
function request(socket: net.Socket, host: string, urlPath = '/'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ path: urlPath, headers: { host }, createConnection: () => socket }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.shouldKeepAlive = true;
    req.on('error', reject);
    req.end();
  });
}

async function getOverTunnel(source: string, host: string, urlPath = '/'): Promise<Answer> {
  const socket = await tlsOverIngress(source, host, remoteCa.root.cert);
  try {
    return await request(socket, host, urlPath);
  } finally {
    socket.destroy();
  }
}

function lanGet(port: number, host: string): Promise<Answer> {
  return request(net.connect(port, '127.0.0.1'), host);
}

/** Everything a socket receives until it is closed; 'timeout' if it stays open past ms. */
function untilClosed(socket: net.Socket, ms: number): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('timeout');
    }, ms);
    socket.on('data', (d) => (data += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
  });
}

test('the ingress sockets are 0660 and belong to the tunnel group, their folder too', () => {
  for (const socketPath of [harness.tunnelTlsSocket, harness.tunnelHttpSocket]) {
    const info = statSync(socketPath);
    assert.ok(info.isSocket());
    assert.is(info.mode & 0o777, 0o660, socketPath);
    assert.is(info.gid, TUNNEL_GROUP.gid, socketPath);
  }
  assert.is(statSync(path.dirname(harness.tunnelTlsSocket)).gid, TUNNEL_GROUP.gid);
});

test('a connection without a PROXY header is closed: a bare TLS hello, bare HTTP, or silence past the headers timeout', async () => {
  const bareTls = tls.connect({ path: harness.tunnelTlsSocket, servername: 'remote.example.test', ca: remoteCa.root.cert });
  const outcome = await new Promise<string>((resolve) => {
    bareTls.once('secureConnect', () => resolve('handshake completed'));
    bareTls.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    bareTls.once('close', () => resolve('closed'));
  });
  bareTls.destroy();
  assert.is.not(outcome, 'handshake completed');
  const bareHttp = net.connect(harness.tunnelHttpSocket, () => bareHttp.write('GET / HTTP/1.1\r\nHost: remote.example.test\r\n\r\n'));
  assert.is(await untilClosed(bareHttp, 5000), '', 'no answer at all, not even a redirect');
  const silentAt = Date.now();
  const silent = net.connect(harness.tunnelTlsSocket);
  assert.is(await untilClosed(silent, HEADERS_TIMEOUT_MS + 3000), '');
  assert.ok(Date.now() - silentAt >= HEADERS_TIMEOUT_MS - 100, 'closed by the headers timeout');
});

test("the PROXY header's source is the client: ip_allow admits 203.0.113.7 from the tunnel and refuses the LAN; the app sees it in X-Forwarded-For", async () => {
  const admitted = await getOverTunnel('203.0.113.7', 'web-blog.remote.example.test');
  assert.is(admitted.status, 200);
  const seen = JSON.parse(admitted.body);
  assert.is(seen.name, 'app');
  assert.is(seen.headers['x-forwarded-for'], '203.0.113.7');
  assert.is(seen.headers['x-forwarded-proto'], 'https');
  assert.is(seen.headers.forwarded, 'for=203.0.113.7;proto=https;host="web-blog.remote.example.test"');
  assert.is((await getOverTunnel('198.51.100.9', 'web-blog.remote.example.test')).status, 403, 'another tunnel client outside the list');
  assert.is((await lanGet(harness.portalPort, 'web-blog.remote.example.test')).status, 403, 'a LAN client by name on the portal port');
  assert.is(await rawExchange(blogPort, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'), '', "a LAN client on the app's own port is not even accepted");
});

test('rate_limit keeps one bucket per PROXY source', async () => {
  const host = 'web-rate.remote.example.test';
  const first = [await getOverTunnel('203.0.113.20', host), await getOverTunnel('203.0.113.20', host), await getOverTunnel('203.0.113.20', host)];
  assert.equal(first.map((a) => a.status), [200, 200, 429]);
  assert.ok(Number(first[2]!.headers['retry-after']) > 0);
  assert.is((await getOverTunnel('203.0.113.21', host)).status, 200, 'a second remote client has its own bucket');
});

test("TLS is terminated with the route table's certificates (exact name, then wildcard), and replacing them keeps established connections", async () => {
  const exact = await tlsOverIngress('203.0.113.7', 'web-blog.remote.example.test', remoteCa.root.cert);
  assert.is(exact.getPeerX509Certificate()!.fingerprint256, new X509Certificate(exactPair.cert).fingerprint256);
  const wildcard = await tlsOverIngress('203.0.113.7', 'remote.example.test', remoteCa.root.cert);
  assert.is(wildcard.getPeerX509Certificate()!.fingerprint256, new X509Certificate(wildcardPair.cert).fingerprint256);
  assert.is((await request(wildcard, 'remote.example.test')).status, 200, 'the portal by name');
  wildcard.destroy();

  const renewed = await remoteCa.issue(['web-blog.remote.example.test']);
  await harness.setRoutes({ certificates: [wildcardPair, renewed] });
  const again = await request(exact, 'web-blog.remote.example.test', '/still-here');
  assert.is(again.status, 200, 'the connection made before the change still serves');
  assert.is(JSON.parse(again.body).url, '/still-here');
  exact.destroy();
  const fresh = await tlsOverIngress('203.0.113.7', 'web-blog.remote.example.test', remoteCa.root.cert);
  assert.is(fresh.getPeerX509Certificate()!.fingerprint256, new X509Certificate(renewed.cert).fingerprint256, 'new handshakes get the new certificate');
  fresh.destroy();
});

test('SNI of a flow: tls route is spliced to the app, which terminates TLS itself with its own certificate', async () => {
  const socket = await tlsOverIngress('203.0.113.7', 'secure-vault.remote.example.test', appCa.root.cert);
  assert.is(socket.getPeerX509Certificate()!.fingerprint256, new X509Certificate(appPair.cert).fingerprint256);
  assert.is(await untilClosed(socket, 5000), 'vault speaking\n');
  assert.equal(tlsApp.sawServerName, ['secure-vault.remote.example.test']);
});

test('plain HTTP on the TLS ingress is refused', async () => {
  const socket = await dialIngress(harness.tunnelTlsSocket, '203.0.113.7');
  socket.write('GET / HTTP/1.1\r\nHost: remote.example.test\r\n\r\n');
  assert.is(await untilClosed(socket, 5000), '');
});

test('the HTTP ingress answers ACME challenges through the daemon and redirects everything else to https with 308', async () => {
  harness.challenges.set('tok-remote-1', 'tok-remote-1.key-authorization');
  const challenge = await request(await dialIngress(harness.tunnelHttpSocket, '203.0.113.7'), 'remote.example.test', '/.well-known/acme-challenge/tok-remote-1');
  assert.is(challenge.status, 200);
  assert.is(challenge.body, 'tok-remote-1.key-authorization');
  const unknownToken = await request(await dialIngress(harness.tunnelHttpSocket, '203.0.113.7'), 'remote.example.test', '/.well-known/acme-challenge/nope');
  assert.is(unknownToken.status, 404);
  const portal = await request(await dialIngress(harness.tunnelHttpSocket, '203.0.113.7'), 'remote.example.test:80', '/api/v1/setup/status?x=1');
  assert.is(portal.status, 308, 'the portal is never served in plaintext');
  assert.is(portal.headers.location, 'https://remote.example.test/api/v1/setup/status?x=1');
  const appRedirect = await request(await dialIngress(harness.tunnelHttpSocket, '203.0.113.7'), 'web-blog.remote.example.test', '/post/1');
  assert.is(appRedirect.status, 308);
  assert.is(appRedirect.headers.location, 'https://web-blog.remote.example.test/post/1');
  assert.is((await request(await dialIngress(harness.tunnelHttpSocket, '203.0.113.7'), 'elsewhere.example', '/')).status, 404, 'no redirect to a name this device does not answer to');
});

test.run();
