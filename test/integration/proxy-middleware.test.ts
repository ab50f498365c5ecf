// Each listener's middleware through the proxy bundle: the auth gate (session checked with the
// daemon, browsers sent to the portal's sign-in on the portal's own port and back, the session
// never reaching the app, nothing it let through kept by a cache), private listeners gated by
// default, rate_limit, ip_allow, connection_limit, request_log; and encoded bodies passing
// through untouched (the portal's gzip/br assets, an app's own compression).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import zlib from 'node:zlib';
import { bundleServices } from '../../image/bundle.js';
import { waitFor } from '../support/processes.js';
import { echoServer, freePort, listenOn, rawExchange, route, startProxy, type ProxyHarness } from '../support/proxy-harness.js';
import { rawGet } from '../support/http-get.js';

let harness: ProxyHarness;
let app: { server: http.Server; port: number };
let assets: { server: http.Server; port: number };
const ports = { gated: 0, privateDefault: 0, limited: 0, lanOnly: 0, capped: 0, gatedAssets: 0, publicAssets: 0, down: 0, nobody: 0 };
/** An app's page, large enough that compressing it pays. */
const PAGE = `<!doctype html><title>app</title>${'<p>the same words again and again</p>'.repeat(200)}`;

/**
 * An upstream that encodes by Accept-Encoding as the daemon's assets and many apps do, and says
 * the response may be cached for an hour: what a gated route must not let a browser keep.
 */
async function encodingServer(): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((req, res) => {
    const accepted = String(req.headers['accept-encoding'] ?? '');
    const encoding = /\bbr\b/.test(accepted) ? 'br' : /\bgzip\b/.test(accepted) ? 'gzip' : undefined;
    const body = encoding === 'br' ? zlib.brotliCompressSync(PAGE) : encoding === 'gzip' ? zlib.gzipSync(PAGE) : Buffer.from(PAGE);
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': body.length,
      'cache-control': 'public, max-age=3600',
      expires: new Date(Date.now() + 3600_000).toUTCString(),
      vary: 'Accept-Encoding',
      'x-seen-accept-encoding': accepted || 'none',
      ...(encoding ? { 'content-encoding': encoding } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  return { server, port: await listenOn(server) };
}

/** A GET whose body stays bytes (never decoded), on a fresh connection. */
function getBytes(port: number, headers: Record<string, string>, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .request({ host: '127.0.0.1', port, path: '/', method, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      })
      .on('error', reject)
      .end();
  });
}

test.before(async () => {
  await bundleServices();
  app = await echoServer('app');
  assets = await encodingServer();
  // No PICCOLO_PROXY_LOGIN_URL: the sign-in URL is derived from each request, as in the image and `make run`.
  harness = await startProxy();
  for (const name of Object.keys(ports) as (keyof typeof ports)[]) ports[name] = await freePort();
  await harness.setRoutes({
    portal: { hostBindPort: assets.port, hostnames: ['piccolo.local', 'piccolo.example.com'] },
    routes: [
      route({ app: 'gated', publicPort: ports.gated, hostBindPort: app.port, middleware: [{ name: 'auth' }, { name: 'request_log', params: { sample: 1 } }] }),
      route({ app: 'docs', publicPort: ports.gatedAssets, hostBindPort: assets.port, access: 'private', hostnames: ['web-docs.piccolo.local', 'web-docs.apps.example.com'] }),
      route({ app: 'site', publicPort: ports.publicAssets, hostBindPort: assets.port }),
      // An app that is not running: nothing listens on its host-bind port.
      route({ app: 'down', publicPort: ports.down, hostBindPort: ports.nobody, access: 'private' }),
      route({ app: 'private', publicPort: ports.privateDefault, hostBindPort: app.port, access: 'private', hostnames: ['web-private.piccolo.local'] }),
      route({ app: 'limited', publicPort: ports.limited, hostBindPort: app.port, middleware: [{ name: 'rate_limit', params: { rate: 1, burst: 3 } }] }),
      route({ app: 'lan', publicPort: ports.lanOnly, hostBindPort: app.port, middleware: [{ name: 'ip_allow', params: { cidrs: ['10.0.0.0/8'] } }] }),
      route({ app: 'capped', publicPort: ports.capped, hostBindPort: app.port, middleware: [{ name: 'connection_limit', params: { max: 2 } }] }),
    ],
  });
});

