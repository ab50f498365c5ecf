// The relay against the server-side cases of §8 (shared/notes/nexus-protocol.md), played by a raw
// scripted `ws` backend and real loopback users (net, tls), never by our tunnel client: each case
// sends exact bytes and checks exactly what the relay answers, closes or withholds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { createLogger } from '../../services/common/logger.js';
import { LocalCa } from '../../services/proxy/local-ca.js';
import { Relay, type RelayOptions } from '../../services/relay/relay.js';
import { CREDIT_WINDOW, MAX_BACKEND_MESSAGE, decodeFrame, encodeControl, encodeData, type ControlMessage, type Frame } from '../../services/tunnel/protocol.js';
import { freePort } from '../../image/qemu.js';
import { waitFor } from '../support/processes.js';

const SECRET = 'relay-conformance-secret';
const ca = await LocalCa.create('relay conformance');
const hubTls = await ca.issue(['localhost', '127.0.0.1']);
// RELAY_LOG=1 shows the relay's log while debugging a case.
const quiet = createLogger({ service: 'relay', level: 'debug', write: process.env.RELAY_LOG ? (line) => void process.stderr.write(line) : () => {} });

// ---- harness ----

const running: { relays: Relay[]; sockets: { destroy(): void }[] } = { relays: [], sockets: [] };

async function startRelay(options: Partial<RelayOptions> = {}): Promise<Relay> {
  const relay = new Relay({ hub: { host: '127.0.0.1', port: 0 }, tls: hubTls, secret: SECRET, relayPorts: [0, 0], logger: quiet, ...options });
  await relay.start();
  running.relays.push(relay);
  return relay;
}

test.after.each(async () => {
  for (const socket of running.sockets.splice(0)) socket.destroy();
  for (const relay of running.relays.splice(0)) await relay.stop();
});

function token(claims: Record<string, unknown>): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: 'authorizer', aud: 'nexus', sub: 'conformance', iat, exp: iat + 30, weight: 1, ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode(SECRET));
}

/** A backend played by hand: every text and frame the relay sends is recorded in order. */
class RawBackend {
  readonly texts: string[] = [];
  readonly frames: Frame[] = [];
  pings = 0;
  readonly closed: Promise<{ code: number; reason: string }>;
  closeCode: number | undefined;

  constructor(readonly ws: WebSocket) {
    running.sockets.push({ destroy: () => ws.terminate() });
    ws.on('message', (data: Buffer, isBinary: boolean) => (isBinary ? this.frames.push(decodeFrame(data)) : this.texts.push(data.toString('utf8'))));
    ws.on('ping', () => this.pings++);
    ws.on('error', () => {});
    this.closed = once(ws, 'close').then(([code, reason]) => {
      this.closeCode = code as number;
      return { code: code as number, reason: String(reason) };
    });
  }

  static async open(relay: Relay, options: WebSocket.ClientOptions = {}, path = '/connect'): Promise<RawBackend> {
    const ws = new WebSocket(`wss://127.0.0.1:${relay.hubPort}${path}`, { ca: ca.root.cert, ...options });
    const backend = new RawBackend(ws);
    await within(once(ws, 'open'), 'backend open');
    return backend;
  }

  /** The n-th challenge of a type (0-based), once it has come. */
  challenge(type: 'handshake_challenge' | 'reauth_challenge', n = 0): Promise<string> {
    return waitFor(() => this.texts.map((t) => JSON.parse(t)).filter((m) => m.type === type)[n]?.nonce as string | undefined, 3000, `${type} #${n}`);
  }

  controls(event?: string, clientId?: string): ControlMessage[] {
    return this.frames.flatMap((f) => (f.kind === 'control' && (!event || f.message.event === event) && (!clientId || f.message.client_id === clientId) ? [f.message] : []));
  }

  dataFrames(clientId: string): Buffer[] {
    return this.frames.flatMap((f) => (f.kind === 'data' && f.clientId === clientId ? [f.payload] : []));
  }

  /** The n-th connect (0-based), once it has come. */
  connect(n = 0): Promise<ControlMessage> {
    return waitFor(() => this.controls('connect')[n], 3000, `connect #${n}`);
  }

  control(message: ControlMessage): void {
    this.ws.send(encodeControl(message));
  }

  data(clientId: string, payload: Buffer): void {
    this.ws.send(encodeData(clientId, payload));
  }
}

const claims = { hostnames: ['app.test'] };

/** A backend through both stages; stage1 adds to (or overrides) the stage 0 claims. */
async function register(relay: Relay, stage0: Record<string, unknown> = claims, stage1: Record<string, unknown> = {}, options?: WebSocket.ClientOptions): Promise<RawBackend> {
  const backend = await RawBackend.open(relay, options);
  const registered = once(relay.events, 'registered');
  backend.ws.send(await token(stage0));
  const nonce = await backend.challenge('handshake_challenge');
  backend.ws.send(await token({ ...stage0, session_nonce: nonce, ...stage1 }));
  await within(registered, 'registered');
  return backend;
}

/** Sends stage 0 and a stage 1 built from the nonce; resolves with how the relay closed. */
async function rejection(relay: Relay, stage0: Record<string, unknown>, stage1?: (nonce: string) => Record<string, unknown>) {
  const backend = await RawBackend.open(relay);
  backend.ws.send(await token(stage0));
  if (stage1) backend.ws.send(await token(stage1(await backend.challenge('handshake_challenge'))));
  return within(backend.closed, 'the relay closing the backend');
}

