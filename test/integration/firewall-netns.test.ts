// The firewall (overlays/etc/nftables.d/piccolo.nft) under real traffic. The test makes its own
// network namespaces: a "device" that loads the real ruleset with `nft -f` and listens on every
// port in question, a LAN client with private and link-local addresses, a "public" client with
// addresses from the documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
// 2001:db8::/32), and an app container on its network's bridge. Each client tries
// TCP and UDP over IPv4 and IPv6 and reports what answered. Everything first runs with no ruleset,
// so a "blocked" below can only come from the ruleset.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { PUBLIC_PORTS } from '../../services/daemon/apps/ports.js';
import { DEFAULT_SUBNET_POOL } from '../../services/daemon/apps/subnets.js';
import { addNetns, inNs, inNsAsync, removeAll, run, uniqueId } from '../support/netns.js';

const RULESET = path.resolve('overlays/etc/nftables.d/piccolo.nft');
const DROP_IN_DIR = '/etc/nftables.d/piccolo.d';
// A dropped packet gets no answer: a probe says "blocked" after this long (generous: on a loaded machine an open port's greeting can take a while).
const PROBE_TIMEOUT_MS = 2500;

const id = uniqueId();
const NS = { device: `pfw-${id}-dev`, lan: `pfw-${id}-lan`, pub: `pfw-${id}-pub`, ctr: `pfw-${id}-ctr` };
// The device's end of the container link stands for an app network's bridge.
const IF = { devLan: `pl${id}d`, lan: `pl${id}c`, devPub: `pp${id}d`, pub: `pp${id}c`, devCtr: `podman${id}`, ctr: `pc${id}c` };

const APP_PORT = PUBLIC_PORTS.first + 80;
const TCP_PORTS = [22, 53, 80, 443, 4040, 8080, PUBLIC_PORTS.first, APP_PORT, PUBLIC_PORTS.last, PUBLIC_PORTS.last + 1];
const UDP_PORTS = [53, 5353, APP_PORT, PUBLIC_PORTS.last + 1];

/** On the device's LAN link: one address per private or link-local range, each with its client's. */
const LAN_LINKS = [
  { range: '10.0.0.0/8', device: '10.77.0.1', client: '10.77.0.2', prefix: 24 },
  { range: '172.16.0.0/12', device: '172.31.77.1', client: '172.31.77.2', prefix: 24 },
  { range: '192.168.0.0/16', device: '192.168.77.1', client: '192.168.77.2', prefix: 24 },
  { range: '169.254.0.0/16', device: '169.254.77.1', client: '169.254.77.2', prefix: 24 },
  { range: 'fc00::/7', device: 'fd77::1', client: 'fd77::2', prefix: 64 },
  { range: 'fe80::/10', device: 'fe80::77:1', client: 'fe80::77:2', prefix: 64 },
];
const PUBLIC_LINKS = [
  { range: '192.0.2.0/24', device: '192.0.2.1', client: '192.0.2.2', prefix: 24 },
  { range: '198.51.100.0/24', device: '198.51.100.1', client: '198.51.100.2', prefix: 24 },
  { range: '203.0.113.0/24', device: '203.0.113.1', client: '203.0.113.2', prefix: 24 },
  { range: '2001:db8::/32', device: '2001:db8:77::1', client: '2001:db8:77::2', prefix: 64 },
];
// A /24 of the daemon's app subnet pool: the bridge's gateway .1, the app's container .2.
const POOL = DEFAULT_SUBNET_POOL.split('.').slice(0, 2).join('.');
const CTR_LINK = { device: `${POOL}.77.1`, client: `${POOL}.77.2`, prefix: 24 };

// Listens on every port in argv (TCP, and UDP after "udp") on '::', dual-stack; a TCP connection
// is greeted with its port, a datagram echoed with it.
const LISTENER_JS = `
const net = require('node:net'), dgram = require('node:dgram');
const [tcp, udp] = process.argv[1].split('/').map((list) => list.split(',').filter(Boolean).map(Number));
let pending = tcp.length + udp.length;
const up = () => { if (--pending === 0) console.log('ready'); };
// A probe hangs up as soon as it has read the greeting; a reset then is no reason to die.
for (const port of tcp) net.createServer((s) => s.on('error', () => {}).end('port ' + port + '\\n')).listen({ host: '::', port, ipv6Only: false }, up);
for (const port of udp) {
  const socket = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  socket.on('message', (msg, from) => socket.send('port ' + port + '\\n', from.port, from.address));
  socket.bind(port, '::', up);
}`;

