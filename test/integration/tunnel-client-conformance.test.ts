// The tunnel client against the protocol note's §8 (client-side cases), over real TLS
// WebSockets: mostly against our TypeScript relay (services/relay), and against a scripted relay
// where a case needs a server that misbehaves on purpose (DATA for unknown ids, withheld or huge
// credits, silence). The client's local targets are plain TCP servers here (injected dialer);
// the PROXY v2 dialer to the proxy's sockets has its own test at the end.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { V2ProxyProtocol, type IPv4ProxyAddress } from 'proxy-protocol-js';
import { Backoff } from '../../services/common/backoff.js';
import type { RemoteTable } from '../../services/common/remote-contract.js';
import { Relay, type RelayEvents, type RelayRules } from '../../services/relay/relay.js';
import { MAX_PERMANENT_FAILURES, TunnelClient, type TunnelClientOptions } from '../../services/tunnel/client.js';
import { proxyIngressDialer, type Dialer } from '../../services/tunnel/dialer.js';
import { decodeFrame, newClientId, type ControlMessage } from '../../services/tunnel/protocol.js';
import { ScriptedRelay, dialPort, listen, quietLogger, readAll, recordingLogger, selfSignedCert, trackResources, waitUntil, type ScriptedBackend, type ScriptedRelayOptions } from '../support/tunnel-harness.js';

const SECRET = 'nexus-test-secret';
const cert = await selfSignedCert();

// ---- local targets ----

interface Target {
  port: number;
  server: net.Server;
  sockets: net.Socket[];
  /** Bytes received per connection, in order. */
  received: Buffer[][];
  closes: number;
}

/** A TCP server; onConnection decides what it does with each connection. */
async function target(onConnection: (socket: net.Socket, index: number) => void = () => {}, options: net.ServerOpts = {}): Promise<Target> {
  const t: Target = { port: 0, server: net.createServer(options), sockets: [], received: [], closes: 0 };
  t.server.on('connection', (socket) => {
    const index = t.sockets.push(socket) - 1;
    t.received[index] = [];
    socket.on('data', (chunk: Buffer) => t.received[index]!.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => t.closes++);
    onConnection(socket, index);
  });
  t.port = await listen(t.server);
  return t;
}

const bytesOf = (t: Target, index = 0) => Buffer.concat(t.received[index] ?? []);

function closeTarget(t: Target): Promise<void> {
  for (const socket of t.sockets) socket.destroy();
  return new Promise((resolve) => t.server.close(() => resolve()));
}

/** Writes `data` as soon as the connection opens, then ends. */
const source = (data: Buffer) => (socket: net.Socket) => socket.end(data);
const echo = (socket: net.Socket) => socket.pipe(socket);

// ---- the client with the real relay ----

function table(hostnames: Record<string, 'local' | 'tunnel'>, relayUrl: string): RemoteTable {
  return {
    rev: 1,
    enabled: true,
    relayUrl,
    deviceSecret: SECRET,
    routes: Object.entries(hostnames).map(([hostname, mode]) => ({ hostname, kind: 'app' as const, app: hostname.split('.')[0], listener: 'web', flow: 'tcp' as const, protocol: 'http' as const, mode })),
  };
}

interface Setup {
  relay: Relay;
  client: TunnelClient;
  frames: RelayEvents['frame'][];
  registered: RelayEvents['registered'][];
  closed: RelayEvents['closed'][];
  rejected: (RelayEvents['rejected'] & { at: number })[];
  relayLog: string[];
  stop(): Promise<void>;
}

interface SetupOptions {
  /** hostname -> local port or dialer */
  targets: Record<string, number | Dialer>;
  tunnelled?: string[];
  rules?: Partial<RelayRules>;
  idleTimeoutSeconds?: number;
  client?: Partial<TunnelClientOptions>;
  /** Wait for the first registration (default true). */
  waitRegistered?: boolean;
}

async function withRelay(options: SetupOptions): Promise<Setup> {
  const { logger: relayLogger, lines: relayLog } = recordingLogger('relay');
  const relay = new Relay({ hub: { host: '127.0.0.1', port: 0 }, tls: cert, secret: SECRET, relayPorts: [0, 0], rules: options.rules, idleTimeoutSeconds: options.idleTimeoutSeconds, logger: relayLogger });
  await relay.start();
  const setup: Setup = { relay, client: undefined!, frames: [], registered: [], closed: [], rejected: [], relayLog, stop: async () => {} };
  relay.events.on('frame', (event) => setup.frames.push(event));
  relay.events.on('registered', (event) => setup.registered.push(event));
  relay.events.on('closed', (event) => setup.closed.push(event));
  relay.events.on('rejected', (event) => setup.rejected.push({ ...event, at: Date.now() }));
  const dialer: Dialer = (t) => {
    const entry = options.targets[t.hostname];
    if (entry === undefined) return Promise.reject(new Error(`test has no target for ${t.hostname}`));
    return typeof entry === 'number' ? dialPort(entry) : entry(t);
  };
  const client = new TunnelClient({ logger: quietLogger, dialer, subject: 'conformance', tls: { ca: cert.cert }, ...options.client });
  setup.client = client;
  const names: Record<string, 'local' | 'tunnel'> = {};
  for (const name of Object.keys(options.targets)) names[name] = 'local';
  for (const name of options.tunnelled ?? []) names[name] = 'tunnel';
  await client.start();
  await client.update(table(names, `wss://localhost:${relay.hubPort}/connect`));
  setup.stop = async () => {
    await client.stop();
    await relay.stop();
  };
  if (options.waitRegistered !== false) await waitUntil(() => setup.registered.length > 0, 10_000, 'the backend to register');
  return setup;
}

