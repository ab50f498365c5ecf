// The shared route-table contract (middleware validation, table parsing) and the proxy's small
// pure parts: backoff with jitter that resets only after a stable link, token buckets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_CERTIFICATES, defaultAccess, parseRouteTable, validateMiddleware, RouteTableError } from '../../services/common/route-table.js';
import { LocalCa } from '../../services/proxy/local-ca.js';
import { Backoff } from '../../services/common/backoff.js';
import { TokenBuckets } from '../../services/proxy/middleware.js';

test('middleware parameters are validated with paths, as the daemon does at install time', () => {
  assert.equal(validateMiddleware([{ name: 'rate_limit', params: { rate: 5, burst: 10 } }, { name: 'ip_allow', params: { cidrs: ['192.168.0.0/16', 'fd00::/8'] } }], 'http'), []);
  assert.equal(validateMiddleware([{ name: 'rate_limit', params: { rate: 0, burst: 1.5, extra: 1 } }], 'http'), [
    'middleware[0].params.extra: unknown parameter',
    'middleware[0].params.rate: must be a number above 0, at most 1000000',
    'middleware[0].params.burst: must be an integer from 1 to 1000000',
  ]);
  assert.equal(validateMiddleware([{ name: 'ip_allow', params: { cidrs: ['10.0.0.0/33', 'lan'] } }], 'http'), [
    'middleware[0].params.cidrs[0]: must be an address/prefix such as 192.168.0.0/16 or fd00::/8',
    'middleware[0].params.cidrs[1]: must be an address/prefix such as 192.168.0.0/16 or fd00::/8',
  ]);
  assert.equal(validateMiddleware([{ name: 'auth' }, { name: 'auth' }, { name: 'gzip' }], 'raw'), [
    'middleware[0].name: auth needs HTTP; this listener is raw',
    'middleware[1].name: auth appears twice',
    'middleware[1].name: auth needs HTTP; this listener is raw',
    'middleware[2].name: must be one of auth, rate_limit, ip_allow, request_log, connection_limit',
  ]);
  assert.equal(validateMiddleware([{ name: 'request_log', params: { sample: 2 } }, { name: 'connection_limit', params: { max: 10, perClient: 0 } }], 'http'), [
    'middleware[0].params.sample: must be a number in (0, 1]',
    'middleware[1].params.perClient: must be an integer from 1 to 1000000',
  ]);
});

test('a route table with duplicate ports or bad fields is refused as a whole, naming each problem', () => {
  const good = { app: 'blog', listener: 'web', publicPort: 35001, hostBindPort: 15001, flow: 'tcp', protocol: 'http', access: 'private', middleware: [], hostnames: ['web-blog.piccolo.local'] };
  assert.is(parseRouteTable({ rev: 1, portal: null, routes: [good] }).routes.length, 1);
  try {
    parseRouteTable({ rev: 1, portal: { hostBindPort: 0, hostnames: ['Bad Name'] }, routes: [good, { ...good, flow: 'udp', hostnames: [] }] });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, RouteTableError);
    assert.equal((err as RouteTableError).problems, [
      'portal.hostBindPort: must be 1-65535',
      'portal.hostnames[0]: must be a lower-case host name',
      'routes[1].publicPort: 35001 is used twice',
      'routes[1].flow: must be one of tcp, tls',
    ]);
  }
});

test('one public port may carry a udp route and a TCP one (53/udp and 53/tcp of a DNS app), not two of either', () => {
  const tcp = { app: 'dns', listener: 'tcp', publicPort: 53, hostBindPort: 15001, flow: 'tcp', protocol: 'raw', access: 'public', middleware: [], hostnames: [] };
  const udp = { ...tcp, listener: 'udp', hostBindPort: 15002, protocol: 'udp' };
  assert.is(parseRouteTable({ rev: 1, portal: null, routes: [tcp, udp] }).routes.length, 2);
  try {
    parseRouteTable({ rev: 1, portal: null, routes: [tcp, udp, { ...udp, listener: 'again' }] });
    assert.unreachable();
  } catch (err) {
    assert.equal((err as RouteTableError).problems, ['routes[2].publicPort: 53 is used twice']);
  }
});

test('certificates in the table: PEM key and chain, a bounded list; problems name the entry, never the key', async () => {
  const pair = await (await LocalCa.create('contract')).issue(['remote.example.test']);
  const table = { rev: 1, portal: { hostBindPort: 8080, socketPath: '/run/piccolo-daemon/portal.sock', hostnames: [] }, routes: [] };
  assert.equal(parseRouteTable({ ...table, certificates: [pair] }).certificates, [pair]);
  const secretKey = pair.key.replace('PRIVATE KEY-----\n', 'PRIVATE KEY-----\n!');
  try {
    parseRouteTable({ ...table, portal: { ...table.portal, socketPath: 'relative.sock' }, certificates: [{ key: secretKey, cert: pair.key }, { key: pair.key, cert: pair.cert, chain: '' }, 'pem'] });
    assert.unreachable();
  } catch (err) {
    assert.equal((err as RouteTableError).problems, [
      'portal.socketPath: must be an absolute path of at most 107 characters',
      'certificates[0].key: must be one PEM private key',
      'certificates[0].cert: must be PEM certificates (the chain, leaf first)',
      'certificates[1].chain: unknown field',
      'certificates[2]: must be an object with key and cert',
    ]);
    assert.not.match((err as Error).message, /MII/, 'no key material in the message');
  }
  assert.throws(() => parseRouteTable({ ...table, certificates: Array(MAX_CERTIFICATES + 1).fill(pair) }), /certificates: must be a list of at most/);
});

test('user HTTP listeners are private by default; public when the spec says so; raw and system ones are public', () => {
  assert.is(defaultAccess('user', 'http', false), 'private');
  assert.is(defaultAccess('user', 'websocket', true), 'public');
  assert.is(defaultAccess('user', 'raw', false), 'public');
  assert.is(defaultAccess('system', 'http', false), 'public');
});

test('backoff grows with jitter to a cap and resets only after the link stayed up', () => {
  let now = 0;
  const backoff = new Backoff({ initialMs: 100, maxMs: 1000, stableMs: 5000, now: () => now, random: () => 1 });
  assert.equal([backoff.failed(), backoff.failed(), backoff.failed(), backoff.failed(), backoff.failed()], [100, 200, 400, 800, 1000]);
  backoff.succeeded();
  now += 1000; // a flapping link: up only briefly
  assert.is(backoff.failed(), 1000);
  backoff.succeeded();
  now += 6000; // stable for longer than stableMs
  assert.is(backoff.failed(), 100);
  const jittered = new Backoff({ initialMs: 100, maxMs: 1000, stableMs: 5000, random: () => 0 });
  assert.is(jittered.failed(), 50, 'never less than half the ceiling');
});

test('token buckets: burst, then refill at the rate, per client', () => {
  let now = 0;
  const buckets = new TokenBuckets(2, 3, () => now);
  assert.equal([buckets.take('a'), buckets.take('a'), buckets.take('a')], [0, 0, 0]);
  assert.is(buckets.take('a'), 500);
  assert.is(buckets.take('b'), 0);
  now += 500;
  assert.is(buckets.take('a'), 0);
});

test.run();