function user(port: number, bytes?: string | Buffer): net.Socket {
  // Half-open allowed, as a real client may be: the relay, not the user, decides when it closes.
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => bytes !== undefined && socket.write(bytes));
  socket.on('error', () => {});
  running.sockets.push(socket);
  return socket;
}

function tlsUser(port: number, servername?: string): tls.TLSSocket {
  const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
  socket.on('error', () => {});
  running.sockets.push(socket);
  return socket;
}

function received(socket: net.Socket): { bytes: () => Buffer; ended: Promise<unknown>; closed: Promise<unknown> } {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  // Not events.once: it rejects on 'error', and a refused TLS user errors on its way to 'close'.
  const on = (event: string) => new Promise((resolve) => socket.once(event, resolve));
  return { bytes: () => Buffer.concat(chunks), ended: on('end'), closed: on('close') };
}

/** Awaits a promise, failing the test after ms instead of hanging it. */
function within<T>(promise: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const head = (host: string) => `GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`;

// ---- handshake (1, 3, 4, 5) ----

test('1: stage 0, a 43-character base64url challenge, stage 1 with its nonce; registered and routed at once', async () => {
  const relay = await startRelay();
  const backend = await RawBackend.open(relay);
  const registered = once(relay.events, 'registered');
  backend.ws.send(await token({ hostnames: ['App.Test.', 'app.test'] }));
  const nonce = await backend.challenge('handshake_challenge');
  assert.match(nonce, /^[A-Za-z0-9_-]{43}$/);
  backend.ws.send(await token({ hostnames: ['App.Test.', 'app.test'], session_nonce: nonce }));
  const [event] = await within(registered, 'registered');
  assert.equal({ hostnames: event.hostnames, tcpPorts: event.tcpPorts }, { hostnames: ['app.test'], tcpPorts: [] });

  // No acknowledgement exists; the first thing after registration may be a connect.
  const alice = user(relay.relayPorts[0]!, head('app.test'));
  const connect = await backend.connect();
  assert.equal(connect, {
    event: 'connect',
    client_id: connect.client_id,
    conn_port: relay.relayPorts[0],
    client_ip: `127.0.0.1:${alice.localPort}`,
    transport: 'tcp',
    hostname: 'app.test',
    credits: CREDIT_WINDOW,
  });
  await waitFor(() => backend.dataFrames(connect.client_id).length > 0, 2000, 'prelude');
  assert.is(backend.dataFrames(connect.client_id)[0]!.toString(), head('app.test'));
  assert.equal(relay.backends(), [{ id: event.backendId, hostnames: ['app.test'], tcpPorts: [], streams: 1 }]);
  // Frames before the connect: none; nothing but binary after the challenge.
  assert.is(backend.texts.length, 1);
  assert.is(backend.frames[0]!.kind, 'control');

  // A second backend gets another nonce.
  const other = await RawBackend.open(relay);
  other.ws.send(await token(claims));
  assert.is.not(await other.challenge('handshake_challenge'), nonce);
});

test('1: the hub serves exactly /connect (a query is ignored, /connect/ is 404), and picks no subprotocol', async () => {
  const relay = await startRelay();
  const status = await within(new Promise<number>((resolve) => {
    const ws = new WebSocket(`wss://127.0.0.1:${relay.hubPort}/connect/`, { ca: ca.root.cert });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode!));
    ws.on('error', () => {});
  }), '404 for /connect/');
  assert.is(status, 404);
  const withQuery = await RawBackend.open(relay, {}, '/connect?device=1');
  assert.is(withQuery.ws.protocol, '');
  const offered = new WebSocket(`wss://127.0.0.1:${relay.hubPort}/connect`, ['nexus'], { ca: ca.root.cert });
  const [err] = (await within(once(offered, 'error'), 'subprotocol error')) as [Error];
  assert.match(err.message, /Server sent no subprotocol/);
});

test('3: each handshake rejection is Close 1008 with the reason', async () => {
  const port = await freePort();
  const relay = await startRelay({ relayPorts: [port], allowedTcpPortClaims: [port] });
  const rejected: string[] = [];
  relay.events.on('rejected', ({ reason }) => rejected.push(reason));
  const now = Math.floor(Date.now() / 1000);
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['expired', { ...claims, exp: now - 1 }, /^stage0 token validation failed: jwt validation failed: "exp" claim/],
    ['wrong iss', { ...claims, iss: 'someone-else' }, /jwt validation failed: unexpected "iss" claim value/],
    ['wrong aud', { ...claims, aud: 'not-nexus' }, /jwt validation failed: unexpected "aud" claim value/],
    ['iat too old', { ...claims, iat: now - 120, handshake_max_age_seconds: 60 }, /^stage0 token too old/],
    ['port not allowed', { tcp_ports: [port + 1] }, new RegExp(`^tcp port ${port + 1} is not in allowedTCPPortClaims$`)],
    ['tcp:53 hostname', { hostnames: ['tcp:53'] }, /^invalid hostname claim "tcp:53"/],
    ['no claims', { weight: 1 }, /^stage0 token missing hostnames and port claims$/],
  ];
  for (const [name, stage0, reason] of cases) {
    const closed = await rejection(relay, stage0);
    assert.is(closed.code, 1008, name);
    assert.match(closed.reason, reason, name);
  }
  const binary = await RawBackend.open(relay);
  binary.ws.send(encodeControl({ event: 'ping_client', client_id: '00000000-0000-4000-8000-000000000000' }));
  assert.equal(await within(binary.closed, 'binary closed'), { code: 1008, reason: 'unexpected binary message during handshake' });
  // A binary message after the challenge is refused the same way.
  const late = await RawBackend.open(relay);
  late.ws.send(await token(claims));
  await late.challenge('handshake_challenge');
  late.ws.send(Buffer.from([1]));
  assert.is((await within(late.closed, 'late closed')).code, 1008);
  assert.is(rejected.length, cases.length + 2);
  assert.equal(relay.backends(), []);
});

