// Pure parts of the tunnel: the router's decisions, the tokens (verified back with jose), credit
// accounting in both directions, the PROXY v2 header, and the backoff's full jitter.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { IPv4ProxyAddress, IPv6ProxyAddress, V2ProxyProtocol } from 'proxy-protocol-js';
import { Backoff } from '../../services/common/backoff.js';
import type { RemoteTable } from '../../services/common/remote-contract.js';
import { ForwardGrants, SendWindow } from '../../services/tunnel/credits.js';
import { proxyHeader } from '../../services/tunnel/dialer.js';
import { StatusPusher, parseRemoteTable } from '../../services/tunnel/daemon-link.js';
import { createLogger } from '../../services/common/logger.js';
import type { TunnelStatus } from '../../services/common/remote-contract.js';
import { MAX_CREDITS, type ControlMessage } from '../../services/tunnel/protocol.js';
import { route } from '../../services/tunnel/router.js';
import { TOKEN_TTL_SECONDS, TokenIssuer } from '../../services/tunnel/tokens.js';

const table: RemoteTable = {
  rev: 3,
  enabled: true,
  relayUrl: 'wss://relay.test:8443/connect',
  deviceSecret: 's3cret',
  routes: [
    { hostname: 'portal.example.net', kind: 'portal', mode: 'local' },
    { hostname: 'web-blog.apps.example.net', kind: 'app', app: 'blog', listener: 'web', flow: 'tcp', protocol: 'http', mode: 'local' },
    { hostname: 'web-wiki.apps.example.net', kind: 'app', app: 'wiki', listener: 'web', flow: 'tcp', protocol: 'http', mode: 'tunnel' },
  ],
};

const connect = (fields: Partial<ControlMessage>): ControlMessage => ({ event: 'connect', client_id: '6f1c9a52-1d6e-4a4f-9a51-0f6a8f0d3b11', transport: 'tcp', conn_port: 443, client_ip: '203.0.113.9:40000', ...fields });

test('router: TLS goes to the TLS ingress, plain HTTP to the HTTP ingress, names normalized', () => {
  assert.equal(route(connect({ hostname: 'portal.example.net', is_tls: true }), table), { kind: 'proxy', ingress: 'tls', hostname: 'portal.example.net' });
  assert.equal(route(connect({ hostname: 'Web-Blog.Apps.Example.NET.', conn_port: 80 }), table), { kind: 'proxy', ingress: 'http', hostname: 'web-blog.apps.example.net' });
});

test('router: unknown names, port claims, UDP and tunnel-mode apps are refused', () => {
  for (const fields of [{ hostname: 'other.example.net', is_tls: true }, { hostname: 'tcp:443' }, { hostname: '' }, { hostname: 'portal.example.net', transport: 'udp' as const }]) {
    assert.is(route(connect(fields), table).kind, 'refuse', JSON.stringify(fields));
  }
  const tunnelled = route(connect({ hostname: 'web-wiki.apps.example.net', is_tls: true }), table);
  assert.is(tunnelled.kind, 'refuse');
  assert.match((tunnelled as { reason: string }).reason, /would forward to the leader/);
  assert.is(route(connect({ hostname: 'portal.example.net', is_tls: true }), { ...table, routes: [] }).kind, 'refuse');
});

test('tokens: HS256 over the secret with the claims of §1.2, verified back by jose', async () => {
  const now = 1_800_000_000_000;
  const issuer = new TokenIssuer({ deviceSecret: 'nexus-test-secret', subject: 'piccolo-1', hostnames: ['a.example.net', 'b.example.net'], now: () => now });
  const key = new TextEncoder().encode('nexus-test-secret');
  const options = { issuer: 'authorizer', audience: 'nexus', currentDate: new Date(now) };

  const stage0 = await issuer.stage0();
  assert.is(decodeProtectedHeader(stage0).alg, 'HS256');
  const { payload: claims0 } = await jwtVerify(stage0, key, options);
  assert.equal(claims0, {
    hostnames: ['a.example.net', 'b.example.net'],
    weight: 1,
    handshake_max_age_seconds: TOKEN_TTL_SECONDS,
    iss: 'authorizer',
    aud: 'nexus',
    sub: 'piccolo-1',
    iat: now / 1000,
    exp: now / 1000 + 30,
  });

  const nonce = 'Qm9ndXNOb25jZUZvclRlc3RpbmdPbmx5QWJjZGVmZ2g';
  const { payload: claims1 } = await jwtVerify(await issuer.stage1(nonce), key, options);
  assert.is(claims1.session_nonce, nonce);
  assert.is(claims1.handshake_max_age_seconds, undefined);
  assert.equal(claims1.hostnames, claims0.hostnames);
  const { payload: reauth } = await jwtVerify(await issuer.reauth('other-nonce'), key, options);
  assert.is(reauth.session_nonce, 'other-nonce');

  // Another key, or a time past exp, fails: the token really is bound to both.
  await jwtVerify(stage0, new TextEncoder().encode('wrong'), options).then(() => assert.unreachable('wrong key accepted'), () => {});
  await jwtVerify(stage0, key, { ...options, currentDate: new Date(now + 31_000) }).then(() => assert.unreachable('expired token accepted'), () => {});
});

