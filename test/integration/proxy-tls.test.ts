// TLS through the proxy: termination with the local CA's device certificate, certificates from
// the store by SNI (exact, then wildcard) with hot reload, TLS 1.2 minimum and ALPN http/1.1,
// and passthrough by SNI to an app that terminates TLS itself.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import tls from 'node:tls';
import { bundleServices } from '../../image/bundle.js';
import { LocalCa } from '../../services/proxy/local-ca.js';
import { waitFor } from '../support/processes.js';
import { echoServer, freePort, listenOn, route, startProxy, type ProxyHarness } from '../support/proxy-harness.js';

let harness: ProxyHarness;
let app: { server: http.Server; port: number };
let appPort = 0;
let caCert = '';

test.before(async () => {
  await bundleServices();
  app = await echoServer('app');
  harness = await startProxy();
  appPort = await freePort();
  await harness.setRoutes({
    portal: { hostBindPort: app.port, hostnames: ['piccolo.local'] },
    routes: [route({ app: 'blog', publicPort: appPort, hostBindPort: app.port, hostnames: ['web-blog.piccolo.local'] })],
  });
  caCert = readFileSync(path.join(harness.dir, 'certs', 'local-ca', 'ca.cert.pem'), 'utf8');
});

test.after(async () => {
  await harness?.stop();
  app?.server.close();
});

function handshake(port: number, options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['http/1.1'], ...options }, () => resolve(socket));
    socket.once('error', reject);
  });
}

async function httpsGet(port: number, servername: string, ca: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', headers: { host: servername }, createConnection: () => tls.connect({ host: '127.0.0.1', port, servername, ca }) }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(body) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the device certificate from the local CA covers the portal names and app subdomains; the same port also speaks plain HTTP', async () => {
  const viaName = await httpsGet(harness.portalPort, 'web-blog.piccolo.local', caCert);
  assert.is(viaName.status, 200);
  assert.is(viaName.body.headers['x-forwarded-proto'], 'https');
  const viaAppPort = await httpsGet(appPort, 'piccolo.local', caCert);
  assert.is(viaAppPort.body.headers.forwarded, `for=127.0.0.1;proto=https;host="piccolo.local"`);
  const socket = await handshake(appPort, { servername: 'piccolo.local', ca: caCert });
  assert.is(socket.alpnProtocol, 'http/1.1');
  assert.ok(['TLSv1.2', 'TLSv1.3'].includes(socket.getProtocol()!));
  socket.destroy();
  const plain = await fetch(`http://127.0.0.1:${appPort}/`);
  assert.is(plain.status, 200);
});

test('TLS 1.1 and older are refused', async () => {
  const err = await handshake(appPort, { servername: 'piccolo.local', ca: caCert, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }).then(
    (s) => (s.destroy(), 'connected'),
    (e) => e.code ?? e.message,
  );
  assert.is.not(err, 'connected');
});

/** One handshake by the openssl client; the negotiated suite, or undefined with what it printed. */
async function opensslHandshake(port: number, args: string[], servername = 'piccolo.local'): Promise<{ cipher: string | undefined; output: string }> {
  const { execFile } = await import('node:child_process');
  const output = await new Promise<string>((resolve) => {
    const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', servername, ...args], { timeout: 10_000 }, (_err, stdout, stderr) => resolve(stdout + stderr));
    child.stdin!.end();
  });
  const cipher = /Cipher is ([A-Z0-9_-]+)/.exec(output)?.[1];
  return { cipher: cipher === '0000' || cipher === 'NONE' ? undefined : cipher, output };
}

/** An RSA certificate in the store, made by openssl: the device certificate is ECDSA, and a suite's family follows the key. */
async function storeRsaCertificate(name: string): Promise<void> {
  const { execFileSync } = await import('node:child_process');
  const keyFile = path.join(harness.dir, 'rsa.key');
  const cert = execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-days', '1', '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  writeFileSync(path.join(harness.dir, 'certs', 'rsa.pem'), readFileSync(keyFile, 'utf8') + cert);
  await waitFor(() => harness.proxy.logs.find((l) => l.msg === 'certificates loaded' && (l.names as string[]).includes(name)), 5000, 'reload');
}

test('openssl s_client: TLS 1.2 offers AEAD suites only (a CBC suite is refused, GCM and ChaCha20 work) for ECDSA and RSA certificates, TLS 1.3 works, TLS 1.1 is refused', async () => {
  await storeRsaCertificate('rsa.piccolo.test');
  const families = [
    { servername: 'piccolo.local', auth: 'ECDSA', refusedToo: [] },
    { servername: 'rsa.piccolo.test', auth: 'RSA', refusedToo: ['AES128-GCM-SHA256', 'DHE-RSA-AES128-GCM-SHA256'] },
  ];
  for (const { servername, auth, refusedToo } of families) {
    for (const suite of [`ECDHE-${auth}-AES128-GCM-SHA256`, `ECDHE-${auth}-AES256-GCM-SHA384`, `ECDHE-${auth}-CHACHA20-POLY1305`]) {
      const { cipher, output } = await opensslHandshake(appPort, ['-tls1_2', '-cipher', suite], servername);
      assert.is(cipher, suite, output);
    }
    for (const suite of [`ECDHE-${auth}-AES128-SHA`, `ECDHE-${auth}-AES128-SHA256`, `ECDHE-${auth}-AES256-SHA384`, ...refusedToo]) {
      const { cipher, output } = await opensslHandshake(appPort, ['-tls1_2', '-cipher', suite], servername);
      assert.is(cipher, undefined, `${suite}: ${output}`);
      assert.match(output, /handshake failure/, suite);
    }
  }
  const tls13 = await opensslHandshake(appPort, ['-tls1_3', '-ciphersuites', 'TLS_CHACHA20_POLY1305_SHA256']);
  assert.is(tls13.cipher, 'TLS_CHACHA20_POLY1305_SHA256', tls13.output);
  // SECLEVEL=0 lets this openssl offer TLS 1.1 at all: the refusal is the proxy's.
  const old = await opensslHandshake(appPort, ['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0']);
  assert.is(old.cipher, undefined, old.output);
  assert.match(old.output, /alert protocol version/);
});