/** The connect message the relay sent for a hostname (the n-th one). */
function connectFor(setup: Setup, hostname: string, nth = 0): ControlMessage | undefined {
  const connects = setup.frames.flatMap((e) => (e.from === 'relay' && e.frame.kind === 'control' && e.frame.message.event === 'connect' && e.frame.message.hostname === hostname ? [e.frame.message] : []));
  return connects[nth];
}

const waitConnect = (setup: Setup, hostname: string, nth = 0) => waitUntil(() => connectFor(setup, hostname, nth), 10_000, `connect for ${hostname}`);

/** Frames for one id, from one side, in order. */
function streamFrames(setup: Setup, clientId: string, from: 'backend' | 'relay') {
  return setup.frames.filter((e) => e.from === from && ((e.frame.kind === 'data' && e.frame.clientId === clientId) || (e.frame.kind === 'control' && e.frame.message.client_id === clientId))).map((e) => e.frame);
}

const controlsOf = (frames: ReturnType<typeof streamFrames>) => frames.flatMap((f) => (f.kind === 'control' ? [f.message] : []));
const dataOf = (frames: ReturnType<typeof streamFrames>) => frames.flatMap((f) => (f.kind === 'data' ? [f.payload] : []));

/** A plain-HTTP user on the relay's second port: the head routes it by Host. */
function httpUser(setup: Setup, host: string, rest: Buffer = Buffer.alloc(0), method = 'POST'): { socket: net.Socket; head: Buffer } {
  const head = Buffer.from(`${method} /upload HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  const socket = net.connect(setup.relay.relayPorts[1]!, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(Buffer.concat([head, rest]));
  return { socket, head };
}

// ---- the client with the scripted relay ----

interface Scripted {
  relay: ScriptedRelay;
  client: TunnelClient;
  backend: ScriptedBackend;
  /** Plays the relay's connect for app.test with this reverse window; returns the new id. */
  open(credits: number): string;
  stop(): Promise<void>;
}

async function withScriptedRelay(client: Partial<TunnelClientOptions> = {}, relayOptions: Partial<ScriptedRelayOptions> = {}): Promise<Scripted> {
  const relay = await new ScriptedRelay({ tls: cert, secret: SECRET, ...relayOptions }).start();
  const tunnel = new TunnelClient({ logger: quietLogger, dialer: () => Promise.reject(new Error('no target')), subject: 'conformance', tls: { ca: cert.cert }, ...client });
  await tunnel.update(table({ 'app.test': 'local' }, relay.url));
  const backend = await relay.nextBackend();
  const open = (credits: number) => {
    const id = newClientId();
    backend.control({ event: 'connect', client_id: id, transport: 'tcp', hostname: 'app.test', is_tls: true, conn_port: 443, client_ip: '198.51.100.4:5000', credits });
    return id;
  };
  const stop = async () => {
    await tunnel.stop();
    await relay.stop();
  };
  return { relay, client: tunnel, backend, open, stop };
}

// ---- handshake ----

test('2: no subprotocol, no ALPN (so no h2), no compression; up without any acknowledgement', async () => {
  const { relay, client, stop } = await withScriptedRelay({}, { alpn: ['h2', 'http/1.1'] });
  assert.equal(relay.upgrades, [{ protocolHeader: undefined, alpn: false, extensions: undefined }]);
  // The scripted relay sends nothing after the challenge: stage 1 sent is "connected".
  await waitUntil(() => client.status().state === 'connected', 5000, 'connected');
  await stop();
});

test('6: a backend whose stage 1 is rejected backs off (growing delays), never hot-loops', async () => {
  let signed = 0;
  // Every second token (stage 1) is stamped two minutes ago: expired, so the relay refuses stage 1.
  const tokenClock = () => Date.now() - (++signed % 2 === 0 ? 120_000 : 0);
  const backoff = new Backoff({ initialMs: 200, maxMs: 3200, stableMs: 30_000, jitter: 'full', random: () => 1 });
  const setup = await withRelay({ targets: { 'app.test': 1 }, client: { tokenClock, backoff }, waitRegistered: false });
  await new Promise((resolve) => setTimeout(resolve, 3500));
  const rejections = setup.rejected.filter((r) => /stage1 token validation failed/.test(r.reason));
  assert.ok(rejections.length >= 3 && rejections.length <= 5, `${rejections.length} stage 1 rejections in 3.5 s (200+400+800+1600 ms of backoff allows 4)`);
  const gaps = rejections.slice(1).map((r, i) => r.at - rejections[i]!.at);
  for (let i = 1; i < gaps.length; i++) assert.ok(gaps[i]! > gaps[i - 1]! * 1.5, `gaps grow: ${gaps.join(', ')}`);
  assert.is(setup.registered.length, 0);
  const status = setup.client.status();
  assert.is(status.state, 'backoff');
  assert.match(status.lastError ?? '', /1008|stage1/);
  await setup.stop();
});

test('the declared names follow the table live; route changes apply without a new session; disabling closes it', async () => {
  const hold = await target();
  const setup = await withRelay({ targets: { 'app.test': hold.port } });
  const url = `wss://localhost:${setup.relay.hubPort}/connect`;
  assert.equal(setup.registered[0]!.hostnames, ['app.test']);
  await setup.client.update({ ...table({ 'app.test': 'local', 'new.test': 'local' }, url), rev: 2 });
  await waitUntil(() => setup.registered.length === 2, 10_000, 'a session with the new names');
  assert.equal(setup.registered[1]!.hostnames, ['app.test', 'new.test']);
  assert.is(setup.closed.length, 1, 'the old session was closed');

  // Same names, another mode: the session stays, the next stream sees the new route.
  await setup.client.update({ ...table({ 'app.test': 'tunnel', 'new.test': 'local' }, url), rev: 3 });
  const { socket: user } = httpUser(setup, 'app.test');
  await readAll(user);
  const connect = await waitConnect(setup, 'app.test');
  assert.equal(controlsOf(streamFrames(setup, connect.client_id, 'backend')).map((m) => m.reason), ['dial_failed']);
  assert.is(setup.registered.length, 2);

  await setup.client.update({ rev: 4, enabled: false, routes: [] });
  await waitUntil(() => setup.closed.length === 2, 5000, 'the session closed');
  assert.equal(setup.relay.backends(), []);
  assert.equal(setup.client.status().state, 'disabled');
  await setup.stop();
  await closeTarget(hold);
});