test('credits: the reverse window counts frames, grows with grants, clamps, and absent means unlimited', () => {
  const window = new SendWindow(64);
  let sent = 0;
  while (window.canSend()) {
    window.take();
    sent++;
  }
  assert.is(sent, 64);
  window.grant(8);
  assert.is(window.credits, 8);
  window.grant(-5);
  window.grant('8');
  assert.is(window.credits, 8, 'nonsense grants add nothing');

  const huge = new SendWindow(2 ** 62);
  assert.is(huge.credits, MAX_CREDITS);
  huge.grant(2 ** 62);
  assert.is(huge.credits, MAX_CREDITS);

  for (const old of [undefined, 0]) {
    const unlimited = new SendWindow(old);
    for (let i = 0; i < 10_000; i++) unlimited.take();
    assert.ok(unlimited.canSend() && unlimited.unlimited);
  }
});

test('credits: the forward side grants 8 after every 8 frames written', () => {
  const grants = new ForwardGrants();
  const given = Array.from({ length: 20 }, () => grants.frameWritten());
  assert.equal(given.map((credits, i) => (credits ? i + 1 : 0)).filter(Boolean), [8, 16]);
  assert.ok(given.every((credits) => credits === 0 || credits === 8));
});

test('PROXY v2 header carries the end user as source, for IPv4, IPv6 and mapped addresses', () => {
  const parse = (header: Buffer) => V2ProxyProtocol.parse(header).proxyAddress as IPv4ProxyAddress | IPv6ProxyAddress;
  const v4 = parse(proxyHeader('203.0.113.7:5555', 443));
  assert.ok(v4 instanceof IPv4ProxyAddress);
  assert.equal(v4.sourceAddress.address, [203, 0, 113, 7]);
  assert.is(v4.sourcePort, 5555);
  assert.is(v4.destinationPort, 443);
  const v6 = parse(proxyHeader('[2001:db8::42:1]:80', 80));
  assert.ok(v6 instanceof IPv6ProxyAddress);
  assert.equal(v6.sourceAddress.address, [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42, 0, 1]);
  assert.equal(parse(proxyHeader('[::ffff:10.1.2.3]:9', 443)).sourceAddress.address, [10, 1, 2, 3]);
  for (const bad of ['', 'nonsense', '300.1.1.1:5', '1.2.3.4']) {
    assert.throws(() => proxyHeader(bad, 443), /client_ip/);
  }
});

test('backoff: full jitter spans [0, ceiling], the ceiling doubles to the cap, a stable link resets it', () => {
  let now = 0;
  let random = 0;
  const backoff = new Backoff({ initialMs: 1000, maxMs: 8000, stableMs: 30_000, jitter: 'full', now: () => now, random: () => random });
  assert.is(backoff.failed(), 0, 'full jitter may retry at once');
  random = 1;
  assert.equal([backoff.failed(), backoff.failed(), backoff.failed(), backoff.failed()], [2000, 4000, 8000, 8000]);
  random = 0.5;
  assert.is(backoff.failed(), 4000);
  // A session that opened and died 2 s later (stage 1 rejected) keeps growing, never resets.
  backoff.succeeded();
  now += 2000;
  random = 1;
  assert.is(backoff.failed(), 8000);
  backoff.succeeded();
  now += 30_000;
  assert.is(backoff.failed(), 1000);
  const equal = new Backoff({ initialMs: 1000, maxMs: 8000, stableMs: 30_000, jitter: 'equal', random: () => 0 });
  assert.is(equal.failed(), 500, 'equal jitter keeps half the delay');
  backoff.failed();
  backoff.reset();
  assert.is(backoff.failed(), 1000, 'reset starts over');
});

test('remote table: a well-formed table passes; a malformed one is refused, naming the field', () => {
  assert.equal(parseRemoteTable(JSON.parse(JSON.stringify(table))), table);
  assert.equal(parseRemoteTable({ rev: 1, enabled: false, routes: [] }).enabled, false);
  for (const [doc, what] of [
    [null, /not an object/],
    [{ ...table, rev: '3' }, /rev/],
    [{ ...table, relayUrl: undefined }, /relayUrl/],
    [{ ...table, routes: [{ hostname: 'x' }] }, /mode/],
  ] as const) {
    assert.throws(() => parseRemoteTable(doc), what as RegExp);
  }
});

test('status pusher: sends each change in order, repeats only while connected, says goodbye on stop', async () => {
  const sent: string[] = [];
  let status: TunnelStatus = { state: 'connecting', streams: 0, bytesIn: 0, bytesOut: 0, since: new Date().toISOString() };
  let failNext = false;
  const link = {
    postStatus: async (s: TunnelStatus) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (failNext) {
        failNext = false;
        throw new Error('daemon restarting');
      }
      sent.push(s.state);
    },
  };
  const pusher = new StatusPusher({ link, status: () => status, logger: createLogger({ service: 'test', write: () => {} }), intervalMs: 40 });
  await pusher.start();
  pusher.push();
  status = { ...status, state: 'connected' };
  pusher.push();
  await new Promise((resolve) => setTimeout(resolve, 150));
  const whileConnected = sent.length;
  assert.equal(sent.slice(0, 2), ['connected', 'connected'], 'each push sends the status current when it goes out');
  assert.ok(whileConnected >= 4, `${whileConnected} sends: heartbeats while connected`);
  status = { ...status, state: 'backoff', lastError: 'relay closed' };
  failNext = true;
  pusher.push();
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.is(sent.length, whileConnected, 'a failed send is not retried at once, and no heartbeat outside connected');
  await pusher.stop();
  assert.is(sent.at(-1), 'backoff', 'stop sends the last status');
});

test.run();