test('4: stage 1 must repeat the claims and the nonce (1008, or 1006 when the reason is too long to send)', async () => {
  const port = await freePort();
  const relay = await startRelay({ relayPorts: [port], allowedTcpPortClaims: [port] });
  const base = { hostnames: ['app.test'], tcp_ports: [port], weight: 2 };
  const cases: [string, (nonce: string) => Record<string, unknown>, number, string | RegExp][] = [
    ['hostnames', (n) => ({ ...base, hostnames: ['app.test', 'more.test'], session_nonce: n }), 1008, 'attested token hostnames differ from handshake token'],
    ['ports', (n) => ({ ...base, tcp_ports: [], hostnames: ['app.test'], session_nonce: n }), 1008, 'attested token tcp_ports differ from handshake token'],
    ['weight', (n) => ({ ...base, weight: 5, session_nonce: n }), 1008, 'attested token weight differs from handshake token'],
    ['missing nonce', () => base, 1008, /^session nonce mismatch: expected [A-Za-z0-9_-]{43} got $/],
    // "session nonce mismatch: expected <43> got <43>" is 124 bytes: no Close frame, as Go does.
    ['wrong nonce', () => ({ ...base, session_nonce: 'x'.repeat(43) }), 1006, ''],
  ];
  for (const [name, stage1, code, reason] of cases) {
    const closed = await rejection(relay, base, stage1);
    assert.is(closed.code, code, name);
    if (typeof reason === 'string') assert.is(closed.reason, reason, name);
    else assert.match(closed.reason, reason, name);
  }
  // Weight 0 in stage 1 means unchanged: accepted.
  await register(relay, base, { weight: 0 });
  assert.is(relay.backends().length, 1);
});

test('5: silence for the auth timeout after the upgrade, and again after the challenge, closes the socket', async () => {
  const relay = await startRelay({ rules: { authTimeoutMs: 300 } });
  const started = Date.now();
  const silent = await RawBackend.open(relay);
  assert.equal(await within(silent.closed, 'silent closed'), { code: 1008, reason: 'stage0 token not received within the auth timeout' });
  assert.ok(Date.now() - started >= 290, 'not before the timeout');

  const halfway = await RawBackend.open(relay);
  halfway.ws.send(await token(claims));
  await halfway.challenge('handshake_challenge');
  const challenged = Date.now();
  assert.equal(await within(halfway.closed, 'halfway closed'), { code: 1008, reason: 'stage1 token not received within the auth timeout' });
  assert.ok(Date.now() - challenged >= 250);
});

// ---- routing (10, 11) ----

test('10: a *.example.com claim gets a.example.com (actual name, TLS or HTTP), never a.b.example.com or the apex', async () => {
  const relay = await startRelay();
  const backend = await register(relay, { hostnames: ['*.example.com'] });
  user(relay.relayPorts[1]!, head('A.Example.com:8480'));
  assert.equal([(await backend.connect(0)).hostname, (await backend.connect(0)).is_tls], ['a.example.com', undefined]);
  tlsUser(relay.relayPorts[0]!, 'b.example.com');
  const tlsConnect = await backend.connect(1);
  assert.equal([tlsConnect.hostname, tlsConnect.is_tls], ['b.example.com', true]);
  await waitFor(() => backend.dataFrames(tlsConnect.client_id)[0], 2000, 'ClientHello prelude');
  assert.is(backend.dataFrames(tlsConnect.client_id)[0]![0], 0x16, 'the ClientHello is the prelude');

  for (const name of ['a.b.example.com', 'example.com']) {
    const refused = received(user(relay.relayPorts[1]!, head(name)));
    await within(refused.ended, 'refused ended');
    assert.is(refused.bytes().length, 0, name);
  }
  assert.is(backend.controls('connect').length, 2);
});

test('11: without SNI or Host the route is tcp:N (is_tls only for a hello without SNI); a name never falls back to the port', async () => {
  const [claimed, unclaimed] = [await freePort(), await freePort()];
  const relay = await startRelay({ relayPorts: [claimed, unclaimed], allowedTcpPortClaims: [claimed] });
  const backend = await register(relay, { tcp_ports: [claimed] });
  user(claimed, Buffer.from([0, 1, 2, 3]));
  const raw = await backend.connect(0);
  assert.equal([raw.hostname, raw.is_tls, raw.conn_port], [`tcp:${claimed}`, undefined, claimed]);
  await waitFor(() => backend.dataFrames(raw.client_id)[0], 2000, 'raw prelude');
  assert.equal(backend.dataFrames(raw.client_id)[0], Buffer.from([0, 1, 2, 3]));

  tlsUser(claimed); // an IP address: node sends no SNI
  const hello = await backend.connect(1);
  assert.equal([hello.hostname, hello.is_tls], [`tcp:${claimed}`, true]);

  const named = received(tlsUser(claimed, 'nobody.test'));
  await within(named.closed, 'named closed');
  const otherPort = received(user(unclaimed, Buffer.from([0, 1])));
  await within(otherPort.ended, 'otherPort ended');
  assert.is(backend.controls('connect').length, 2);
});