test('a relay that refuses the credential (401) is tried 5 times with backoff, then left alone until the settings change', async () => {
  const relay = await new ScriptedRelay({ tls: cert, secret: SECRET, refuseUpgrade: 401 }).start();
  const client = new TunnelClient({
    logger: quietLogger,
    dialer: () => Promise.reject(new Error('no target')),
    subject: 'conformance',
    tls: { ca: cert.cert },
    backoff: new Backoff({ initialMs: 50, maxMs: 400, stableMs: 30_000, jitter: 'full', random: () => 1 }),
  });
  await client.update(table({ 'app.test': 'local' }, relay.url));
  await waitUntil(() => /gave up/.test(client.status().lastError ?? ''), 5000, 'the client to give up');
  await new Promise((resolve) => setTimeout(resolve, 800));
  assert.is(relay.refused, MAX_PERMANENT_FAILURES);
  assert.is(client.status().state, 'backoff');
  assert.match(client.status().lastError!, /401/);
  // New settings (another secret) are worth trying again.
  await client.update({ ...table({ 'app.test': 'local' }, relay.url), deviceSecret: 'rotated', rev: 2 });
  await waitUntil(() => relay.refused > MAX_PERMANENT_FAILURES, 3000, 'a new try');
  await client.stop();
  await relay.stop();
});

// ---- connect and data ----

test('7: TLS route: connect fields, and the ClientHello prelude is the first thing the local socket gets', async () => {
  const capture = await target();
  const setup = await withRelay({ targets: { 'app.test': capture.port } });
  const user = tls.connect({ host: '127.0.0.1', port: setup.relay.relayPorts[0]!, servername: 'App.Test', rejectUnauthorized: false });
  user.on('error', () => {});
  await once(user, 'connect').catch(() => {});
  const connect = await waitConnect(setup, 'app.test');
  assert.equal(
    { transport: connect.transport, is_tls: connect.is_tls, conn_port: connect.conn_port, client_ip: connect.client_ip, credits: connect.credits },
    { transport: 'tcp', is_tls: true, conn_port: setup.relay.relayPorts[0], client_ip: `127.0.0.1:${user.localPort}`, credits: 64 },
  );
  const prelude = dataOf(streamFrames(setup, connect.client_id, 'relay'))[0]!;
  assert.is(prelude[0], 0x16, 'a TLS handshake record');
  await waitUntil(() => bytesOf(capture).length >= prelude.length, 5000, 'the prelude locally');
  assert.ok(bytesOf(capture).subarray(0, prelude.length).equals(prelude));
  user.destroy();
  await setup.stop();
  await closeTarget(capture);
});

test('7: TLS end to end: the local TLS server terminates, the user verifies it through the relay', async () => {
  const server = tls.createServer(cert, (socket) => socket.end('hello over tls'));
  const port = await listen(server);
  const setup = await withRelay({ targets: { 'app.test': port } });
  const user = tls.connect({ host: '127.0.0.1', port: setup.relay.relayPorts[0]!, servername: 'app.test', ca: cert.cert, checkServerIdentity: () => undefined });
  const answer = await readAll(user);
  assert.is(answer.toString(), 'hello over tls');
  await setup.stop();
  server.close();
});

