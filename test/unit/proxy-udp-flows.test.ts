// The UDP flow table: caps per listener and per client address, flows freed on removal, and the
// idle rule (a single exchange is forgotten quickly, a conversation is kept for the long timeout).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultAccess, parseRouteTable, validateMiddleware } from '../../services/common/route-table.js';
import { FlowTable, type FlowLimits } from '../../services/proxy/udp-flows.js';

const limits: FlowLimits = { maxFlows: 4, maxFlowsPerClient: 2, idleMs: 60_000, briefIdleMs: 5_000 };

test('a client address may hold maxFlowsPerClient flows; its source ports are what vary', () => {
  const table = new FlowTable<string>(limits);
  assert.is(table.refusal('10.0.0.2'), undefined);
  table.add('10.0.0.2|1000', '10.0.0.2', 'a', 0);
  table.add('10.0.0.2|1001', '10.0.0.2', 'b', 0);
  assert.is(table.refusal('10.0.0.2'), 'client_full');
  assert.is(table.refusal('10.0.0.3'), undefined, 'another client still has room');
  assert.is(table.flowsOf('10.0.0.2'), 2);
});

test('the listener holds at most maxFlows, whoever asks', () => {
  const table = new FlowTable<string>(limits);
  for (const client of ['10.0.0.2', '10.0.0.3']) for (const port of [1, 2]) table.add(`${client}|${port}`, client, '', 0);
  assert.is(table.size, 4);
  assert.is(table.refusal('10.0.0.9'), 'listener_full');
});

test('removing a flow gives its place back, once', () => {
  const table = new FlowTable<string>(limits);
  const a = table.add('10.0.0.2|1', '10.0.0.2', 'a', 0);
  table.add('10.0.0.2|2', '10.0.0.2', 'b', 0);
  assert.is(table.remove(a), true);
  assert.is(table.remove(a), false, 'a second remove changes nothing');
  assert.is(table.flowsOf('10.0.0.2'), 1);
  assert.is(table.refusal('10.0.0.2'), undefined);
  assert.is(table.get('10.0.0.2|1'), undefined);
  assert.is(table.get('10.0.0.2|2')?.value, 'b');
});

test('a query answered once is forgotten after briefIdleMs; one never answered too', () => {
  const table = new FlowTable<string>(limits);
  const answered = table.add('10.0.0.2|1', '10.0.0.2', 'dns', 0);
  table.fromClient(answered, 0);
  table.fromUpstream(answered, 100);
  const unanswered = table.add('10.0.0.2|2', '10.0.0.2', 'probe', 0);
  table.fromClient(unanswered, 0);
  assert.equal(table.expire(5_000), [unanswered], 'the unanswered one at 5 s after its last datagram');
  assert.equal(table.expire(5_099), [], 'the answered one counts from the answer');
  assert.equal(table.expire(5_100), [answered]);
  assert.is(answered.assured, false);
  assert.is(table.size, 0);
  assert.is(table.flowsOf('10.0.0.2'), 0);
});

test('a conversation (the client spoke after an answer) is kept for idleMs, refreshed both ways', () => {
  const table = new FlowTable<string>(limits);
  const game = table.add('10.0.0.3|7777', '10.0.0.3', 'game', 0);
  table.fromClient(game, 0);
  table.fromUpstream(game, 10);
  table.fromClient(game, 20);
  assert.is(game.assured, true);
  assert.equal(table.expire(30_000), [], 'past briefIdleMs, still there');
  table.fromUpstream(game, 50_000);
  assert.equal(table.expire(100_000), [], 'the app speaking keeps it too');
  assert.equal(table.expire(110_000), [game]);
});

test('clear returns every flow and frees every place', () => {
  const table = new FlowTable<string>(limits);
  table.add('10.0.0.2|1', '10.0.0.2', 'a', 0);
  table.add('10.0.0.3|1', '10.0.0.3', 'b', 0);
  assert.equal(table.clear().map((e) => e.value).sort(), ['a', 'b']);
  assert.is(table.size, 0);
  assert.is(table.flowsOf('10.0.0.2'), 0);
});

test('the route table: udp routes are public, take no HTTP middleware and no TLS', () => {
  assert.is(defaultAccess('user', 'udp', false), 'public', 'a datagram carries no session: the auth gate cannot apply');
  assert.equal(validateMiddleware([{ name: 'auth' }, { name: 'request_log', params: { sample: 1 } }], 'udp'), [
    'middleware[0].name: auth needs HTTP; this listener is udp',
    'middleware[1].name: request_log needs HTTP; this listener is udp',
  ]);
  assert.equal(validateMiddleware([{ name: 'ip_allow', params: { cidrs: ['10.0.0.0/8'] } }, { name: 'connection_limit', params: { max: 10, perClient: 2 } }, { name: 'rate_limit', params: { rate: 5, burst: 10 } }], 'udp'), []);
  const udp = { app: 'dns', listener: 'dns', publicPort: 35053, hostBindPort: 15053, protocol: 'udp', access: 'public', middleware: [], hostnames: [] };
  assert.is(parseRouteTable({ rev: 1, portal: null, routes: [{ ...udp, flow: 'tcp' }] }).routes.length, 1);
  assert.throws(() => parseRouteTable({ rev: 1, portal: null, routes: [{ ...udp, flow: 'tls' }] }), /routes\[0\]\.flow: a udp route has no TLS/);
});

test.run();