test.after(async () => {
  await harness?.stop();
  app?.server.close();
  assets?.server.close();
});

test('auth: an API client without a session gets 401; a browser is sent to the portal sign-in on the portal port, with the way back', async () => {
  const api = await rawGet(ports.gated);
  assert.is(api.status, 401);
  assert.is(api.headers['cache-control'], 'no-store');
  // As in `make run`: the app on its own port, the portal on the portal listener's (not 80).
  const browser = await rawGet(ports.gated, { accept: 'text/html', host: `127.0.0.1:${ports.gated}` });
  assert.is(browser.status, 302);
  assert.is(browser.headers['cache-control'], 'no-store');
  const location = new URL(browser.headers.location!);
  assert.is(location.origin + location.pathname, `http://127.0.0.1:${harness.portalPort}/`);
  assert.is(location.searchParams.get('next'), `http://127.0.0.1:${ports.gated}/page?x=1`);
  // The host name the client used is kept too.
  const named = new URL((await rawGet(ports.gated, { accept: 'text/html', host: `nas.local:${ports.gated}` })).headers.location!);
  assert.is(named.origin, `http://nas.local:${harness.portalPort}`);
  assert.is(named.searchParams.get('next'), `http://nas.local:${ports.gated}/page?x=1`);
  assert.is((await rawGet(ports.gated, { cookie: 'piccolo_session=forged' })).status, 401);
});

test('auth: over TLS on the app port the sign-in is https on the portal port; by name it is the nearest portal name on the same port', async () => {
  const secure = await new Promise<http.IncomingMessage>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port: ports.gated, path: '/x', rejectUnauthorized: false, agent: false, headers: { accept: 'text/html', host: `127.0.0.1:${ports.gated}` } }, resolve).on('error', reject);
  });
  secure.resume();
  const location = new URL(secure.headers.location!);
  assert.is(location.origin, `https://127.0.0.1:${harness.portalPort}`);
  assert.is(location.searchParams.get('next'), `https://127.0.0.1:${ports.gated}/x`);
  const local = new URL((await rawGet(harness.portalPort, { accept: 'text/html', host: `web-docs.piccolo.local:${harness.portalPort}` })).headers.location!);
  assert.is(local.origin, `http://piccolo.local:${harness.portalPort}`);
  assert.is(local.searchParams.get('next'), `http://web-docs.piccolo.local:${harness.portalPort}/page?x=1`);
  // A remote app name: the remote portal name, not the .local one.
  const remote = new URL((await rawGet(harness.portalPort, { accept: 'text/html', host: 'web-docs.apps.example.com' })).headers.location!);
  assert.is(remote.origin, 'http://piccolo.example.com');
  assert.is(remote.searchParams.get('next'), 'http://web-docs.apps.example.com/page?x=1');
});

test('auth: the way back never leads off the device; a Host header that is not a host is a 400 naming it', async () => {
  // An absolute-form request target naming another site: no next, rather than a way there.
  const absolute = await rawExchange(ports.gated, `GET http://evil.example/steal HTTP/1.1\r\nHost: 127.0.0.1:${ports.gated}\r\nAccept: text/html\r\nConnection: close\r\n\r\n`);
  assert.match(absolute, /^HTTP\/1.1 302/);
  const location = new URL(/\r\nlocation: (\S+)/i.exec(absolute)![1]!);
  assert.is(location.origin, `http://127.0.0.1:${harness.portalPort}`);
  assert.is(location.searchParams.get('next'), null);
  assert.not.match(absolute, /evil/);
  // The same target naming the device itself is a fine way back.
  const own = await rawExchange(ports.gated, `GET http://127.0.0.1:${ports.gated}/mine HTTP/1.1\r\nHost: 127.0.0.1:${ports.gated}\r\nAccept: text/html\r\nConnection: close\r\n\r\n`);
  assert.is(new URL(/\r\nlocation: (\S+)/i.exec(own)![1]!).searchParams.get('next'), `http://127.0.0.1:${ports.gated}/mine`);
  // "//evil.example/x" is a path on the device, and stays one.
  const doubleSlash = new URL((await rawGet(ports.gated, { accept: 'text/html', host: `127.0.0.1:${ports.gated}` }, '//evil.example/x')).headers.location!);
  assert.is(new URL(doubleSlash.searchParams.get('next')!).host, `127.0.0.1:${ports.gated}`);
  for (const host of ['evil.example/x', 'user@evil.example', 'a b']) {
    const bad = await rawGet(ports.gated, { accept: 'text/html', host });
    assert.is(bad.status, 400, host);
    assert.is(bad.headers.location, undefined);
    assert.match(bad.body, /host: must be a host name/i, `${host}: ${bad.body}`);
  }
});