test('8: HTTP route: is_tls absent, Host without its port, the head arrives first', async () => {
  const server = http.createServer((req, res) => res.end(`path ${req.url} host ${req.headers.host}`));
  const port = await listen(server);
  const setup = await withRelay({ targets: { 'app.test': port } });
  const user = net.connect(setup.relay.relayPorts[1]!, '127.0.0.1');
  user.write('GET /x?y=1 HTTP/1.1\r\nHost: App.Test:8080\r\nConnection: close\r\n\r\n');
  const answer = (await readAll(user)).toString();
  const connect = await waitConnect(setup, 'app.test');
  assert.is(connect.is_tls, undefined);
  assert.is(connect.conn_port, setup.relay.relayPorts[1]);
  assert.match(dataOf(streamFrames(setup, connect.client_id, 'relay'))[0]!.toString(), /^GET \/x\?y=1 HTTP\/1.1\r\nHost: App.Test:8080/);
  assert.match(answer, /^HTTP\/1.1 200/);
  assert.match(answer, /path \/x\?y=1 host App.Test:8080$/);
  await setup.stop();
  server.close();
});

test('9: a 64 KiB HTTP head arrives as one prelude message over 32 KiB and reaches the local socket whole', async () => {
  const capture = await target();
  const setup = await withRelay({ targets: { 'app.test': capture.port } });
  const head = Buffer.from(`GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: ${'a'.repeat(65_000)}\r\n\r\n`);
  const user = net.connect(setup.relay.relayPorts[1]!, '127.0.0.1');
  user.write(head);
  await waitUntil(() => bytesOf(capture).length >= head.length, 10_000, 'the whole head locally');
  assert.ok(bytesOf(capture).equals(head));
  const connect = await waitConnect(setup, 'app.test');
  const prelude = dataOf(streamFrames(setup, connect.client_id, 'relay'))[0]!;
  assert.ok(prelude.length > 32 * 1024, `prelude of ${prelude.length} bytes in one message`);
  assert.ok(setup.relay.backends().length === 1, 'the session survived it');
  user.destroy();
  await setup.stop();
  await closeTarget(capture);
});

test('13, 22: data sent while the dial is pending is kept and written in order; the grant goes out before the dial completes', async () => {
  const capture = await target();
  let dialDone = false;
  let framesBeforeDial = 0;
  let setup!: Setup;
  const slowDial: Dialer = async () => {
    await new Promise((resolve) => setTimeout(resolve, 500));
    framesBeforeDial = setup.frames.filter((e) => e.from === 'relay' && e.frame.kind === 'data').length;
    dialDone = true;
    return dialPort(capture.port);
  };
  setup = await withRelay({ targets: { 'slow.test': slowDial } });
  const body = randomBytes(1024 * 1024);
  const { socket: user, head } = httpUser(setup, 'slow.test');
  for (let offset = 0; offset < body.length; offset += 16 * 1024) user.write(body.subarray(offset, offset + 16 * 1024));
  const connect = await waitConnect(setup, 'slow.test');
  const grant = await waitUntil(() => controlsOf(streamFrames(setup, connect.client_id, 'backend'))[0], 2000, 'the first grant');
  assert.equal(grant, { event: 'resume_stream', client_id: connect.client_id, credits: 64 });
  assert.not.ok(dialDone, 'the grant came before the dial finished');
  await waitUntil(() => bytesOf(capture).length >= head.length + body.length, 15_000, 'all bytes locally');
  assert.ok(framesBeforeDial > 1, `${framesBeforeDial} frames arrived while dialing`);
  assert.ok(bytesOf(capture).equals(Buffer.concat([head, body])), 'byte-exact and in order');
  user.destroy();
  await setup.stop();
  await closeTarget(capture);
});