test('sniffing: at most 256 users at once; the others wait their turn, none is dropped (v0.3.12)', async () => {
  const port = await freePort();
  const relay = await startRelay({ relayPorts: [port], allowedTcpPortClaims: [port], rules: { sniffFirstByteMs: 150, sniffExtensionMs: 150, sniffCapMs: 1000 } });
  const backend = await register(relay, { tcp_ports: [port] });
  const connectedAfter: number[] = [];
  relay.events.on('frame', ({ frame }) => frame.kind === 'control' && frame.message.event === 'connect' && connectedAfter.push(Date.now() - started));
  const started = Date.now();
  // Silent users: each sniff ends at its deadline (2 × 150 ms), then takes the port claim.
  for (let i = 0; i < 300; i++) user(port);
  await waitFor(() => backend.controls('connect').length === 300, 5000, '300 connects');
  // The 257th user's sniff began only when one of the first 256 ended: a whole deadline later.
  assert.ok(connectedAfter[256]! - connectedAfter[0]! >= 250, `257th connect ${connectedAfter[256]! - connectedAfter[0]!} ms after the first`);
});

test('backends claiming one name share it by weight; the prelude of a 60 KiB HTTP head is one frame', async () => {
  const relay = await startRelay();
  const heavy = await register(relay, { ...claims, weight: 2 });
  const light = await register(relay, { ...claims, weight: 1 });
  for (let i = 0; i < 6; i++) {
    user(relay.relayPorts[1]!, head('app.test'));
    await waitFor(() => heavy.controls('connect').length + light.controls('connect').length === i + 1, 2000, `user ${i}`);
  }
  assert.equal([heavy.controls('connect').length, light.controls('connect').length], [4, 2]);

  const bigHead = `GET / HTTP/1.1\r\nHost: app.test\r\nX-Pad: ${'p'.repeat(60 * 1024)}\r\n\r\n`;
  user(relay.relayPorts[1]!, bigHead);
  await waitFor(() => heavy.controls('connect').length + light.controls('connect').length === 7, 2000, 'the big head');
  const chosen = heavy.controls('connect').length === 5 ? heavy : light;
  const { client_id: id } = chosen.controls('connect').at(-1)!;
  await waitFor(() => chosen.dataFrames(id)[0], 2000, 'prelude');
  assert.is(chosen.dataFrames(id)[0]!.toString(), bigHead, 'the whole head in the first frame, above 32 KiB');
});

test('a user idle (nothing read or written) for idleTimeoutSeconds is closed with disconnect; traffic keeps it', async () => {
  const relay = await startRelay({ idleTimeoutSeconds: 0.3 });
  const backend = await register(relay);
  const idle = received(user(relay.relayPorts[1]!, head('app.test')));
  const busy = user(relay.relayPorts[1]!, head('app.test'));
  const { client_id: idleId } = await backend.connect(0);
  const { client_id: busyId } = await backend.connect(1);
  const ticking = setInterval(() => busy.write('tick'), 100);
  try {
    await waitFor(() => backend.controls('disconnect', idleId)[0], 2000, 'disconnect of the idle user');
    await within(idle.ended, 'idle user closed');
    await sleep(500);
    assert.is(backend.controls('disconnect', busyId).length, 0, 'the busy user stays');
  } finally {
    clearInterval(ticking);
  }
});

// ---- limits and disconnects (15, 18) ----

test('15: a message of 32,785 bytes is accepted, one byte more gets Close 1009', async () => {
  const relay = await startRelay();
  const backend = await register(relay);
  const unknown = '11111111-2222-4333-8444-555555555555';
  backend.data(unknown, Buffer.alloc(MAX_BACKEND_MESSAGE - 17)); // DATA for an unknown id: dropped silently
  await sleep(200);
  assert.is(backend.closeCode, undefined);
  assert.equal(backend.frames, [], 'no answer to DATA for an unknown id');
  const closedEvent = once(relay.events, 'closed');
  backend.data(unknown, Buffer.alloc(MAX_BACKEND_MESSAGE - 16));
  assert.is((await within(backend.closed, 'backend closed')).code, 1009);
  assert.is((await within(closedEvent, 'closedEvent'))[0].code, 1009);
  assert.equal(relay.backends(), []);
});

test('18: a user FIN becomes disconnect (no half-open stream); a backend disconnect flushes, half-closes, closes after 2 s', async () => {
  const relay = await startRelay();
  const backend = await register(relay);
  const alice = user(relay.relayPorts[1]!, head('app.test'));
  const aliceSees = received(alice);
  const first = await backend.connect(0);
  alice.end();
  await waitFor(() => backend.controls('disconnect', first.client_id)[0], 2000, 'disconnect after FIN');
  assert.equal(backend.controls('disconnect', first.client_id), [{ event: 'disconnect', client_id: first.client_id }]);
  await within(aliceSees.closed, 'aliceSees closed');
  backend.data(first.client_id, Buffer.from('too late'));
  await sleep(100);
  assert.is(aliceSees.bytes().length, 0, 'nothing reaches a user after its stream ended');
  assert.is(relay.backends()[0]!.streams, 0);

  const bob = user(relay.relayPorts[1]!, head('app.test'));
  const bobSees = received(bob);
  const second = await backend.connect(1);
  backend.data(second.client_id, Buffer.from('HTTP/1.1 200 OK\r\n\r\n'));
  backend.data(second.client_id, Buffer.from('last words'));
  backend.control({ event: 'disconnect', client_id: second.client_id, reason: 'normal' });
  await within(bobSees.ended, 'bobSees ended');
  const endedAt = Date.now();
  assert.is(bobSees.bytes().toString(), 'HTTP/1.1 200 OK\r\n\r\nlast words', 'flushed before the FIN');
  assert.ok(!bob.destroyed && bob.writable, 'half-closed: bob may still write');
  // What bob sends now is discarded; once the relay has closed fully, a write meets a reset.
  const writing = setInterval(() => bob.writable && bob.write('ignored'), 50);
  await within(bobSees.closed, 'bobSees closed');
  clearInterval(writing);
  const graceMs = Date.now() - endedAt;
  assert.ok(graceMs > 1700 && graceMs < 4500, `closed ${graceMs} ms after the half-close`);
  assert.is(backend.controls('disconnect', second.client_id).length, 0, 'no disconnect echoed to the backend');
});