// Tries each "tcp|udp host port" in argv at once; prints {target: 'open' | 'blocked' | 'refused' | error}.
const PROBE_JS = `
const net = require('node:net'), dgram = require('node:dgram');
const timeout = ${PROBE_TIMEOUT_MS};
const probe = (target) => new Promise((resolve) => {
  const [proto, host, port] = target.split(' ');
  const expect = 'port ' + port + '\\n';
  const done = (result, close) => { clearTimeout(timer); close(); resolve([target, result]); };
  let timer;
  if (proto === 'tcp') {
    const socket = net.connect({ host, port: Number(port) });
    let got = '';
    socket.on('data', (d) => { got += d; if (got === expect) done('open', () => socket.destroy()); });
    socket.on('error', (err) => done(err.code === 'ECONNREFUSED' ? 'refused' : err.code, () => socket.destroy()));
    timer = setTimeout(() => done('blocked', () => socket.destroy()), timeout);
  } else {
    const socket = dgram.createSocket(net.isIPv6(host.split('%')[0]) ? 'udp6' : 'udp4');
    socket.on('message', (msg) => { if (String(msg) === expect) done('open', () => socket.close()); });
    socket.on('error', (err) => done(err.code === 'ECONNREFUSED' ? 'refused' : err.code, () => socket.close()));
    // Not connected: over link-local the answer may come from another of the device's fe80 addresses.
    socket.send('hello', Number(port), host);
    timer = setTimeout(() => done('blocked', () => socket.close()), timeout);
  }
});
Promise.all(process.argv.slice(1).map(probe)).then((results) => console.log(JSON.stringify(Object.fromEntries(results))));`;

const children: ChildProcess[] = [];
let tmp = '';

function cleanUp(): void {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  removeAll();
}

/** A veth pair from the device to a client namespace, with the addresses given (no DAD, so they are usable at once). */
function link(devIf: string, ns: string, clientIf: string, addresses: Array<{ device: string; client: string; prefix: number }>): void {
  run('ip', ['-n', NS.device, 'link', 'add', devIf, 'type', 'veth', 'peer', 'name', clientIf, 'netns', ns]);
  for (const [where, ifname] of [
    [NS.device, devIf],
    [ns, clientIf],
  ] as const) {
    inNs(where, 'sysctl', '-q', '-w', `net.ipv6.conf.${ifname}.accept_dad=0`);
    for (const a of addresses) {
      const address = `${where === NS.device ? a.device : a.client}/${a.prefix}`;
      run('ip', ['-n', where, 'address', 'add', address, 'dev', ifname, ...(address.includes(':') ? ['nodad'] : [])]);
    }
    run('ip', ['-n', where, 'link', 'set', ifname, 'up']);
  }
}

/** Connects to the device (`host` as seen from the client) on every port, from inside the client namespace. */
async function probeAll(ns: string, host: string, ports = { tcp: TCP_PORTS, udp: UDP_PORTS }): Promise<Record<string, string>> {
  const targets = [...ports.tcp.map((port) => `tcp ${host} ${port}`), ...ports.udp.map((port) => `udp ${host} ${port}`)];
  return JSON.parse(await inNsAsync(ns, process.execPath, ['-e', PROBE_JS, ...targets]));
}

/** Each blocked probe waits out its timeout, so the clients' probes of all their addresses run at once, once. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}
const lanResults = once(() => Promise.all(LAN_LINKS.map((a) => probeAll(NS.lan, scoped(a.device, IF.lan)))));
const publicResults = once(() => Promise.all(PUBLIC_LINKS.map((a) => probeAll(NS.pub, a.device))));

function scoped(address: string, ifname: string): string {
  return address.startsWith('fe80:') ? `${address}%${ifname}` : address;
}

/** What each port answers when the ruleset is loaded, by where the client is. */
function expected(from: 'lan' | 'public', host: string): Record<string, string> {
  const lanOpen = new Set([`tcp 53`, `tcp 80`, `tcp 443`, `tcp ${PUBLIC_PORTS.first}`, `tcp ${APP_PORT}`, `tcp ${PUBLIC_PORTS.last}`, `udp 53`, `udp 5353`, `udp ${APP_PORT}`]);
  const result: Record<string, string> = {};
  for (const [proto, ports] of [
    ['tcp', TCP_PORTS],
    ['udp', UDP_PORTS],
  ] as const) {
    for (const port of ports) result[`${proto} ${host} ${port}`] = from === 'lan' && lanOpen.has(`${proto} ${port}`) ? 'open' : 'blocked';
  }
  return result;
}

