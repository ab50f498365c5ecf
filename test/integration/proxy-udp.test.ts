// Raw UDP through the proxy bundle, against a UDP echo on loopback (no Podman): each client
// address:port is its own flow with its own upstream socket, so answers go back to the client that
// asked; flows idle out (a single exchange quickly, a conversation later); the flow caps per client
// address and per listener refuse the excess, counted and logged; ip_allow and connection_limit
// apply per flow; an upstream with nothing behind it gets nothing back and the proxy carries on.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { bundleServices } from '../../image/bundle.js';
import { waitFor } from '../support/processes.js';
import { route, startProxy, type ProxyHarness } from '../support/proxy-harness.js';
import { echoSender, freeUdpPort, udpClient, udpEcho, type UdpClient, type UdpEcho } from '../support/udp.js';

const BRIEF_IDLE_MS = 600;
const IDLE_MS = 2500;
let harness: ProxyHarness;
let echo: UdpEcho;
const ports = { echo: 0, capped: 0, lan: 0, limited: 0, nobody: 0, down: 0, flood: 0 };
const clients: UdpClient[] = [];

async function client(from: string, port: number): Promise<UdpClient> {
  const made = await udpClient(from, port);
  clients.push(made);
  return made;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const refusals = (listener: string) => harness.proxy.logs.filter((l) => l.msg === 'udp flow refused' && l.listener === listener);

test.before(async () => {
  await bundleServices();
  echo = await udpEcho();
  harness = await startProxy({
    PICCOLO_PROXY_UDP_MAX_FLOWS: '5',
    PICCOLO_PROXY_UDP_MAX_FLOWS_PER_CLIENT: '3',
    PICCOLO_PROXY_UDP_BRIEF_IDLE_MS: String(BRIEF_IDLE_MS),
    PICCOLO_PROXY_UDP_IDLE_MS: String(IDLE_MS),
    PICCOLO_PROXY_UDP_TRAFFIC_LOG_MS: '1000',
    PICCOLO_LOG_LEVEL: 'debug',
  });
  for (const name of Object.keys(ports) as (keyof typeof ports)[]) ports[name] = await freeUdpPort();
  const udp = { protocol: 'udp' as const, listener: 'dns' };
  await harness.setRoutes({
    routes: [
      route({ ...udp, app: 'echo', publicPort: ports.echo, hostBindPort: echo.port }),
      route({ ...udp, app: 'capped', publicPort: ports.capped, hostBindPort: echo.port }),
      route({ ...udp, app: 'lan', publicPort: ports.lan, hostBindPort: echo.port, middleware: [{ name: 'ip_allow', params: { cidrs: ['10.0.0.0/8', '127.0.0.3/32'] } }] }),
      route({ ...udp, app: 'limited', publicPort: ports.limited, hostBindPort: echo.port, middleware: [{ name: 'connection_limit', params: { max: 1 } }] }),
      // An app that is not running: nothing listens on its host-bind port.
      route({ ...udp, app: 'down', publicPort: ports.down, hostBindPort: ports.nobody }),
      route({ ...udp, app: 'flood', publicPort: ports.flood, hostBindPort: echo.port }),
    ],
  });
  await waitFor(() => harness.proxy.logs.filter((l) => l.msg === 'listening' && l.protocol === 'udp').length === 6, 5000, 'six udp listeners');
});

test.after(async () => {
  for (const c of clients) c.close();
  await harness?.stop();
  await echo?.close();
});

test('two client addresses, interleaved: each gets its own answers, over its own upstream flow', async () => {
  const a = await client('127.0.0.2', ports.echo);
  const b = await client('127.0.0.3', ports.echo);
  const [a1, b1, a2, b2] = await Promise.all([a.ask('a-1'), b.ask('b-1'), a.ask('a-2'), b.ask('b-2')]);
  assert.match(a1 ?? '', /^echo:a-[12] from /);
  assert.match(a2 ?? '', /^echo:a-[12] from /);
  assert.match(b1 ?? '', /^echo:b-[12] from /);
  assert.match(b2 ?? '', /^echo:b-[12] from /);
  assert.equal(a.received.filter((r) => r.includes('b-')), [], "127.0.0.2 never gets 127.0.0.3's answers");
  assert.equal(b.received.filter((r) => r.includes('a-')), []);
  const upstreamOfA = new Set(a.received.map(echoSender));
  const upstreamOfB = new Set(b.received.map(echoSender));
  assert.is(upstreamOfA.size, 1, 'one flow: the same upstream socket for both of its datagrams');
  assert.is(upstreamOfB.size, 1);
  assert.not.equal([...upstreamOfA][0], [...upstreamOfB][0], 'two clients, two upstream sockets');
  assert.match([...upstreamOfA][0]!, /^127\.0\.0\.1:\d+$/, 'the app sees the proxy on loopback');
});

test('a listener that saw traffic logs its counters', async () => {
  const line = await waitFor(() => harness.proxy.logs.find((l) => l.msg === 'udp traffic' && l.listener === 'echo/dns'), 3000, 'a traffic line');
  assert.ok((line.datagramsIn as number) >= 4 && (line.datagramsOut as number) >= 4, JSON.stringify(line));
  assert.ok((line.flowsOpened as number) >= 2);
  assert.not.ok(harness.proxy.logs.some((l) => l.msg === 'udp traffic' && l.listener === 'down/dns'), 'a quiet listener stays quiet');
});

test('no TCP listener on a udp port', async () => {
  const refused = await new Promise<boolean>((resolve) => {
    const socket = net.connect(ports.echo, '127.0.0.1');
    socket.on('connect', () => (socket.destroy(), resolve(false)));
    socket.on('error', () => resolve(true));
  });
  assert.ok(refused);
});

test('a single exchange idles out after the brief timeout; a conversation only after the long one', async () => {
  const query = await client('127.0.0.2', ports.echo);
  const first = echoSender(await query.ask('q1'));
  await sleep(BRIEF_IDLE_MS + 400);
  const second = echoSender(await query.ask('q2'));
  assert.ok(first && second);
  assert.not.equal(second, first, 'answered once, then idle: a new flow (a new upstream socket)');

  // query has now spoken again after an answer: its new flow is a conversation once it gets a second exchange.
  const third = echoSender(await query.ask('q3'));
  assert.is(third, second, 'same flow while active');
  await sleep(BRIEF_IDLE_MS + 400);
  assert.is(echoSender(await query.ask('q4')), second, 'a conversation outlives the brief timeout');
  await sleep(IDLE_MS + 400);
  assert.not.equal(echoSender(await query.ask('q5')), second, 'and idles out after the long one');
  assert.ok(harness.proxy.logs.some((l) => l.msg === 'udp flow closed' && l.why === 'idle' && l.assured === true), 'logged as an idle conversation');
});

test('the per-client cap refuses the excess flows of one address (counted, logged); another address still gets in', async () => {
  const mine = await Promise.all([1, 2, 3, 4].map(() => client('127.0.0.2', ports.capped)));
  const answers: (string | undefined)[] = [];
  for (const c of mine) answers.push(await c.ask('hello'));
  assert.equal(answers.map((a) => a !== undefined), [true, true, true, false], 'three flows per address, the fourth gets nothing');
  const line = await waitFor(() => refusals('capped/dns').find((l) => l.reason === 'client_full'), 2000, 'a logged refusal');
  assert.is(line.client, '127.0.0.2');
  assert.is((line.totals as Record<string, number>).client_full, 1);
  const other = await client('127.0.0.3', ports.capped);
  assert.ok(await other.ask('hello'), 'another address is not held back by the first one');
  // Once the first flows idle out, there is room again.
  await sleep(BRIEF_IDLE_MS + 400);
  assert.ok(await mine[3]!.ask('again'), 'room again after the idle timeout');
});

test('the listener cap holds whoever asks', async () => {
  await sleep(BRIEF_IDLE_MS + 400);
  const addresses = ['127.0.0.2', '127.0.0.2', '127.0.0.3', '127.0.0.3', '127.0.0.4', '127.0.0.4'];
  const made = await Promise.all(addresses.map((from) => client(from, ports.capped)));
  const answered: boolean[] = [];
  for (const c of made) answered.push((await c.ask('x')) !== undefined);
  assert.equal(answered, [true, true, true, true, true, false], 'five flows on the listener');
  const line = await waitFor(() => refusals('capped/dns').find((l) => l.reason === 'listener_full'), 3000, 'listener_full logged');
  assert.is((line.totals as Record<string, number>).listener_full, 1, 'counted once');
});

test('a flood from hundreds of source ports of one address costs the proxy three sockets; others still get in', async () => {
  const sockets = () => readdirSync(`/proc/${harness.proxy.pid}/fd`).length;
  const before = sockets();
  const flood = await Promise.all(Array.from({ length: 200 }, () => client('127.0.0.6', ports.flood)));
  await Promise.all(flood.map((c) => Promise.all([c.ask('x', 300), c.ask('y', 300), c.ask('z', 300)])));
  const answeredPorts = flood.filter((c) => c.received.length > 0).length;
  assert.is(answeredPorts, 3, 'three source ports answered, the other 197 dropped');
  assert.ok(sockets() <= before + 3, `the proxy holds ${sockets() - before} more sockets`);
  assert.ok(await (await client('127.0.0.7', ports.flood)).ask('me?'), 'another address still gets in');
  const line = await waitFor(() => refusals('flood/dns').find((l) => l.reason === 'client_full'), 2000, 'the flood logged');
  assert.is(refusals('flood/dns').length, 1, 'one log line for the whole flood, not one per datagram');
  assert.is(line.client, '127.0.0.6');
  for (const c of flood) c.close();
  clients.splice(clients.indexOf(flood[0]!), flood.length);
});

test('ip_allow applies per flow: a listed address gets in, another gets nothing', async () => {
  const listed = await client('127.0.0.3', ports.lan);
  const unlisted = await client('127.0.0.2', ports.lan);
  assert.ok(await listed.ask('in'));
  assert.is(await unlisted.ask('in?'), undefined);
  const line = await waitFor(() => refusals('lan/dns')[0], 2000, 'the refusal logged');
  assert.is(line.reason, 'middleware');
});

test('connection_limit caps the flows of a listener', async () => {
  const first = await client('127.0.0.2', ports.limited);
  const second = await client('127.0.0.3', ports.limited);
  assert.ok(await first.ask('1'));
  assert.is(await second.ask('2'), undefined, 'max 1 flow');
  await sleep(BRIEF_IDLE_MS + 400);
  assert.ok(await second.ask('2 again'), 'the first flow idled out and gave its place back');
});

test('nothing behind the host-bind port: nothing comes back, and the proxy carries on', async () => {
  const lost = await client('127.0.0.2', ports.down);
  for (let i = 0; i < 20; i++) assert.is(await lost.ask(`anyone? ${i}`, 50), undefined);
  const alive = await client('127.0.0.3', ports.echo);
  assert.ok(await alive.ask('still there?'));
  assert.not.ok(harness.proxy.logs.some((l) => l.level === 'error'), 'no error logged');
});

test('a route changed to another upstream: flows are reopened to it; a route removed closes its port', async () => {
  const other = await udpEcho();
  try {
    const c = await client('127.0.0.2', ports.echo);
    const sender = echoSender(await c.ask('before'));
    // Another app's route coming and going leaves this route's flows alone.
    const unrelated = route({ protocol: 'udp', listener: 'dns', app: 'unrelated', publicPort: await freeUdpPort(), hostBindPort: other.port });
    await harness.setRoutes({ routes: [...harness.routes.current().routes, unrelated] });
    assert.is(echoSender(await c.ask('unrelated change')), sender, 'the same flow after an unrelated table change');
    const routes = harness.routes.current().routes.map((r) => (r.app === 'echo' ? { ...r, hostBindPort: other.port } : r)).filter((r) => r.app !== 'down' && r.app !== 'unrelated');
    await harness.setRoutes({ routes });
    assert.ok(await c.ask('after'));
    assert.is(other.senders.length, 1, 'the same client, now at the new upstream');
    await waitFor(() => harness.proxy.logs.some((l) => l.msg === 'stopped listening' && l.listener === 'down/dns'), 2000, 'the removed route closed');
  } finally {
    await other.close();
  }
});

test('bound to ::, as dual-stack as the TCP listeners: IPv4 clients (seen unmapped by ip_allow) and IPv6 ones', async () => {
  const dual = await startProxy({ PICCOLO_PROXY_BIND_HOST: '::' });
  try {
    const [open, v4only] = [await freeUdpPort(), await freeUdpPort()];
    await dual.setRoutes({
      routes: [
        route({ protocol: 'udp', listener: 'dns', app: 'open', publicPort: open, hostBindPort: echo.port }),
        route({ protocol: 'udp', listener: 'dns', app: 'lan', publicPort: v4only, hostBindPort: echo.port, middleware: [{ name: 'ip_allow', params: { cidrs: ['127.0.0.0/8'] } }] }),
      ],
    });
    await waitFor(() => dual.proxy.logs.filter((l) => l.msg === 'listening' && l.protocol === 'udp').length === 2, 5000, 'two udp listeners');
    assert.match((await (await client('127.0.0.2', open)).ask('over v4')) ?? '', /^echo:over v4 /);
    assert.match((await (await client('::1', open)).ask('over v6')) ?? '', /^echo:over v6 /);
    assert.ok(await (await client('127.0.0.3', v4only)).ask('listed'), '::ffff:127.0.0.3 is 127.0.0.3 to ip_allow');
    assert.is(await (await client('::1', v4only)).ask('not listed'), undefined);
  } finally {
    await dual.stop();
  }
});

test.run();