test('auth: what the gate let through is private, no-store, whatever the app said; Vary keeps the app\'s and adds Cookie', async () => {
  harness.sessions.set('cache-test', 'alice');
  const gated = await getBytes(ports.gatedAssets, { cookie: 'piccolo_session=cache-test' });
  assert.is(gated.status, 200);
  assert.is(gated.headers['cache-control'], 'private, no-store');
  assert.is(gated.headers.vary, 'Accept-Encoding, Cookie');
  assert.is(gated.headers.expires, undefined, 'the app\'s Expires is dropped with its Cache-Control');
  // The same app behind a public route: untouched.
  const open = await getBytes(ports.publicAssets, {});
  assert.is(open.headers['cache-control'], 'public, max-age=3600');
  assert.is(open.headers.vary, 'Accept-Encoding');
  assert.ok(open.headers.expires);
  // The portal (the daemon sets its own headers) is not behind the gate either.
  assert.is((await getBytes(harness.portalPort, { host: 'piccolo.local' })).headers['cache-control'], 'public, max-age=3600');
});

test('problem pages say what is wrong and link to the portal as this client reaches it', async () => {
  harness.sessions.set('pages-test', 'alice');
  const down = await rawGet(ports.down, { accept: 'text/html', cookie: 'piccolo_session=pages-test', host: `127.0.0.1:${ports.down}` });
  assert.is(down.status, 502);
  assert.is(down.headers['cache-control'], 'no-store');
  assert.match(String(down.headers['content-security-policy']), /default-src 'none'/);
  assert.match(down.body, /<h1>down is not running<\/h1>/);
  assert.match(down.body, /nothing listens on its port \(ECONNREFUSED\)/);
  assert.match(down.body, new RegExp(`<a href="http://127\\.0\\.0\\.1:${harness.portalPort}/apps/down">Open down in the portal</a>`));
  // An API client gets the same facts as JSON.
  const json = JSON.parse((await rawGet(ports.down, { cookie: 'piccolo_session=pages-test' })).body);
  assert.is(json.error.code, 'bad_gateway');
  assert.match(json.error.message, /the app down is not answering/);
  // A name the device does not know: the portal at the address the connection reached, same port.
  const unknown = await rawGet(harness.portalPort, { accept: 'text/html', host: `nothing.localhost:${harness.portalPort}` });
  assert.is(unknown.status, 404);
  assert.match(unknown.body, new RegExp(`href="http://127\\.0\\.0\\.1:${harness.portalPort}/apps"`));
  // Script-like input in the host name is escaped, never markup.
  const hostile = await rawGet(harness.portalPort, { accept: 'text/html', host: '<script>alert(1)</script>' });
  assert.is(hostile.status, 404);
  assert.not.match(hostile.body, /<script/);
  assert.match(hostile.body, /&#60;script&#62;/);
});

test('encoded bodies pass through as the upstream sent them: Accept-Encoding forwarded, Content-Encoding and Content-Length kept', async () => {
  harness.sessions.set('enc-test', 'alice');
  const cases: { port: number; headers: Record<string, string> }[] = [
    { port: ports.gatedAssets, headers: { cookie: 'piccolo_session=enc-test' } },
    { port: ports.publicAssets, headers: {} },
    { port: harness.portalPort, headers: { host: 'piccolo.local' } },
  ];
  for (const { port, headers } of cases) {
    for (const [acceptEncoding, encoding, decode] of [
      ['gzip, deflate, br', 'br', zlib.brotliDecompressSync],
      ['gzip', 'gzip', zlib.gunzipSync],
    ] as const) {
      const res = await getBytes(port, { ...headers, 'accept-encoding': acceptEncoding });
      assert.is(res.headers['x-seen-accept-encoding'], acceptEncoding, `port ${port}: the upstream saw the client's Accept-Encoding`);
      assert.is(res.headers['content-encoding'], encoding);
      assert.is(Number(res.headers['content-length']), res.body.length, 'Content-Length is the encoded length');
      assert.ok(res.body.length < PAGE.length / 5, 'the body is still compressed');
      assert.is(decode(res.body).toString(), PAGE);
      const head = await getBytes(port, { ...headers, 'accept-encoding': acceptEncoding }, 'HEAD');
      assert.is(head.headers['content-length'], res.headers['content-length'], 'HEAD announces the same encoded length');
      assert.is(head.body.length, 0);
    }
    const plain = await getBytes(port, headers);
    assert.is(plain.headers['x-seen-accept-encoding'], 'none', 'no Accept-Encoding is added');
    assert.is(plain.headers['content-encoding'], undefined);
    assert.is(plain.body.toString(), PAGE);
  }
});

test('auth: a valid session passes; the app learns the user but never sees the session cookie', async () => {
  harness.sessions.set('s3cret', 'alice');
  const res = await rawGet(ports.gated, { cookie: 'theme=dark; piccolo_session=s3cret; lang=en', 'x-piccolo-user': 'mallory' });
  assert.is(res.status, 200);
  const seen = JSON.parse(res.body);
  assert.is(seen.headers.cookie, 'theme=dark; lang=en');
  assert.is(seen.headers['x-piccolo-user'], 'alice');
  await waitFor(() => harness.proxy.logs.find((l) => l.msg === 'request' && l.app === 'gated' && l.status === 200 && l.path === '/page'), 3000, 'request_log line');
});

test('a private listener is gated even without auth in its middleware, on its port and by host name', async () => {
  assert.is((await rawGet(ports.privateDefault)).status, 401);
  assert.is((await rawGet(harness.portalPort, { host: 'web-private.piccolo.local' })).status, 401);
  assert.is((await rawGet(ports.privateDefault, { cookie: 'piccolo_session=s3cret' })).status, 200);
});

test('auth: WebSocket upgrades are gated too', async () => {
  const reply = await new Promise<string>((resolve) => {
    const socket = net.connect(ports.gated, '127.0.0.1', () =>
      socket.write('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'),
    );
    let data = '';
    socket.on('data', (d) => (data += d)).on('close', () => resolve(data));
  });
  assert.match(reply, /^HTTP\/1.1 401/);
});

test('rate_limit: the burst passes, then 429 with Retry-After', async () => {
  const statuses = [];
  for (let i = 0; i < 5; i++) statuses.push((await rawGet(ports.limited)).status);
  assert.equal(statuses, [200, 200, 200, 429, 429]);
  const limited = await rawGet(ports.limited);
  assert.ok(Number(limited.headers['retry-after']) >= 1);
});

test('ip_allow: a client outside the list is refused at connect time', async () => {
  const outcome = await rawGet(ports.lanOnly).then((r) => `status ${r.status}`, (err) => err.code);
  assert.match(outcome, /ECONNRESET|EPIPE|socket hang up/);
});

test('connection_limit: a third concurrent connection is refused; a slot frees when one closes', async () => {
  const open = async () => {
    const socket = net.connect(ports.capped, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    return socket;
  };
  const [a, b] = [await open(), await open()];
  await new Promise((r) => setTimeout(r, 100));
  const third = await rawGet(ports.capped).then((r) => `status ${r.status}`, (err) => err.code);
  assert.match(third, /ECONNRESET|EPIPE|socket hang up/);
  a.destroy();
  await new Promise((r) => setTimeout(r, 100));
  assert.is((await rawGet(ports.capped)).status, 200);
  b.destroy();
});

test.run();