// ---- credits (23, 24, 27) ----

test('23: reverse credits: connect grants 64, every 8 frames written to the user return credits:8; replenishBatch 0 and grantCredits 0 withhold them', async () => {
  const run = async (rules: RelayOptions['rules']) => {
    const relay = await startRelay({ rules });
    const backend = await register(relay);
    const alice = received(user(relay.relayPorts[1]!, head('app.test')));
    const { client_id: id, credits } = await backend.connect();
    for (let i = 0; i < 20; i++) backend.data(id, Buffer.from(`frame ${String(i).padStart(2, '0')};`));
    await waitFor(() => alice.bytes().length === 20 * 'frame 00;'.length, 2000, 'all 20 frames at the user');
    await sleep(100);
    assert.is(alice.bytes().toString(), Array.from({ length: 20 }, (_, i) => `frame ${String(i).padStart(2, '0')};`).join(''), 'in order');
    return { credits, grants: backend.controls('resume_stream', id).map((m) => m.credits) };
  };
  assert.equal(await run({}), { credits: 64, grants: [8, 8] }, 'leftover 4 frames are not granted back');
  assert.equal(await run({ replenishBatch: 0 }), { credits: 64, grants: [] });
  assert.equal(await run({ grantCredits: 0 }), { credits: undefined, grants: [] });
});

test('24: forward credits: free until the first grant, then exactly the grant, capped at max(grant, 64)', async () => {
  const relay = await startRelay();
  const backend = await register(relay);
  const alice = user(relay.relayPorts[1]!, head('app.test'));
  const { client_id: id } = await backend.connect();
  await waitFor(() => backend.dataFrames(id).length === 1, 2000, 'the prelude, before any grant');
  backend.control({ event: 'resume_stream', client_id: id, credits: 8 });
  await sleep(100);
  const upload = Buffer.alloc(8 * 1024 * 1024, 'u');
  for (let i = 0; i < upload.length; i += 4096) upload.writeUInt32BE(i, i);
  alice.write(upload);
  const settled = async (frames: number) => {
    await waitFor(() => backend.dataFrames(id).length >= 1 + frames, 3000, `${frames} frames`);
    await sleep(250);
    return backend.dataFrames(id).length - 1;
  };
  assert.is(await settled(8), 8, 'exactly the 8 granted');
  backend.control({ event: 'resume_stream', client_id: id, credits: 8 });
  assert.is(await settled(16), 16);
  // A grant above the capacity (max(8, 64) = 64 tokens) is cut to it.
  backend.control({ event: 'resume_stream', client_id: id, credits: 1000 });
  assert.is(await settled(80), 80);
  assert.ok(backend.dataFrames(id).every((frame) => frame.length <= 32 * 1024), 'data frames carry at most 32 KiB');
  const total = () => backend.dataFrames(id).slice(1).reduce((sum, frame) => sum + frame.length, 0);
  while (total() < upload.length) {
    backend.control({ event: 'resume_stream', client_id: id, credits: 64 });
    await sleep(20);
  }
  assert.ok(Buffer.concat(backend.dataFrames(id).slice(1)).equals(upload), 'byte-exact and in order');
});

test('27: a backend within its window is never cut off; one that floods a stalled user past 128 queued frames is, with disconnect', async () => {
  const relay = await startRelay();
  const backend = await register(relay);
  const stalled = user(relay.relayPorts[1]!, head('app.test'));
  stalled.pause(); // never reads: the kernel buffers fill, then the relay's queue
  const stalledSees = received(stalled);
  const { client_id: id } = await backend.connect();
  const frame = Buffer.alloc(32 * 1024);
  for (let i = 0; i < CREDIT_WINDOW; i++) backend.data(id, frame);
  await sleep(300);
  assert.is(backend.controls('disconnect', id).length, 0, 'the 64-frame window fits the 128-frame queue');
  let sent = CREDIT_WINDOW;
  while (!backend.controls('disconnect', id).length && sent < 3000) {
    for (let i = 0; i < 50; i++) backend.data(id, frame);
    sent += 50;
    await sleep(10);
  }
  assert.equal(backend.controls('disconnect', id), [{ event: 'disconnect', client_id: id }]);
  assert.is(relay.backends()[0]!.streams, 0);
  // The relay closed the user: reading on, it finds the end of what was buffered.
  stalled.resume();
  await within(stalledSees.ended, 'stalledSees ended');
});

