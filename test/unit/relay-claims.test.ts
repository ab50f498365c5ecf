// The relay's token and claim checks (§1.2): jose-signed tokens in, normalized claims or a
// HandshakeError naming the problem out; stage comparison (§1.3) and hostname claim rules (§5).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SignJWT } from 'jose';
import { HandshakeError, claimDifference, hostnameClaim, verifyToken, type ClaimPolicy } from '../../services/relay/claims.js';
import { rejects, thrown } from '../support/assertions.js';

const SECRET = 'relay-unit-secret';
const NOW = Date.UTC(2026, 11, 1, 8, 0, 0);
const policy: ClaimPolicy = {
  secret: new TextEncoder().encode(SECRET),
  allowedTcpPortClaims: new Set([15432]),
  allowedUdpPortClaims: new Set([10053]),
  udpIdleBounds: { min: 5, max: 300 },
  now: () => NOW,
};

async function token(claims: Record<string, unknown>, { secret = SECRET, alg = 'HS256' } = {}): Promise<string> {
  const iat = Math.floor(NOW / 1000);
  return new SignJWT({ iss: 'authorizer', aud: 'nexus', iat, exp: iat + 30, weight: 1, ...claims }).setProtectedHeader({ alg }).sign(new TextEncoder().encode(secret));
}

async function refusal(claims: Record<string, unknown>, options?: { secret?: string; alg?: string }): Promise<string> {
  return (await rejects(verifyToken(await token(claims, options), 'stage0', policy), HandshakeError)).message;
}

test('a valid token yields normalized, deduplicated, sorted claims', async () => {
  const claims = await verifyToken(await token({ sub: 'dev', hostnames: ['B.Example.com.', 'a.example.com', 'b.example.com'], tcp_ports: [15432, 15432], weight: 3 }), 'stage0', policy);
  assert.equal(claims.hostnames, ['a.example.com', 'b.example.com']);
  assert.equal(claims.tcpPorts, [15432]);
  assert.is(claims.weight, 3);
  assert.is(claims.sub, 'dev');
});

test('HS384 and HS512 are accepted; a wrong key is not', async () => {
  for (const alg of ['HS384', 'HS512']) await verifyToken(await token({ hostnames: ['a.test'] }, { alg }), 'stage0', policy);
  assert.match(await refusal({ hostnames: ['a.test'] }, { secret: 'another-secret' }), /^stage0 token validation failed: jwt validation failed: signature verification failed/);
});

test('iss, aud, exp and nbf are enforced without leeway; aud may be an array', async () => {
  const now = Math.floor(NOW / 1000);
  assert.match(await refusal({ hostnames: ['a.test'], iss: 'someone' }), /jwt validation failed: .*"iss"/);
  assert.match(await refusal({ hostnames: ['a.test'], aud: 'other' }), /jwt validation failed: .*"aud"/);
  assert.match(await refusal({ hostnames: ['a.test'], exp: now }), /jwt validation failed: .*"exp"/);
  assert.match(await refusal({ hostnames: ['a.test'], nbf: now + 1 }), /jwt validation failed: .*"nbf"/);
  await verifyToken(await token({ hostnames: ['a.test'], aud: ['x', 'nexus'], exp: now + 1 }), 'stage0', policy);
});

test('handshake_max_age_seconds needs a fresh iat in stage 0', async () => {
  const now = Math.floor(NOW / 1000);
  assert.match(await refusal({ hostnames: ['a.test'], handshake_max_age_seconds: 10, iat: now - 11 }), /too old: issued 11s ago/);
  assert.match(await refusal({ hostnames: ['a.test'], handshake_max_age_seconds: 10, iat: undefined }), /missing iat/);
  await verifyToken(await token({ hostnames: ['a.test'], handshake_max_age_seconds: 10, iat: now - 10 }), 'stage0', policy);
});

test('port claims must be allowlisted; UDP, outbound and empty claim sets are refused', async () => {
  assert.is(await refusal({ tcp_ports: [22] }), 'tcp port 22 is not in allowedTCPPortClaims');
  const closed = { ...policy, allowedTcpPortClaims: new Set<number>() };
  assert.is((await rejects(verifyToken(await token({ tcp_ports: [15432] }), 'stage0', closed), HandshakeError)).message, 'tcp port claims are disabled (allowedTCPPortClaims is empty)');
  assert.is(await refusal({ udp_routes: [{ port: 53 }] }), 'udp port 53 is not in allowedUDPPortClaims');
  assert.is((await rejects(verifyToken(await token({ udp_routes: [{ port: 10053 }] }), 'stage0', { ...policy, allowedUdpPortClaims: new Set() }), HandshakeError)).message, 'udp port claims are disabled (allowedUDPPortClaims is empty)');
  assert.match(await refusal({ hostnames: ['a.test'], outbound_allowed: true }), /outbound is disabled/);
  assert.is(await refusal({ hostnames: [] }), 'stage0 token missing hostnames and port claims');
  assert.is(await refusal({ weight: 1 }), 'stage0 token missing hostnames and port claims');
  assert.match(await refusal({ tcp_ports: [1.5] }), /tcp_ports must be an array of integers/);
});

