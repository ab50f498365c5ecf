// The remote preflight against real local servers: a closed port, a name that does not resolve, a
// self-signed TLS relay (not trusted by this process), a plain TCP port that speaks no TLS. The
// trusted, all-ok case needs NODE_EXTRA_CA_CERTS at process start: test/integration/remote-api.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import https from 'node:https';
import net from 'node:net';
import { WebSocketServer } from 'ws';
import { preflight, systemLookup, type Lookup } from '../../services/daemon/remote/preflight.js';
import { selfSignedCert } from '../support/certs.js';
import { listen } from '../support/tunnel-harness.js';

const servers: { close(): void }[] = [];
let selfSignedPort = 0;
let plainPort = 0;
let closedPort = 0;

/** relay.test resolves to loopback; every other name does not. */
const lookup: Lookup = async (host) => {
  if (host === 'relay.test' || host === 'portal.example.test') return ['127.0.0.1'];
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
};

const byId = (result: Awaited<ReturnType<typeof preflight>>) => Object.fromEntries(result.checks.map((c) => [c.id, c]));

test.before(async () => {
  const server = https.createServer(await selfSignedCert(['relay.test']));
  const wss = new WebSocketServer({ server, path: '/connect' });
  servers.push(wss, server);
  selfSignedPort = await listen(server);
  const plain = net.createServer((socket) => socket.on('error', () => {}).end('SSH-2.0-not-tls\r\n'));
  servers.push(plain);
  plainPort = await listen(plain);
  const closing = net.createServer();
  closedPort = await listen(closing);
  closing.close();
});

test.after(() => {
  for (const server of servers) server.close();
});

test('always six checks in order; a bad URL skips the relay steps and says why', async () => {
  const result = await preflight({ relayUrl: 'https://relay.test/connect', portalHostname: 'portal.example.test' }, { lookup });
  assert.equal(result.checks.map((c) => c.id), ['relay-url', 'relay-dns', 'portal-dns', 'relay-tcp', 'relay-tls', 'relay-websocket']);
  const checks = byId(result);
  assert.is(result.ok, false);
  assert.match(checks['relay-url']!.message, /must start with wss:\/\//);
  assert.is(checks['portal-dns']!.ok, true, 'the portal name is checked on its own');
  assert.match(checks['relay-dns']!.message, /not tried/);
});

test('a name that does not resolve is named, with what to check', async () => {
  const result = await preflight({ relayUrl: 'wss://nowhere.test:8443/connect', portalHostname: 'missing.example.test' }, { lookup });
  const checks = byId(result);
  assert.is(checks['relay-dns']!.message, 'nowhere.test does not resolve: check the spelling or your DNS');
  assert.match(checks['portal-dns']!.message, /^missing\.example\.test does not resolve: check the spelling or your DNS \(it should point at the relay\)$/);
  assert.match(checks['relay-tcp']!.message, /not tried/);
});

test('the system resolver: a reserved .invalid name fails as not found', async () => {
  const result = await preflight({ relayUrl: 'wss://relay.invalid/connect', portalHostname: 'portal.invalid' }, { lookup: systemLookup });
  assert.match(byId(result)['relay-dns']!.message, /relay\.invalid does not resolve/);
});

test('a closed port: nothing accepts connections, check the port', async () => {
  const checks = byId(await preflight({ relayUrl: `wss://relay.test:${closedPort}/connect`, portalHostname: 'portal.example.test' }, { lookup }));
  assert.is(checks['relay-dns']!.ok, true);
  assert.is(checks['relay-tcp']!.ok, false);
  assert.match(checks['relay-tcp']!.message, new RegExp(`^nothing accepts connections at relay\\.test port ${closedPort} \\(127\\.0\\.0\\.1\\): check the port`));
  assert.match(checks['relay-tls']!.message, /not tried/);
});

test('a self-signed relay certificate is not trusted, and the message says what to do', async () => {
  const checks = byId(await preflight({ relayUrl: `wss://relay.test:${selfSignedPort}/connect`, portalHostname: 'portal.example.test' }, { lookup }));
  assert.is(checks['relay-tcp']!.ok, true);
  assert.is(checks['relay-tls']!.ok, false);
  assert.match(checks['relay-tls']!.message, /^the relay's certificate is not trusted: self-signed certificate\. /);
  assert.match(checks['relay-tls']!.message, /public CA/);
  assert.match(checks['relay-websocket']!.message, /not tried/);
});

test('a port that speaks no TLS: the handshake fails, asking whether it is the TLS port', async () => {
  const checks = byId(await preflight({ relayUrl: `wss://relay.test:${plainPort}/connect`, portalHostname: 'portal.example.test' }, { lookup, timeoutMs: 2000 }));
  assert.is(checks['relay-tls']!.ok, false);
  assert.match(checks['relay-tls']!.message, /TLS/);
  assert.match(checks['relay-tls']!.message, /Is this the relay's TLS port\?|is this the relay's TLS port\?/);
});

test.run();