test('27: starved of forward credits for the idle timeout drops the user; never granting means unlimited', async () => {
  const relay = await startRelay({ idleTimeoutSeconds: 0.4 });
  const backend = await register(relay);
  const starved = user(relay.relayPorts[1]!, head('app.test'));
  const starvedSees = received(starved);
  const { client_id: starvedId } = await backend.connect(0);
  backend.control({ event: 'resume_stream', client_id: starvedId, credits: 1 });
  await sleep(50);
  starved.write(Buffer.alloc(512 * 1024));
  await waitFor(() => backend.dataFrames(starvedId).length === 2, 2000, 'the one granted frame');
  const stalledAt = Date.now();
  await waitFor(() => backend.controls('disconnect', starvedId)[0], 3000, 'disconnect of the starved user');
  assert.ok(Date.now() - stalledAt >= 300, 'not before the idle timeout');
  assert.is(backend.dataFrames(starvedId).length, 2, 'nothing beyond the grant');
  await within(starvedSees.closed, 'starvedSees closed');

  const free = user(relay.relayPorts[1]!, head('app.test'));
  const { client_id: freeId } = await backend.connect(1);
  free.write(Buffer.alloc(4 * 1024 * 1024, 'f'));
  await waitFor(() => backend.dataFrames(freeId).slice(1).reduce((n, f) => n + f.length, 0) === 4 * 1024 * 1024, 5000, '4 MiB with no grant');
  assert.ok(backend.dataFrames(freeId).length > 2 * CREDIT_WINDOW, 'far more frames than any window');
  assert.is(backend.controls('disconnect', freeId).length, 0);
});

test('a backend that stops reading pauses its users (bounded memory) until it reads again; one stalled past writeTimeoutMs is dropped', async () => {
  const relay = await startRelay({ rules: { writeTimeoutMs: 5000 } });
  const backend = await register(relay);
  let relayed = 0;
  relay.events.on('frame', ({ from, frame }) => from === 'relay' && frame.kind === 'data' && (relayed += frame.payload.length));
  const alice = user(relay.relayPorts[1]!, head('app.test'));
  const { client_id: id } = await backend.connect();
  await waitFor(() => backend.dataFrames(id).length === 1, 2000, 'prelude');
  backend.ws.pause();
  const upload = Buffer.alloc(48 * 1024 * 1024);
  for (let i = 0; i < upload.length; i += 4096) upload.writeUInt32BE(i, i);
  alice.write(upload);
  await sleep(800);
  assert.ok(relayed < 24 * 1024 * 1024, `the relay took only ${relayed} of ${upload.length} bytes while the backend read nothing`);
  backend.ws.resume();
  const total = () => backend.dataFrames(id).slice(1).reduce((n, frame) => n + frame.length, 0);
  await waitFor(() => total() === upload.length, 10_000, 'the whole upload after the backend reads again');
  assert.ok(Buffer.concat(backend.dataFrames(id).slice(1)).equals(upload), 'byte-exact');

  const strict = await startRelay({ rules: { writeTimeoutMs: 300 } });
  const stuck = await register(strict);
  const bob = user(strict.relayPorts[1]!, head('app.test'));
  await stuck.connect();
  stuck.ws.pause();
  const closed = once(strict.events, 'closed');
  bob.write(upload);
  const stalledAt = Date.now();
  assert.is((await within(closed, 'stuck backend dropped'))[0].code, 1006);
  assert.ok(Date.now() - stalledAt >= 250, 'not before the write timeout');
});

// ---- UDP (28) ----

async function udpUser(): Promise<{ socket: dgram.Socket; received: Buffer[] }> {
  const socket = dgram.createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (datagram) => received.push(datagram));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  running.sockets.push({ destroy: () => socket.close() });
  return { socket, received };
}

test('28: UDP flows: connect{transport:udp, hostname:udp:N}, 500 datagrams one frame each, replies as single datagrams with credits back, idle expiry', async () => {
  const probe = await udpUser();
  const port = probe.socket.address().port; // a free UDP port, handed to the relay
  probe.socket.close();
  running.sockets.pop();
  const relay = await startRelay({ udpRelayPorts: [port], allowedUdpPortClaims: [port], rules: { udpIdleMaxSeconds: 0.5, udpSweepMs: 100 } });
  assert.equal(relay.udpRelayPorts, [port]);
  const backend = await register(relay, { udp_routes: [{ port, flow_idle_timeout_seconds: 60 }] });
  const alice = await udpUser();
  const send = (text: string | Buffer) => new Promise((resolve) => alice.socket.send(text, port, '127.0.0.1', resolve));
  await send('datagram 0');
  const connect = await backend.connect();
  assert.equal(connect, { event: 'connect', client_id: connect.client_id, conn_port: port, client_ip: `127.0.0.1:${alice.socket.address().port}`, transport: 'udp', hostname: `udp:${port}`, credits: CREDIT_WINDOW });
  const id = connect.client_id;
  for (let i = 1; i < 500; i++) {
    await send(`datagram ${i}`);
    if (i % 50 === 0) await sleep(5);
  }
  await waitFor(() => backend.dataFrames(id).length === 500, 3000, '500 datagrams (no grant: unlimited)');
  assert.equal(backend.dataFrames(id).map(String), Array.from({ length: 500 }, (_, i) => `datagram ${i}`));
  // Too large for udpMaxDatagramBytes (2048): dropped.
  await send(Buffer.alloc(3000));
  for (let i = 0; i < 8; i++) backend.data(id, Buffer.from(`reply ${i}`));
  await waitFor(() => alice.received.length === 8, 2000, '8 replies');
  assert.equal(alice.received.map(String), Array.from({ length: 8 }, (_, i) => `reply ${i}`));
  await waitFor(() => backend.controls('resume_stream', id)[0], 2000, 'credits back for 8 replies');
  assert.equal(backend.controls('resume_stream', id), [{ event: 'resume_stream', client_id: id, credits: 8 }]);
  assert.is(backend.dataFrames(id).length, 500, 'the oversized datagram went nowhere');

  // A grant limits the flow: 2 credits, 2 datagrams forwarded, the rest dropped.
  backend.control({ event: 'resume_stream', client_id: id, credits: 2 });
  await sleep(50);
  for (let i = 0; i < 5; i++) await send(`limited ${i}`);
  await sleep(150);
  assert.equal(backend.dataFrames(id).slice(500).map(String), ['limited 0', 'limited 1']);

  // Idle (0.5 s, the clamped claim): disconnect; the next datagram opens a new flow.
  await waitFor(() => backend.controls('disconnect', id)[0], 3000, 'idle expiry');
  assert.equal(backend.controls('disconnect', id), [{ event: 'disconnect', client_id: id }]);
  await send('again');
  const next = await backend.connect(1);
  assert.is.not(next.client_id, id);
  await waitFor(() => backend.dataFrames(next.client_id)[0], 2000, 'the first datagram of the new flow');
  assert.is(String(backend.dataFrames(next.client_id)[0]), 'again');
});