function allOpen(results: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.keys(results).map((key) => [key, 'open']));
}

async function loadRuleset(file = RULESET): Promise<void> {
  inNs(NS.device, 'nft', '-f', file);
}

test.before(async () => {
  try {
    // The device has its loopback, as a real one does; the clients do not need theirs.
    for (const ns of Object.values(NS)) addNetns(ns, { loopback: ns === NS.device });
    link(IF.devLan, NS.lan, IF.lan, LAN_LINKS);
    link(IF.devPub, NS.pub, IF.pub, PUBLIC_LINKS);
    link(IF.devCtr, NS.ctr, IF.ctr, [CTR_LINK]);
    // As engine.ts does for an app's bridge: loopback-addressed traffic may be routed over it.
    inNs(NS.device, 'sysctl', '-q', '-w', `net.ipv4.conf.${IF.devCtr}.route_localnet=1`);
    // The container sends to the device's 127.0.0.1 over its link (lo is down in its namespace,
    // so 127.0.0.1 is not local there).
    inNs(NS.ctr, 'sysctl', '-q', '-w', `net.ipv4.conf.${IF.ctr}.route_localnet=1`);
    run('ip', ['-n', NS.ctr, 'route', 'add', '127.0.0.1/32', 'via', CTR_LINK.device, 'dev', IF.ctr]);

    const listener = spawn('ip', ['netns', 'exec', NS.device, process.execPath, '-e', LISTENER_JS, `${TCP_PORTS.join(',')}/${UDP_PORTS.join(',')}`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(listener);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the listener in the device namespace did not start')), 10_000);
      listener.once('exit', (code) => reject(new Error(`the listener exited ${code}`)));
      createInterface({ input: listener.stdout! }).once('line', () => (clearTimeout(timer), resolve()));
    });
    tmp = await mkdtemp(path.join(os.tmpdir(), 'piccolo-fw-'));
  } catch (err) {
    cleanUp();
    throw err;
  }
});

