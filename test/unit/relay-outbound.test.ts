// The outbound proxy's checks (§2.6): the order and exact reasons of the refusals, and the
// target address rules.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { BackendClaims } from '../../services/relay/claims.js';
import { MAX_OUTBOUND_PER_BACKEND, checkOutbound, parseTarget } from '../../services/relay/outbound.js';

const ID = '12345678-1234-4234-8234-123456789abc';
const claims: BackendClaims = { hostnames: ['a.test'], tcpPorts: [], udpRoutes: [], weight: 1, outboundAllowed: true, allowedOutboundPorts: [], reauthIntervalSeconds: 0, reauthGraceSeconds: 10 };
const anyPort = { allowedPorts: new Set<number>() };

test('targets: host:port and [v6]:port, a port 1-65535, at most 260 characters, no control characters', () => {
  assert.equal(parseTarget('example.com:443'), { host: 'example.com', port: 443 });
  assert.equal(parseTarget('[2001:db8::1]:8443'), { host: '2001:db8::1', port: 8443 });
  for (const bad of ['example.com', ':443', 'example.com:0', 'example.com:65536', '2001:db8::1:443', `${'a'.repeat(257)}:443`, 'exa\nmple.com:443', 42]) {
    assert.is(parseTarget(bad), undefined, String(bad));
  }
});

test('refusals come in the server order, each with its reason', () => {
  const refusal = (...args: Parameters<typeof checkOutbound>) => {
    const check = checkOutbound(...args);
    return 'refusal' in check ? check.refusal : undefined;
  };
  // Disabled wins over everything else, even a bad address.
  assert.is(refusal(ID, 'bad', { ...claims, outboundAllowed: false }, undefined, 0), 'outbound connections disabled on this proxy');
  assert.is(refusal(ID, 'bad', { ...claims, outboundAllowed: false }, anyPort, 0), 'outbound connections not allowed for this backend');
  assert.is(refusal(ID, 'bad', claims, anyPort, 0), 'invalid target address');
  assert.is(refusal(ID, 'a.test:25', claims, { allowedPorts: new Set([443]) }, 0), 'outbound port 25 not allowed by server');
  assert.is(refusal(ID, 'a.test:80', { ...claims, allowedOutboundPorts: [443] }, anyPort, 0), 'outbound port 80 not allowed by token');
  assert.is(refusal(ID, 'a.test:443', claims, anyPort, MAX_OUTBOUND_PER_BACKEND), 'outbound connection limit exceeded');
  assert.is(refusal('00000000-0000-0000-0000-000000000000', 'a.test:443', claims, anyPort, 0), 'invalid client id');
  assert.equal(checkOutbound(ID, 'a.test:443', { ...claims, allowedOutboundPorts: [443] }, { allowedPorts: new Set([443]) }, MAX_OUTBOUND_PER_BACKEND - 1), { target: { host: 'a.test', port: 443 } });
});

test.run();
