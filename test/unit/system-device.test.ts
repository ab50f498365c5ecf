// The device's identity parts: the CA certificate the proxy hands over (checked with Node's
// X509Certificate), the device name over a real control store (and its plain copy for a locked
// device), the proxy's push of the CA with retries, and the health service client against real
// HTTP servers on loopback (answering, answering 503, hanging, gone).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BadRequestError, NotFoundError } from '../../services/common/errors.js';
import { createLogger } from '../../services/common/logger.js';
import { CONTROL_MIGRATIONS, CONTROL_SCHEMA_VERSION, initialControlDocument, type ControlDocument } from '../../services/daemon/control-document.js';
import { ControlStore } from '../../services/daemon/store/store.js';
import { DeviceCa } from '../../services/daemon/system/device-ca.js';
import { DeviceName, parseDeviceName } from '../../services/daemon/system/device-name.js';
import { healthFromDetail, readHealth } from '../../services/daemon/system/health-client.js';
import { DeviceCaPush } from '../../services/proxy/device-ca-push.js';
import { LocalCa } from '../../services/proxy/local-ca.js';
import { Backoff } from '../../services/common/backoff.js';
import { waitFor } from '../support/processes.js';
import { listenOn } from '../support/proxy-harness.js';
import { rejects, thrown } from '../support/assertions.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-system-device-'));
const logger = createLogger({ service: 'test', write: () => {} });
const ca = await LocalCa.create('test');

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('device CA: 404 until handed over, then its subject, SHA-256 fingerprint and expiry', () => {
  const store = new DeviceCa();
  assert.match(thrown(() => store.pem, NotFoundError).message, /proxy/);
  const info = store.set(ca.root.cert);
  const x509 = new X509Certificate(ca.root.cert);
  assert.is(info.sha256Fingerprint, x509.fingerprint256);
  assert.match(info.sha256Fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  assert.match(info.subject, /CN=Piccolo device CA \(test\)/);
  assert.is(info.notAfter, new Date(x509.validTo).toISOString());
  assert.ok(Date.parse(info.notAfter) > Date.now() + 9 * 365 * 86_400_000, 'ten years');
  assert.is(new X509Certificate(store.pem).fingerprint256, x509.fingerprint256);
});

test('device CA: a leaf certificate, garbage or no string is a 400 naming certificate', async () => {
  const store = new DeviceCa();
  const leaf = (await ca.issue(['piccolo.local'])).cert;
  for (const bad of [leaf, 'hello', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 42, undefined]) {
    assert.match(thrown(() => store.set(bad), BadRequestError).message, /^certificate: /);
  }
  thrown(() => store.info, NotFoundError);
});

async function openStore(name: string): Promise<ControlStore<ControlDocument>> {
  return ControlStore.open<ControlDocument>({ dir: path.join(dir, name), logger, schemaVersion: CONTROL_SCHEMA_VERSION, migrations: CONTROL_MIGRATIONS, initial: initialControlDocument });
}

test('device name: the configured one until set; set goes to the store, its copy and the listeners', async () => {
  const store = await openStore('store-a');
  const cacheFile = path.join(dir, 'name-a');
  const names = new DeviceName({ fallback: 'piccolo', cacheFile, logger });
  const seen: string[] = [];
  names.onChange((info) => seen.push(info.hostname));
  await names.start();
  names.follow(store);
  assert.equal(names.info, { name: 'piccolo', hostname: 'piccolo.local' });
  await names.flushed();
  assert.not.ok(existsSync(cacheFile), 'no copy while no name was set');
  assert.equal(await names.set('homebox', store), { name: 'homebox', hostname: 'homebox.local' });
  assert.is(store.data.device.name, 'homebox');
  assert.equal(seen, ['homebox.local']);
  await names.flushed();
  assert.is(readFileSync(cacheFile, 'utf8'), 'homebox\n');
  // Another commit (a follower's copy, say) that changes the name is followed too.
  await store.commit((draft) => void (draft.device.name = 'den'));
  assert.is(names.current, 'den');
  assert.equal(seen, ['homebox.local', 'den.local']);
  // Locked: the last name stays.
  names.follow(undefined);
  assert.is(names.current, 'den');
  await names.stop();
  await store.close();
});

test('device name: bad names are a 400 naming name, and the store keeps the old one', async () => {
  const store = await openStore('store-b');
  const names = new DeviceName({ fallback: 'piccolo', cacheFile: path.join(dir, 'name-b'), logger });
  names.follow(store);
  for (const bad of ['Piccolo', 'a', 'has space', 'ends-', '-starts', '9lives', 'x'.repeat(33), 'dot.ted', '']) {
    const err = await rejects(names.set(bad, store), BadRequestError);
    assert.match(err.message, /^name: /, bad);
  }
  assert.is(store.data.device.name, undefined);
  assert.is(names.current, 'piccolo');
  assert.is(parseDeviceName('a1-b2'), 'a1-b2');
  await names.stop();
  await store.close();
});

test('device name: a locked restart answers at the copied name; the store wins once unlocked', async () => {
  const cacheFile = path.join(dir, 'name-c');
  writeFileSync(cacheFile, 'attic\n');
  const names = new DeviceName({ fallback: 'piccolo', cacheFile, logger });
  await names.start();
  assert.is(names.current, 'attic');
  const store = await openStore('store-c');
  await store.commit((draft) => void (draft.device.name = 'cellar'));
  names.follow(store);
  assert.is(names.current, 'cellar');
  await names.stop();
  assert.is(readFileSync(cacheFile, 'utf8'), 'cellar\n');
  // A garbled copy is ignored: the configured name.
  writeFileSync(cacheFile, 'NOT A LABEL\n');
  const again = new DeviceName({ fallback: 'piccolo', cacheFile, logger });
  await again.start();
  assert.is(again.current, 'piccolo');
  await again.stop();
  await store.close();
});

test('CA push: retried with backoff until the daemon takes it, again on demand; stop cancels', async () => {
  const pushed: string[] = [];
  let failuresLeft = 3;
  const daemon = {
    pushDeviceCa: async (pem: string) => {
      if (failuresLeft-- > 0) throw new Error('daemon socket: ENOENT');
      pushed.push(pem);
      return true;
    },
  };
  const push = new DeviceCaPush({ daemon, certificate: () => ca.root.cert, logger, backoff: new Backoff({ initialMs: 5, maxMs: 20, stableMs: 1000 }) });
  await push.start();
  await waitFor(() => pushed.length === 1 || undefined, 3000, 'pushed after three failures');
  assert.is(pushed[0], ca.root.cert);
  push.push();
  await waitFor(() => pushed.length === 2 || undefined, 3000, 'pushed again');
  failuresLeft = Infinity;
  push.push();
  await new Promise((r) => setTimeout(r, 30));
  const t0 = Date.now();
  await push.stop();
  assert.ok(Date.now() - t0 < 500, 'stop does not wait for the daemon');
  push.push(); // after stop: nothing happens
  assert.is(pushed.length, 2);
});

async function server(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const srv = http.createServer(handler);
  const port = await listenOn(srv);
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => { srv.closeAllConnections(); srv.close(() => resolve()); }) };
}