// ---- keepalive and reauth (29, 32, 33) ----

test('29: pings every interval; pongs or messages keep a backend, its own pings do not', async () => {
  const relay = await startRelay({ rules: { pingIntervalMs: 150, readDeadlineMs: 400 } });
  const answering = await register(relay, claims, {}, {});
  const chatty = await register(relay, claims, {}, { autoPong: false });
  const chattyTimer = setInterval(() => chatty.control({ event: 'ping_client', client_id: '00000000-0000-4000-8000-000000000001' }), 100);
  const silent = await register(relay, claims, {}, { autoPong: false });
  const silentStart = Date.now();
  const pinging = await register(relay, claims, {}, { autoPong: false });
  const pingTimer = setInterval(() => pinging.ws.ping(), 100);
  try {
    assert.is((await within(silent.closed, 'silent closed')).code, 1006, 'dropped without a Close frame');
    const silentMs = Date.now() - silentStart;
    assert.ok(silentMs >= 380 && silentMs < 2500, `dropped after ${silentMs} ms`);
    assert.is((await within(pinging.closed, 'pinging closed')).code, 1006, "the backend's own pings do not reset the deadline");
    await sleep(1200);
    assert.is(answering.closeCode, undefined);
    assert.is(chatty.closeCode, undefined);
    assert.ok(answering.pings >= 8, `${answering.pings} pings in about 1.6 s`);
    assert.is(relay.backends().length, 2);
  } finally {
    clearInterval(chattyTimer);
    clearInterval(pingTimer);
  }
});

test('32: reauth: challenge with a fresh nonce, data flows meanwhile, a valid token keeps the session and the cycle goes on', async () => {
  const relay = await startRelay({ rules: { reauthIntervalSeconds: 0.3 } });
  const backend = await register(relay);
  const handshakeNonce = JSON.parse(backend.texts[0]!).nonce;
  const alice = received(user(relay.relayPorts[1]!, head('app.test')));
  const { client_id: id } = await backend.connect();
  const nonce = await backend.challenge('reauth_challenge');
  assert.match(nonce, /^[A-Za-z0-9_-]{43}$/);
  assert.is.not(nonce, handshakeNonce);
  backend.data(id, Buffer.from('while pending'));
  await waitFor(() => alice.bytes().toString() === 'while pending', 2000, 'data during the reauth');
  backend.ws.send(await token({ ...claims, session_nonce: nonce }));
  const next = await backend.challenge('reauth_challenge', 1);
  assert.is.not(next, nonce);
  backend.ws.send(await token({ ...claims, session_nonce: next }));
  await sleep(100);
  assert.is(backend.closeCode, undefined);
  assert.is(relay.backends()[0]!.streams, 1);
});

test('32: the stage 1 token asks for reauth itself (reauth_interval_seconds: 1)', async () => {
  const relay = await startRelay();
  const registeredAt = Date.now();
  const backend = await register(relay, claims, { reauth_interval_seconds: 1 });
  await backend.challenge('reauth_challenge');
  const ms = Date.now() - registeredAt;
  assert.ok(ms >= 950 && ms < 3000, `challenge after ${ms} ms (interval 1 s + up to 20 %)`);
  // Without the claim (or rule) no challenge ever comes.
  const plain = await register(relay);
  await sleep(1300);
  assert.is(plain.texts.length, 1);
});