test('12, 14: 50 concurrent streams interleave; a stalled local reader holds back only its own stream', async () => {
  const stalled = await target((socket) => socket.pause());
  const echoes = await target(echo);
  const setup = await withRelay({ targets: { 'stall.test': stalled.port, 'echo.test': echoes.port } });
  const { socket: stalledUser } = httpUser(setup, 'stall.test');
  const flood = randomBytes(8 * 1024 * 1024);
  stalledUser.write(flood);
  await waitConnect(setup, 'stall.test');
  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: 49 }, async () => {
      const payload = randomBytes(64 * 1024);
      const { socket, head } = httpUser(setup, 'echo.test', payload);
      const expected = Buffer.concat([head, payload]);
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      await waitUntil(() => Buffer.concat(chunks).length >= expected.length, 20_000, 'an echo');
      socket.destroy();
      return Buffer.concat(chunks).equals(expected);
    }),
  );
  const elapsed = Date.now() - started;
  assert.ok(results.every(Boolean), 'every echo byte-exact');
  assert.ok(elapsed < 15_000, `49 echoes took ${elapsed} ms beside the stalled stream`);
  assert.is(setup.closed.length, 0, 'the session stayed up');
  // The stalled stream is held at its window: the relay could not push the 8 MiB.
  const stalledId = (await waitConnect(setup, 'stall.test')).client_id;
  const forwarded = dataOf(streamFrames(setup, stalledId, 'relay')).length;
  assert.ok(forwarded < flood.length / (32 * 1024), `${forwarded} frames forwarded to the stalled stream`);

  // 12: every id the backend used is one the relay announced, and every frame it sent was well formed.
  const announced = new Set(setup.frames.flatMap((e) => (e.from === 'relay' && e.frame.kind === 'control' && e.frame.message.event === 'connect' ? [e.frame.message.client_id] : [])));
  const fromBackend = setup.frames.filter((e) => e.from === 'backend');
  assert.ok(fromBackend.every((e) => e.frame.kind !== 'invalid'));
  assert.ok(fromBackend.every((e) => announced.has(e.frame.kind === 'data' ? e.frame.clientId : e.frame.kind === 'control' ? e.frame.message.client_id : '')));
  // 14: the streams were in flight at the same time on the one WebSocket, not one after another.
  const spans = new Map<string, [number, number]>();
  setup.frames.forEach((e, i) => {
    const id = e.frame.kind === 'data' ? e.frame.clientId : e.frame.kind === 'control' ? e.frame.message.client_id : undefined;
    if (!id) return;
    spans.set(id, [spans.get(id)?.[0] ?? i, i]);
  });
  const starts = [...spans.values()].map(([start]) => start);
  const overlap = Math.max(...starts.map((at) => [...spans.values()].filter(([start, end]) => start <= at && at <= end).length));
  assert.ok(overlap >= 10, `at most ${overlap} streams in flight at once`);
  stalledUser.destroy();
  await setup.stop();
  await closeTarget(stalled);
  await closeTarget(echoes);
});

// ---- disconnect ----

test('16: the relay\'s disconnect: pending data is flushed, the local socket closed, nothing more sent for the id', async () => {
  let lateWriteTried = false;
  const sink = await target((socket) => socket.on('end', () => {
    // This side may still write after our FIN (half-open server): the tunnel must not forward it.
    lateWriteTried = true;
    socket.end('late reply');
  }), { allowHalfOpen: true });
  const setup = await withRelay({ targets: { 'sink.test': sink.port } });
  const body = randomBytes(256 * 1024);
  const { socket: user, head } = httpUser(setup, 'sink.test', body);
  user.end();
  const connect = await waitConnect(setup, 'sink.test');
  await waitUntil(() => sink.closes === 1, 5000, 'the local socket to close');
  assert.ok(bytesOf(sink).equals(Buffer.concat([head, body])), 'everything before the disconnect was delivered');
  assert.ok(lateWriteTried);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const backendFrames = streamFrames(setup, connect.client_id, 'backend');
  assert.is(dataOf(backendFrames).length, 0, 'no DATA after the relay ended the stream');
  assert.is(setup.client.status().streams, 0);
  await setup.stop();
  await closeTarget(sink);
});

test('17: local EOF: every queued DATA frame, then disconnect{normal}, then nothing', async () => {
  const reply = randomBytes(2 * 1024 * 1024);
  const server = await target(source(reply));
  const setup = await withRelay({ targets: { 'source.test': server.port } });
  const { socket: user, head } = httpUser(setup, 'source.test');
  const received = await readAll(user);
  assert.ok(received.equals(reply), `user got ${received.length} of ${reply.length} bytes`);
  const connect = await waitConnect(setup, 'source.test');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const frames = streamFrames(setup, connect.client_id, 'backend');
  const last = frames.at(-1)!;
  assert.equal(last.kind === 'control' && last.message, { event: 'disconnect', client_id: connect.client_id, reason: 'normal' });
  assert.is(frames.filter((f) => f.kind === 'control' && f.message.event === 'disconnect').length, 1);
  assert.is(Buffer.concat(dataOf(frames)).length, reply.length);
  assert.ok(head.length > 0);
  await setup.stop();
  await closeTarget(server);
});

test('19: a failed dial, or a name in tunnel mode, gives only disconnect{dial_failed}, no DATA', async () => {
  const setup = await withRelay({ targets: { 'fail.test': () => Promise.reject(new Error('connection refused')) }, tunnelled: ['lead.test'] });
  for (const host of ['fail.test', 'lead.test']) {
    const { socket: user } = httpUser(setup, host, Buffer.from('body'));
    await readAll(user);
    const connect = await waitConnect(setup, host);
    const frames = streamFrames(setup, connect.client_id, 'backend');
    assert.is(dataOf(frames).length, 0, host);
    const disconnects = controlsOf(frames).filter((m) => m.event === 'disconnect');
    assert.equal(disconnects, [{ event: 'disconnect', client_id: connect.client_id, reason: 'dial_failed' }], host);
  }
  await setup.stop();
});