const DETAIL = {
  ready: false,
  reasons: ['proxy: down (has not reported yet)'],
  notes: ['daemon.apps: degraded (apps unavailable: locked)'],
  components: [
    { component: 'daemon', state: 'ok', required: true, lastReport: '2026-12-01T10:00:00.000Z' },
    { component: 'daemon.apps', state: 'degraded', reason: 'apps unavailable: locked', required: true },
    { component: 'proxy', state: 'down', reason: 'has not reported yet', required: true },
  ],
  uptimeSeconds: 12,
};

test('health: a 503 from the health service is an answer (not ready), in the portal\'s words', async () => {
  const health = await server((req, res) => {
    assert.is(req.url, '/health/detail');
    res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify(DETAIL));
  });
  try {
    assert.equal(await readHealth({ url: health.url }), {
      reachable: true,
      ready: false,
      components: [
        { name: 'daemon', status: 'ok' },
        { name: 'daemon.apps', status: 'degraded', reason: 'apps unavailable: locked' },
        { name: 'proxy', status: 'down', reason: 'has not reported yet' },
      ],
      reasons: DETAIL.reasons,
      notes: DETAIL.notes,
    });
  } finally {
    await health.close();
  }
});

test('health: gone, hanging or not the health service is reachable false with a reason to act on', async () => {
  const gone = await server(() => {});
  await gone.close();
  const hanging = await server(() => {}); // accepts, never answers
  const other = await server((_req, res) => res.writeHead(200).end('<html>'));
  try {
    const down = await readHealth({ url: gone.url });
    assert.is(down.reachable, false);
    assert.is(down.ready, false);
    assert.match(down.reasons[0]!, /did not answer \(ECONNREFUSED\).*restart/);
    const t0 = Date.now();
    const slow = await readHealth({ url: hanging.url, timeoutMs: 200 });
    assert.ok(Date.now() - t0 < 1000, 'the deadline holds');
    assert.is(slow.reachable, false);
    assert.match(slow.reasons[0]!, /timeout/);
    assert.is((await readHealth({ url: other.url })).reachable, false);
  } finally {
    await hanging.close();
    await other.close();
  }
  assert.throws(() => healthFromDetail({} as never), /not a health detail/);
});

test.run();