test('outbound claims: only on a relay that allows outbound, ports within its list, compared across stages', async () => {
  const open = { ...policy, outbound: { allowedPorts: new Set([443, 8443]) } };
  const verify = async (claims: Record<string, unknown>, p: ClaimPolicy = open) => verifyToken(await token({ hostnames: ['a.test'], ...claims }), 'stage0', p);
  const claims = await verify({ outbound_allowed: true, allowed_outbound_ports: [8443, 443, 443] });
  assert.equal([claims.outboundAllowed, claims.allowedOutboundPorts], [true, [443, 8443]]);
  assert.match((await rejects(verify({ outbound_allowed: true }, policy), HandshakeError)).message, /outbound is disabled on this proxy/);
  assert.match((await rejects(verify({ outbound_allowed: true, allowed_outbound_ports: [25] }), HandshakeError)).message, /25 is not in allowedOutboundPorts/);
  assert.match((await rejects(verify({ allowed_outbound_ports: [443] }), HandshakeError)).message, /requires outbound_allowed/);
  assert.is(claimDifference(claims, await verify({ outbound_allowed: true, allowed_outbound_ports: [443] })), 'allowed_outbound_ports differ');
  assert.is(claimDifference(claims, await verify({})), 'outbound_allowed differs');
});

test('udp_routes: allowlisted ports, the idle timeout defaulted (30 s) and clamped, compared across stages', async () => {
  const routes = async (udp_routes: unknown) => (await verifyToken(await token({ udp_routes }), 'stage0', policy)).udpRoutes;
  assert.equal(await routes([{ port: 10053 }]), [{ port: 10053, idleSeconds: 30 }]);
  assert.equal(await routes([{ port: 10053, flow_idle_timeout_seconds: 1 }]), [{ port: 10053, idleSeconds: 5 }]);
  assert.equal(await routes([{ port: 10053, flow_idle_timeout_seconds: 9999 }]), [{ port: 10053, idleSeconds: 300 }]);
  const base = await verifyToken(await token({ udp_routes: [{ port: 10053, flow_idle_timeout_seconds: 60 }] }), 'stage0', policy);
  const later = await verifyToken(await token({ udp_routes: [{ port: 10053, flow_idle_timeout_seconds: 61 }] }), 'stage1', policy);
  assert.is(claimDifference(base, later), 'udp_routes differ');
});

test('stage 1 fields: session nonce, reauth interval and grace (default 10 s), cap and status URI checked', async () => {
  const claims = await verifyToken(await token({ hostnames: ['a.test'], session_nonce: 'n', reauth_interval_seconds: 5 }), 'stage1', policy);
  assert.equal([claims.sessionNonce, claims.reauthIntervalSeconds, claims.reauthGraceSeconds], ['n', 5, 10]);
  assert.is((await verifyToken(await token({ hostnames: ['a.test'], reauth_grace_seconds: 3 }), 'stage1', policy)).reauthGraceSeconds, 3);
  // Stage 0 ignores them.
  assert.is((await verifyToken(await token({ hostnames: ['a.test'], reauth_interval_seconds: 5 }), 'stage0', policy)).reauthIntervalSeconds, 0);
  const stage1 = async (claims: Record<string, unknown>) => (await rejects(verifyToken(await token({ hostnames: ['a.test'], ...claims }), 'stage1', policy), HandshakeError)).message;
  assert.match(await stage1({ maintenance_grace_cap_seconds: -1 }), /must not be negative/);
  assert.match(await stage1({ authorizer_status_uri: 'http://auth.test/status' }), /https URL/);
});

test('hostname claims: tcp:/udp: prefixes, wildcard shape, label syntax', () => {
  assert.match(thrown(() => hostnameClaim('tcp:53'), HandshakeError).message, /port claims belong in tcp_ports/);
  assert.match(thrown(() => hostnameClaim('UDP:53'), HandshakeError).message, /port claims belong/);
  assert.is(hostnameClaim(' *.Example.com. '), '*.example.com');
  for (const bad of ['*.com', '*', 'a.*.example.com', '**.example.com', 'a..b', '-a.test', 'a_b c.test', '']) {
    thrown(() => hostnameClaim(bad), HandshakeError);
  }
  assert.is(hostnameClaim('Bücher.example'), 'xn--bcher-kva.example');
});

test('a later token must keep the claim sets; weight may be 0 (unchanged) or equal', async () => {
  const base = await verifyToken(await token({ hostnames: ['a.test', 'b.test'], tcp_ports: [15432], weight: 2 }), 'stage0', policy);
  const later = async (claims: Record<string, unknown>) => verifyToken(await token({ hostnames: ['b.test', 'A.test'], tcp_ports: [15432], ...claims }), 'stage1', policy);
  assert.is(claimDifference(base, await later({ weight: 2 })), undefined);
  assert.is(claimDifference(base, await later({ weight: 0 })), undefined);
  assert.is(claimDifference(base, await later({ weight: 3 })), 'weight differs');
  assert.is(claimDifference(base, await later({ hostnames: ['a.test'] })), 'hostnames differ');
  assert.is(claimDifference(base, await later({ tcp_ports: undefined })), 'tcp_ports differ');
});

test.run();
