// The four bundles as real processes: READY only once serving, watchdog pings, health aggregation,
// clean SIGTERM, and a clear failure on bad configuration. systemd itself is played by
// test/support/notify-receiver.py (systemd is not PID 1 on this machine); the image test uses the real one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bundleServices, type ServiceName } from '../../image/bundle.js';
import { ServiceProcess, getJson, waitFor } from '../support/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-services-'));
const shared = {
  PICCOLO_HEALTH_SOCKET: path.join(dir, 'health.sock'),
  PICCOLO_HEALTH_INTERVAL_MS: '200',
  PICCOLO_TPM_TCTI: 'none',
  PICCOLO_CONSOLE: 'none',
};
const running: ServiceProcess[] = [];
let healthUrl = '';

async function start(service: ServiceName, env: Record<string, string> = {}): Promise<ServiceProcess> {
  const proc = await ServiceProcess.start(service, { ...shared, ...env });
  running.push(proc);
  return proc;
}

test.before(async () => {
  await bundleServices();
});

test.after(async () => {
  await Promise.all(running.map((p) => p.kill('SIGKILL')));
});

test('health: READY comes after its port answers; not ready until required services report', async () => {
  const health = await start('health', { PICCOLO_HEALTH_LISTEN: '127.0.0.1:0', WATCHDOG_USEC: '200000' });
  await health.notified('READY=1');
  healthUrl = `http://${await health.address('http')}`;
  const ready = await getJson(`${healthUrl}/health/ready`);
  assert.is(ready.status, 503);
  assert.equal(ready.body.reasons, ['daemon: down (has not reported yet)', 'proxy: down (has not reported yet)']);
  const status = await health.notified('STATUS=not ready');
  assert.match(status.message, /daemon: down/);
  await health.notified('WATCHDOG=1');
  assert.equal((await getJson(`${healthUrl}/health/live`)).body, { live: true });
});

test('the proxy without a route table serves 503 "starting" and is not ready; with the daemon up, the device turns ready and says so', async () => {
  // The proxy first, as when the daemon is slow to start: it listens, but every request gets 503.
  const internalSocket = path.join(dir, 'internal.sock');
  const proxy = await start('proxy', { PICCOLO_PROXY_LISTEN: '127.0.0.1:0,127.0.0.1:0', PICCOLO_PROXY_DAEMON_SOCKET: internalSocket });
  await proxy.notified('READY=1');
  for (const listener of ['listener-0', 'listener-1']) {
    const res = await getJson(`http://${await proxy.address(listener)}/some/app`);
    assert.is(res.status, 503, listener);
    assert.match(res.body.error.message, /starting/);
  }
  const waiting = await waitFor(async () => {
    const r = await getJson(`${healthUrl}/health/ready`);
    return r.body.reasons.some((reason: string) => reason.startsWith('proxy:')) && !r.body.reasons.includes('proxy: down (has not reported yet)') ? r : undefined;
  }, 5000, 'the proxy reports in');
  assert.is(waiting.status, 503);
  assert.ok(waiting.body.reasons.includes('proxy: down (waiting for the first route table from the daemon)'), waiting.body.reasons.join('; '));

  const daemon = await start('daemon', { PICCOLO_DAEMON_LISTEN: '127.0.0.1:0', PICCOLO_STATE_DIR: path.join(dir, 'state'), PICCOLO_DAEMON_INTERNAL_SOCKET: internalSocket });
  const tunnel = await start('tunnel', { PICCOLO_TUNNEL_LISTEN: '127.0.0.1:0' });
  await Promise.all([daemon, tunnel].map((p) => p.notified('READY=1')));
  // The proxy's next poll (its backoff is at most 10 s) brings the daemon's table.
  const ready = await waitFor(async () => {
    const r = await getJson(`${healthUrl}/health/ready`);
    return r.status === 200 ? r : undefined;
  }, 15_000, 'device ready');
  assert.equal(ready.body.notes, ['daemon.crypto: ok (not set up yet, waiting for setup)', 'tunnel: ok (remote access not configured)']);
  const detail = await getJson(`${healthUrl}/health/detail`);
  assert.equal(detail.body.components.map((c: any) => `${c.component}:${c.state}:${c.required}`), ['daemon:ok:true', 'daemon.crypto:ok:true', 'proxy:ok:true', 'tunnel:ok:false']);
  const health = running[0]!;
  await health.notified('STATUS=ready');
});