test.after(async () => {
  cleanUp();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('without the ruleset every client reaches every port (the setup itself blocks nothing)', async () => {
  const [lan, pub, ctr] = await Promise.all([
    Promise.all(LAN_LINKS.map((a) => probeAll(NS.lan, scoped(a.device, IF.lan)))),
    Promise.all(PUBLIC_LINKS.map((a) => probeAll(NS.pub, a.device))),
    // The container's way to the device's loopback services works when nothing filters it.
    probeAll(NS.ctr, '127.0.0.1', { tcp: [8080], udp: [] }),
  ]);
  LAN_LINKS.forEach((a, i) => assert.equal(lan[i], allOpen(lan[i]!), `from ${a.client} (${a.range})`));
  PUBLIC_LINKS.forEach((a, i) => assert.equal(pub[i], allOpen(pub[i]!), `from ${a.client} (${a.range})`));
  assert.equal(ctr, { 'tcp 127.0.0.1 8080': 'open' });
});

test("the real ruleset loads with CAP_NET_ADMIN alone (the unit's bounding set), and again (reloading replaces the table)", async () => {
  inNs(NS.device, 'setpriv', '--no-new-privs', '--bounding-set=-all,+net_admin', '--inh-caps=-all', 'nft', '-f', RULESET);
  assert.throws(() => inNs(NS.device, 'setpriv', '--no-new-privs', '--bounding-set=-all', '--inh-caps=-all', 'nft', '-f', RULESET), /Operation not permitted/);
  await loadRuleset();
  const tables = inNs(NS.device, 'nft', 'list', 'tables');
  assert.is(tables.trim(), 'table inet piccolo');
  // Forget the neighbours learnt without the ruleset: the IPv6 probes below then need neighbour
  // discovery to pass it.
  for (const ns of Object.values(NS)) run('ip', ['-n', ns, 'neigh', 'flush', 'all']);
});

LAN_LINKS.forEach((a, i) => {
  test(`from the LAN (${a.range}): portal, app ports, DNS apps and mDNS get in; 22, 4040 and other ports do not`, async () => {
    assert.equal((await lanResults())[i], expected('lan', scoped(a.device, IF.lan)));
  });
});

PUBLIC_LINKS.forEach((a, i) => {
  test(`from a public address (${a.range}): nothing gets in`, async () => {
    assert.equal((await publicResults())[i], expected('public', a.device));
  });
});

test('ping: answered for the LAN, not for a public address, over IPv4 and IPv6', () => {
  const ping = (ns: string, host: string) => spawnSync('ip', ['netns', 'exec', ns, 'busybox', 'ping', '-c', '1', '-W', '1', host], { encoding: 'utf8' }).status;
  assert.is(ping(NS.lan, '10.77.0.1'), 0);
  assert.is(ping(NS.lan, 'fd77::1'), 0);
  assert.is.not(ping(NS.pub, '192.0.2.1'), 0);
  assert.is.not(ping(NS.pub, '2001:db8:77::1'), 0);
});

test('health (4040) answers on the device itself, over 127.0.0.1 and ::1', async () => {
  assert.equal(await probeAll(NS.device, '127.0.0.1', { tcp: [4040], udp: [] }), { 'tcp 127.0.0.1 4040': 'open' });
  assert.equal(await probeAll(NS.device, '::1', { tcp: [4040], udp: [] }), { 'tcp ::1 4040': 'open' });
});

test('an app container reaches DNS on its bridge gateway, but not the device loopback services', async () => {
  assert.equal(await probeAll(NS.ctr, CTR_LINK.device, { tcp: [53], udp: [53] }), { [`tcp ${CTR_LINK.device} 53`]: 'open', [`udp ${CTR_LINK.device} 53`]: 'open' });
  assert.equal(await probeAll(NS.ctr, '127.0.0.1', { tcp: [8080], udp: [] }), { 'tcp 127.0.0.1 8080': 'blocked' });
});

test('a drop-in in piccolo.d lets configured sources read health, and only them', async () => {
  const dropIns = path.join(tmp, 'piccolo.d');
  await mkdir(dropIns);
  await writeFile(path.join(dropIns, 'health.nft'), 'add element inet piccolo health_v4 { 10.77.0.0/24 }\nadd element inet piccolo health_v6 { fd77::/64 }\n');
  const text = await readFile(RULESET, 'utf8');
  assert.ok(text.includes(`include "${DROP_IN_DIR}/*.nft"`), 'the ruleset includes its drop-in folder');
  const ruleset = path.join(tmp, 'piccolo.nft');
  await writeFile(ruleset, text.replace(`include "${DROP_IN_DIR}/`, `include "${dropIns}/`));
  await loadRuleset(ruleset);
  try {
    const only = { tcp: [22, 4040], udp: [] };
    const [v4, v6, otherLan, pub] = await Promise.all([
      probeAll(NS.lan, '10.77.0.1', only),
      probeAll(NS.lan, 'fd77::1', only),
      probeAll(NS.lan, '192.168.77.1', only),
      probeAll(NS.pub, '203.0.113.1', only),
    ]);
    assert.equal(v4, { 'tcp 10.77.0.1 22': 'blocked', 'tcp 10.77.0.1 4040': 'open' });
    assert.equal(v6, { 'tcp fd77::1 22': 'blocked', 'tcp fd77::1 4040': 'open' });
    // Other LAN ranges were not configured.
    assert.equal(otherLan, { 'tcp 192.168.77.1 22': 'blocked', 'tcp 192.168.77.1 4040': 'blocked' });
    assert.equal(pub, { 'tcp 203.0.113.1 22': 'blocked', 'tcp 203.0.113.1 4040': 'blocked' });
  } finally {
    await loadRuleset();
  }
});

test('stopping the firewall (the unit ExecStop) removes the table and opens the ports again', async () => {
  inNs(NS.device, 'nft', 'delete', 'table', 'inet', 'piccolo');
  assert.is(inNs(NS.device, 'nft', 'list', 'tables').trim(), '');
  assert.equal(await probeAll(NS.pub, '192.0.2.1', { tcp: [22], udp: [] }), { 'tcp 192.0.2.1 22': 'open' });
});

test.run();