test('the device certificate is stored when first issued: a restart serves the same one, with no new CA or key', async () => {
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const certDir = mkdtempSync(path.join(tmpdir(), 'piccolo-proxy-certs-'));
  const served: string[] = [];
  for (let start = 0; start < 2; start++) {
    // No portal names in the table: the certificate issued at start is the only one, and must be kept.
    const proxy = await startProxy({ PICCOLO_PROXY_CERT_DIR: certDir });
    try {
      const socket = await handshake(proxy.portalPort, { rejectUnauthorized: false });
      served.push(socket.getPeerX509Certificate()!.fingerprint256);
      socket.destroy();
      if (start === 1) assert.is(proxy.proxy.logs.find((l) => l.msg === 'local CA created'), undefined);
    } finally {
      await proxy.stop();
    }
  }
  assert.is(served[1], served[0]);
  assert.ok(readFileSync(path.join(certDir, 'local-ca', 'device.pem'), 'utf8').includes('PRIVATE KEY'));
});

test('certificates in the store win by exact name, then wildcard; a new file is picked up without a restart', async () => {
  const other = await LocalCa.create('test');
  const wildcard = await other.issue(['*.example.test']);
  writeFileSync(path.join(harness.dir, 'certs', 'wildcard.pem'), wildcard.key + wildcard.cert);
  await waitFor(() => harness.proxy.logs.find((l) => l.msg === 'certificates loaded' && (l.names as string[]).includes('*.example.test')), 5000, 'reload');
  const longLived = await handshake(appPort, { servername: 'a.example.test', ca: other.root.cert });
  assert.is(longLived.getPeerX509Certificate()!.subjectAltName, 'DNS:*.example.test');

  const exact = await other.issue(['a.example.test']);
  writeFileSync(path.join(harness.dir, 'certs', 'exact.pem'), exact.key + exact.cert);
  await waitFor(() => harness.proxy.logs.find((l) => l.msg === 'certificates loaded' && (l.names as string[]).includes('a.example.test')), 5000, 'reload');
  const fresh = await handshake(appPort, { servername: 'a.example.test', ca: other.root.cert });
  assert.is(fresh.getPeerX509Certificate()!.subjectAltName, 'DNS:a.example.test');
  const sibling = await handshake(appPort, { servername: 'b.example.test', ca: other.root.cert });
  assert.is(sibling.getPeerX509Certificate()!.subjectAltName, 'DNS:*.example.test');
  // The connection made before the reload still works.
  longLived.write('GET / HTTP/1.1\r\nHost: a.example.test\r\nConnection: close\r\n\r\n');
  const reply = await new Promise<string>((resolve) => {
    let data = '';
    longLived.on('data', (d) => (data += d)).on('end', () => resolve(data));
  });
  assert.match(reply, /^HTTP\/1.1 200/);
  for (const s of [fresh, sibling]) s.destroy();
});

test('flow tls: passthrough to an app that terminates TLS itself, on its own port and by SNI on the portal port', async () => {
  const appCa = await LocalCa.create('app');
  const pair = await appCa.issue(['vault.piccolo.local']);
  const tlsApp = tls.createServer({ ...pair }, (socket) => socket.end(`app saw SNI ${(socket as any).servername}`));
  const tlsAppPort = await listenOn(tlsApp);
  const publicPort = await freePort();
  await harness.setRoutes({ routes: [...harness.routes.current().routes, route({ app: 'vault', flow: 'tls', publicPort, hostBindPort: tlsAppPort, hostnames: ['vault.piccolo.local'] })] });
  for (const port of [publicPort, harness.portalPort]) {
    const socket = await handshake(port, { servername: 'vault.piccolo.local', ca: appCa.root.cert, ALPNProtocols: undefined });
    const text = await new Promise<string>((resolve) => {
      let data = '';
      socket.on('data', (d) => (data += d)).on('end', () => resolve(data));
    });
    assert.is(text, 'app saw SNI vault.piccolo.local', `port ${port}`);
  }
  tlsApp.close();
});

test('garbage that starts like TLS on the portal port is dropped without harm', async () => {
  const net = await import('node:net');
  const closed = await new Promise<boolean>((resolve) => {
    const socket = net.connect(harness.portalPort, '127.0.0.1', () => socket.write(Buffer.from([22, 3, 1, 0, 5, 9, 9, 9, 9, 9])));
    socket.on('close', () => resolve(true));
    socket.on('error', () => {});
  });
  assert.ok(closed);
  assert.is((await fetch(`http://127.0.0.1:${harness.portalPort}/`, { headers: { host: 'piccolo.local' } })).status, 200);
});

test.run();