test('daemon serves the portal shell, its script and its version', async () => {
  const daemon = running.find((p) => p.service === 'daemon')!;
  const base = `http://${await daemon.address('http')}`;
  const page = await fetch(base + '/');
  assert.is(page.status, 200);
  assert.match(page.headers.get('content-type')!, /text\/html/);
  assert.match(page.headers.get('content-security-policy')!, /default-src 'self'/);
  // The shell: the portal draws the wizard in the browser from the script it names.
  const shell = await page.text();
  assert.match(shell, /<title>Piccolo OS<\/title>/);
  const src = /<script type="module" src="(\/assets\/main\.[A-Z0-9]+\.js)">/.exec(shell)?.[1];
  assert.ok(src, 'the shell names its script');
  const script = await fetch(base + src);
  assert.is(script.status, 200);
  assert.match(script.headers.get('content-type')!, /javascript/);
  assert.ok((await script.text()).length > 1000, 'the script has a body');
  const version = await getJson(base + '/api/v1/version');
  assert.equal({ ...version.body, node: undefined }, { name: 'piccolod', version: '0.1.0', api: 'v1', node: undefined });
  assert.is((await getJson(base + '/api/v1/nothing')).status, 404);
});

test('the proxy with the daemon\'s table serves the portal on every configured listener', async () => {
  const proxy = running.find((p) => p.service === 'proxy')!;
  for (const listener of ['listener-0', 'listener-1']) {
    const res = await fetch(`http://${await proxy.address(listener)}/`);
    assert.is(res.status, 200, listener);
    assert.match(await res.text(), /<title>Piccolo OS<\/title>/);
  }
});

test('a killed service goes down in health once its heartbeat stops; a stopped one at once', async () => {
  const proxy = running.find((p) => p.service === 'proxy')!;
  await proxy.kill('SIGKILL');
  const afterKill = await waitFor(async () => {
    const r = await getJson(`${healthUrl}/health/ready`);
    return r.status === 503 ? r : undefined;
  }, 2000, 'health notices the killed proxy');
  assert.match(afterKill.body.reasons[0], /^proxy: down \(stopped reporting/);

  const daemon = running.find((p) => p.service === 'daemon')!;
  const t0 = Date.now();
  assert.is(await daemon.kill('SIGTERM'), 0, 'clean exit on SIGTERM');
  const reasons = (await getJson(`${healthUrl}/health/ready`)).body.reasons;
  assert.ok(reasons.includes('daemon: down (stopping)'), `daemon reported down on stop (${reasons}), ${Date.now() - t0} ms`);
});

test('the report socket refuses malformed reports with a 400', async () => {
  const res = await new Promise<string>((resolve, reject) => {
    const body = JSON.stringify({ component: 'x', state: 'splendid', ttlMs: 1000 });
    const socket = net.connect(shared.PICCOLO_HEALTH_SOCKET, () =>
      socket.end(`POST /v1/report HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`),
    );
    let data = '';
    socket.on('data', (d) => (data += d)).on('end', () => resolve(data)).on('error', reject);
  });
  assert.match(res, /^HTTP\/1.1 400/);
  assert.match(res, /state: must be one of/);
});

test('bad configuration: exits 1 naming the variable, never READY', async () => {
  const proc = await start('daemon', { PICCOLO_DAEMON_LISTEN: 'everywhere' });
  assert.is(await proc.exited, 1);
  assert.match(JSON.stringify(proc.logs), /PICCOLO_DAEMON_LISTEN: must be host:port/);
  assert.is(proc.notifications.find((n) => n.message.includes('READY=1')), undefined);
});

test('a port already taken: exits 1 with EADDRINUSE, never READY', async () => {
  const tunnel = running.find((p) => p.service === 'tunnel')!;
  const proc = await start('daemon', { PICCOLO_DAEMON_LISTEN: await tunnel.address('status'), PICCOLO_STATE_DIR: path.join(dir, 'state') });
  assert.is(await proc.exited, 1);
  assert.match(JSON.stringify(proc.logs), /EADDRINUSE/);
  assert.is(proc.notifications.find((n) => n.message.includes('READY=1')), undefined);
});

test.run();