test('20, 31: DATA for an unknown id gets disconnect{unknown}; other control for unknown ids is ignored; ping_client gets pong_client', async () => {
  const hold = await target();
  const { client, backend, open, stop } = await withScriptedRelay({ dialer: () => dialPort(hold.port) });
  const stranger = newClientId();
  backend.data(stranger, Buffer.from('who?'));
  backend.data(stranger, Buffer.from('again'));
  await waitUntil(() => backend.controls(stranger).length > 0, 3000, 'an answer for the unknown id');
  const ghost = newClientId();
  backend.control({ event: 'resume_stream', client_id: ghost, credits: 8 });
  backend.control({ event: 'disconnect', client_id: ghost });
  backend.control({ event: 'ping_client', client_id: ghost });

  const live = open(64);
  await waitUntil(() => hold.sockets.length === 1, 3000, 'the local dial');
  backend.control({ event: 'ping_client', client_id: live });
  await waitUntil(() => backend.controls(live).some((m) => m.event === 'pong_client'), 3000, 'pong_client');
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(backend.controls(stranger), [{ event: 'disconnect', client_id: stranger, reason: 'unknown' }], 'one answer, however much DATA');
  assert.equal(backend.controls(ghost), [], 'control for unknown ids: no reply');
  assert.equal(backend.controls(live), [
    { event: 'resume_stream', client_id: live, credits: 64 },
    { event: 'pong_client', client_id: live },
  ]);
  assert.is(client.status().state, 'connected');
  await stop();
  await closeTarget(hold);
});

test('31: a stream idle too long gets ping_client; without pong_client it is closed with disconnect{timeout}', async () => {
  const hold = await target();
  const { backend, open, stop } = await withScriptedRelay({ dialer: () => dialPort(hold.port), timing: { streamIdleMs: 300, pongTimeoutMs: 300, idleScanMs: 50 } });
  const answered = new Set<string>();
  backend.ws.on('message', (data: Buffer, isBinary: boolean) => {
    const frame = isBinary ? decodeFrame(data) : undefined;
    if (frame?.kind === 'control' && frame.message.event === 'ping_client' && answered.has(frame.message.client_id)) backend.control({ event: 'pong_client', client_id: frame.message.client_id });
  });
  const alive = open(64);
  answered.add(alive);
  const forgotten = open(64);
  await waitUntil(() => backend.controls(forgotten).some((m) => m.event === 'disconnect'), 3000, 'the forgotten stream closed');
  assert.equal(backend.controls(forgotten).map((m) => m.event + (m.reason ? `:${m.reason}` : '')), ['resume_stream', 'ping_client', 'disconnect:timeout']);
  await waitUntil(() => hold.closes === 1, 2000, 'its local socket closed');
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const aliveEvents = backend.controls(alive).map((m) => m.event);
  assert.ok(aliveEvents.filter((event) => event === 'ping_client').length >= 2, `the answered stream is pinged again and again: ${aliveEvents}`);
  assert.not.ok(aliveEvents.includes('disconnect'), 'and stays open');
  assert.is(hold.closes, 1);
  await stop();
  await closeTarget(hold);
});