test('32: a wrong nonce, a late token or changed hostnames ends the backend without a Close frame; its users are half-closed', async () => {
  const relay = await startRelay({ rules: { reauthIntervalSeconds: 0.2 } });
  const wrong = await register(relay);
  const alice = received(user(relay.relayPorts[1]!, head('app.test')));
  const { client_id: aliceId } = await wrong.connect();
  await wrong.challenge('reauth_challenge');
  wrong.ws.send(await token({ ...claims, session_nonce: 'y'.repeat(43) }));
  assert.is((await within(wrong.closed, 'wrong closed')).code, 1006);
  await within(alice.ended, 'alice ended');
  assert.is(wrong.controls('disconnect', aliceId).length, 0, 'no disconnect messages on a fatal error');

  const changed = await register(relay);
  const nonce = await changed.challenge('reauth_challenge');
  changed.ws.send(await token({ hostnames: ['app.test', 'extra.test'], session_nonce: nonce }));
  assert.is((await within(changed.closed, 'changed closed')).code, 1006);

  const late = await register(relay, claims, { reauth_grace_seconds: 1 });
  await late.challenge('reauth_challenge');
  const challengedAt = Date.now();
  assert.is((await within(late.closed, 'late closed')).code, 1006);
  const waited = Date.now() - challengedAt;
  assert.ok(waited >= 900 && waited < 3000, `dropped ${waited} ms after the challenge (grace 1 s)`);
});

test('33: unsolicited text is ignored; ping_client gets pong_client only for a live id', async () => {
  const relay = await startRelay();
  const backend = await register(relay);
  backend.ws.send('{"type":"hello"}');
  backend.ws.send(await token(claims));
  user(relay.relayPorts[1]!, head('app.test'));
  const { client_id: id } = await backend.connect();
  const dead = '99999999-9999-4999-8999-999999999999';
  backend.control({ event: 'ping_client', client_id: dead });
  backend.control({ event: 'ping_client', client_id: id });
  await waitFor(() => backend.controls('pong_client')[0], 2000, 'pong_client');
  await sleep(100);
  assert.equal(backend.controls('pong_client'), [{ event: 'pong_client', client_id: id }]);
  assert.is(backend.closeCode, undefined);
  assert.equal(relay.backends()[0]!.streams, 1);
});

// ---- outbound (34, 35) ----

test('34: outbound_connect to an allowed target: outbound_result{success, credits:64}, no connect, then data both ways under credits', async () => {
  const echo = net.createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  running.sockets.push({ destroy: () => echo.close() });
  const echoPort = (echo.address() as net.AddressInfo).port;
  const relay = await startRelay({ allowOutbound: true, allowedOutboundPorts: [echoPort] });
  const backend = await register(relay, { ...claims, outbound_allowed: true });
  const id = '12345678-1234-4234-8234-123456789abc';
  backend.control({ event: 'outbound_connect', client_id: id, target_addr: `127.0.0.1:${echoPort}` });
  const result = await waitFor(() => backend.controls('outbound_result')[0], 3000, 'outbound_result');
  assert.equal(result, { event: 'outbound_result', client_id: id, success: true, credits: CREDIT_WINDOW });
  backend.control({ event: 'resume_stream', client_id: id, credits: 64 });
  backend.data(id, Buffer.from('hello, outside'));
  await waitFor(() => Buffer.concat(backend.dataFrames(id)).toString() === 'hello, outside', 3000, 'the echo');
  assert.is(backend.controls('connect').length, 0, 'no connect for an outbound stream');
  backend.control({ event: 'disconnect', client_id: id });
  await sleep(50);
  assert.is(relay.backends()[0]!.streams, 0);
});

test('35: refused outbound requests get outbound_result with a reason and no success', async () => {
  const port = await freePort(); // nothing listens there
  const off = await startRelay();
  const refused = await register(off);
  const id = '12345678-1234-4234-8234-123456789abc';
  const ask = async (backend: RawBackend, target: string, n: number) => {
    backend.control({ event: 'outbound_connect', client_id: id, target_addr: target });
    return waitFor(() => backend.controls('outbound_result')[n], 3000, `outbound_result for ${target}`);
  };
  assert.equal(await ask(refused, 'example.com:443', 0), { event: 'outbound_result', client_id: id, reason: 'outbound connections disabled on this proxy' });
  // A token asking for outbound on a relay without it is refused at the handshake.
  assert.equal(await rejection(off, { ...claims, outbound_allowed: true }), { code: 1008, reason: 'outbound_allowed requested but outbound is disabled on this proxy' });

  const on = await startRelay({ allowOutbound: true, allowedOutboundPorts: [port, 443] });
  const limited = await register(on, { ...claims, outbound_allowed: true, allowed_outbound_ports: [port] });
  const reasons: (string | undefined)[] = [];
  for (const [n, target] of ['127.0.0.1:25', '127.0.0.1:443', 'no-port', `127.0.0.1:${port}`].entries()) reasons.push((await ask(limited, target, n)).reason);
  assert.equal(reasons, ['outbound port 25 not allowed by server', 'outbound port 443 not allowed by token', 'invalid target address', 'dial failed']);
  assert.ok(limited.controls('outbound_result').every((m) => m.success === undefined), 'success is left out on failure');
  const plain = await register(on);
  assert.is((await ask(plain, `127.0.0.1:${port}`, 0)).reason, 'outbound connections not allowed for this backend');
});

test('dropBackends() cuts every backend without a Close frame; users are half-closed, the backend may come back', async () => {
  const relay = await startRelay();
  const backend = await register(relay);
  const alice = received(user(relay.relayPorts[1]!, head('app.test')));
  await backend.connect();
  const closedEvent = once(relay.events, 'closed');
  relay.dropBackends();
  assert.is((await within(backend.closed, 'backend closed')).code, 1006);
  assert.is((await within(closedEvent, 'closedEvent'))[0].code, 1006);
  await within(alice.ended, 'alice ended');
  assert.equal(relay.backends(), []);
  await register(relay);
  assert.is(relay.backends().length, 1);
});

test.run();