test('21: when the WebSocket drops, local sockets close, no stale disconnect follows, new ids after the reconnect; nothing leaks', async () => {
  const resources = trackResources();
  const hold = await target();
  const echoes = await target(echo);
  const setup = await withRelay({ targets: { 'hold.test': hold.port, 'echo.test': echoes.port }, client: { backoff: new Backoff({ initialMs: 100, maxMs: 1000, stableMs: 30_000, jitter: 'full' }) } });
  const users = [0, 1, 2].map(() => httpUser(setup, 'hold.test', Buffer.from('x')).socket);
  await waitUntil(() => hold.sockets.length === 3 && setup.client.status().streams === 3, 5000, 'three streams');
  const oldIds = new Set([0, 1, 2].map((n) => connectFor(setup, 'hold.test', n)!.client_id));
  const firstBackend = setup.registered[0]!.backendId;
  setup.relay.dropBackends();
  await waitUntil(() => hold.closes === 3, 3000, 'every local socket closed');
  await waitUntil(() => setup.registered.length === 2, 10_000, 'the reconnect');
  assert.is(setup.client.status().streams, 0);
  const { socket: user, head } = httpUser(setup, 'echo.test', Buffer.from('after'));
  const chunks: Buffer[] = [];
  user.on('data', (chunk: Buffer) => chunks.push(chunk));
  await waitUntil(() => Buffer.concat(chunks).length >= head.length + 5, 5000, 'an echo on the new session');
  const newId = connectFor(setup, 'echo.test')!.client_id;
  assert.not.ok(oldIds.has(newId));
  const staleFromNew = setup.frames.filter((e) => e.from === 'backend' && e.backendId !== firstBackend && e.frame.kind === 'control' && oldIds.has(e.frame.message.client_id));
  assert.equal(staleFromNew, [], 'nothing about old ids on the new session');
  for (const u of [...users, user]) u.destroy();
  await setup.stop();
  await closeTarget(hold);
  await closeTarget(echoes);
  // Nothing left behind: no socket, server or timer of the client, the relay or the targets outlives stop().
  const inTunnelOrRelay = () => resources.alive().filter((where) => /services\/(tunnel|relay)\//.test(where));
  await waitUntil(() => inTunnelOrRelay().length === 0, 3000, 'every socket and timer to go').catch(() => assert.equal(inTunnelOrRelay(), [], 'left behind'));
  resources.stop();
});

// ---- flow control ----

test('23: with credits withheld the backend sends exactly the window, then exactly each grant; nothing is lost', async () => {
  const reply = randomBytes(16 * 1024 * 1024);
  let localSocket!: net.Socket;
  const server = await target((socket) => {
    localSocket = socket;
    socket.end(reply);
  });
  const { backend, open, stop } = await withScriptedRelay({ dialer: () => dialPort(server.port) });
  const id = open(64);
  await waitUntil(() => backend.dataFrames(id).length === 64, 5000, 'the first window');
  await new Promise((resolve) => setTimeout(resolve, 700));
  assert.is(backend.dataFrames(id).length, 64, 'stops at the window');
  assert.ok(localSocket.writableLength > 0, 'the local writer is held back (backpressure), not read into memory');
  backend.control({ event: 'resume_stream', client_id: id, credits: 8 });
  await waitUntil(() => backend.dataFrames(id).length === 72, 3000, 'eight more');
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.is(backend.dataFrames(id).length, 72, 'exactly eight more');
  backend.control({ event: 'resume_stream', client_id: id, credits: 100_000 });
  await waitUntil(() => backend.controls(id).some((m) => m.event === 'disconnect'), 15_000, 'the end of the stream');
  assert.ok(Buffer.concat(backend.dataFrames(id)).equals(reply), 'byte-exact');
  assert.ok(backend.dataFrames(id).every((payload) => payload.length <= 32 * 1024));
  await stop();
  await closeTarget(server);
});

test('24: forward credits follow local writes: a stalled reader holds the relay at the window; grants are 64 then 8s', async () => {
  let reader!: net.Socket;
  const slow = await target((socket) => {
    reader = socket;
    socket.pause();
  });
  const setup = await withRelay({ targets: { 'slow.test': slow.port } });
  const upload = randomBytes(16 * 1024 * 1024);
  const { socket: user, head } = httpUser(setup, 'slow.test', upload);
  const connect = await waitConnect(setup, 'slow.test');
  const forwarded = () => dataOf(streamFrames(setup, connect.client_id, 'relay')).length;
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const plateau = forwarded();
  await new Promise((resolve) => setTimeout(resolve, 700));
  assert.is(forwarded(), plateau, 'no more frames while the local reader is stalled');
  assert.ok(plateau < upload.length / (32 * 1024), `${plateau} frames of ${Math.ceil(upload.length / 32768)} forwarded`);
  reader.resume();
  await waitUntil(() => bytesOf(slow).length >= head.length + upload.length, 30_000, 'the whole upload locally');
  assert.ok(bytesOf(slow).equals(Buffer.concat([head, upload])));
  const grants = controlsOf(streamFrames(setup, connect.client_id, 'backend')).filter((m) => m.event === 'resume_stream').map((m) => m.credits);
  assert.is(grants[0], 64);
  assert.ok(grants.slice(1).every((credits) => credits === 8));
  const written = forwarded();
  assert.ok(grants.length - 1 === Math.floor(written / 8), `${grants.length - 1} grants of 8 for ${written} frames written`);
  user.destroy();
  await setup.stop();
  await closeTarget(slow);
});

test('25: an old server (connect without credits) gets an unlimited reverse window', async () => {
  const reply = randomBytes(8 * 1024 * 1024);
  const server = await target(source(reply));
  const setup = await withRelay({ targets: { 'source.test': server.port }, rules: { grantCredits: 0 } });
  const { socket: user } = httpUser(setup, 'source.test');
  const received = await readAll(user);
  const connect = await waitConnect(setup, 'source.test');
  assert.is(connect.credits, undefined);
  assert.ok(received.equals(reply), `${received.length} of ${reply.length} bytes with no grant at all`);
  await setup.stop();
  await closeTarget(server);
});

test('25: an oversized grant (2^62) is clamped, not broken: data flows', async () => {
  const reply = randomBytes(4 * 1024 * 1024);
  const server = await target(source(reply));
  const { backend, open, stop } = await withScriptedRelay({ dialer: () => dialPort(server.port) });
  const id = open(2 ** 62);
  await waitUntil(() => backend.controls(id).some((m) => m.event === 'disconnect'), 10_000, 'the end of the stream');
  assert.ok(Buffer.concat(backend.dataFrames(id)).equals(reply));
  await stop();
  await closeTarget(server);
});

test('26: credits that come after local EOF still drain the queue before disconnect; without them the drain gives up', async () => {
  const reply = randomBytes(12 * 32 * 1024);
  const server = await target(source(reply));
  const { backend, open, stop } = await withScriptedRelay({ dialer: () => dialPort(server.port), timing: { drainTimeoutMs: 1500 } });

  const drained = open(8);
  await waitUntil(() => server.closes === 1, 3000, 'the local EOF');
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.is(backend.dataFrames(drained).length, 8);
  assert.not.ok(backend.controls(drained).some((m) => m.event === 'disconnect'), 'no disconnect while frames wait');
  backend.control({ event: 'resume_stream', client_id: drained, credits: 1000 });
  await waitUntil(() => backend.controls(drained).some((m) => m.event === 'disconnect'), 3000, 'the disconnect');
  assert.ok(Buffer.concat(backend.dataFrames(drained)).equals(reply));
  const last = backend.frames.filter((f) => (f.kind === 'data' ? f.clientId : f.kind === 'control' ? f.message.client_id : '') === drained).at(-1)!;
  assert.equal(last.kind === 'control' && last.message, { event: 'disconnect', client_id: drained, reason: 'normal' });

  const started = Date.now();
  const starved = open(8);
  await waitUntil(() => backend.controls(starved).some((m) => m.event === 'disconnect'), 5000, 'the give-up');
  const waited = Date.now() - started;
  assert.ok(waited >= 1400 && waited < 3500, `gave up after ${waited} ms (drain timeout 1500 ms)`);
  assert.is(backend.dataFrames(starved).length, 8, 'never beyond its credits');
  await stop();
  await closeTarget(server);
});

// ---- keepalive and reauth ----

test('30: a relay gone silent is declared dead within two ping intervals, then retried with backoff', async () => {
  const { relay, client, backend: first, stop } = await withScriptedRelay(
    { timing: { pingIntervalMs: 300, readDeadlineMs: 600 }, backoff: new Backoff({ initialMs: 200, maxMs: 1000, stableMs: 30_000, jitter: 'full', random: () => 1 }) },
    { autoPong: false },
  );
  const openedAt = Date.now();
  let pings = 0;
  first.ws.on('ping', () => pings++);
  await first.closed;
  const lived = Date.now() - openedAt;
  assert.ok(lived >= 500 && lived < 1200, `declared dead after ${lived} ms (deadline 600 ms)`);
  assert.ok(pings >= 1, 'it pinged before giving up');
  await waitUntil(() => client.status().state === 'backoff' && client.status(), 2000, 'backoff');
  assert.match(client.status().lastError ?? '', /silent/);
  await relay.nextBackend(5000);
  await stop();
});

test('32: reauth_challenge is answered with a fresh token while streams keep flowing', async () => {
  const echoes = await target(echo);
  const setup = await withRelay({ targets: { 'echo.test': echoes.port }, rules: { reauthIntervalSeconds: 0.5 } });
  const { socket: user, head } = httpUser(setup, 'echo.test');
  let received = 0;
  user.on('data', (chunk: Buffer) => (received += chunk.length));
  let sent = head.length;
  for (let round = 0; round < 12; round++) {
    const payload = randomBytes(4096);
    user.write(payload);
    sent += payload.length;
    await waitUntil(() => received === sent, 3000, `echo round ${round}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const reauths = setup.relayLog.filter((line) => line.includes('backend re-authenticated')).length;
  assert.ok(reauths >= 2, `${reauths} re-authentications`);
  assert.is(setup.closed.length, 0, 'never dropped');
  assert.is(setup.registered.length, 1);
  user.destroy();
  await setup.stop();
  await closeTarget(echoes);
});

// ---- the production dialer ----

test('the proxy dialer starts each stream with a PROXY v2 header naming the end user, on the ingress the router chose', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'piccolo-tunnel-ingress-'));
  const received: Record<string, Buffer[]> = { tls: [], http: [] };
  const servers = (['tls', 'http'] as const).map((ingress) => {
    const server = net.createServer((socket) => socket.on('data', (chunk: Buffer) => received[ingress]!.push(chunk)));
    server.listen(path.join(dir, `${ingress}.sock`));
    return server;
  });
  await Promise.all(servers.map((server) => once(server, 'listening')));
  const setup = await withRelay({ targets: {}, client: { dialer: proxyIngressDialer({ tls: path.join(dir, 'tls.sock'), http: path.join(dir, 'http.sock') }) }, waitRegistered: false });
  await setup.client.update(table({ 'app.test': 'local' }, `wss://localhost:${setup.relay.hubPort}/connect`));
  await waitUntil(() => setup.registered.length > 0, 10_000, 'registered');
  const { socket: user, head } = httpUser(setup, 'app.test', Buffer.from('body'));
  await waitUntil(() => Buffer.concat(received.http!).length >= 28 + head.length + 4, 5000, 'the HTTP ingress');
  const bytes = Buffer.concat(received.http!);
  const header = V2ProxyProtocol.parse(bytes.subarray(0, 28));
  const address = header.proxyAddress as IPv4ProxyAddress;
  assert.equal([address.sourceAddress.address.join('.'), address.sourcePort, address.destinationPort], ['127.0.0.1', user.localPort, setup.relay.relayPorts[1]]);
  assert.ok(bytes.subarray(28).equals(Buffer.concat([head, Buffer.from('body')])));
  assert.is(received.tls!.length, 0);
  user.destroy();
  await setup.stop();
  for (const server of servers) server.close();
  await rm(dir, { recursive: true, force: true });
});

test.run();
