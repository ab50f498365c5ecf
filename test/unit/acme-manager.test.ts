// The certificate manager's schedule with an injected clock and timer: a stored certificate is
// served at once and renewed at 2/3 of its lifetime; a failed renewal (a real ACME address that
// refuses connections) backs off, keeps serving the old certificate until it expires, and says
// why. Names are checked before anything is ordered.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../image/qemu.js';
import { BadRequestError, NotFoundError, PiccoloError } from '../../services/common/errors.js';
import { createLogger } from '../../services/common/logger.js';
import { CertificateIssueError, CertificateManager, CertificateRateLimitedError, type CertificatePair } from '../../services/daemon/remote/acme/certificate-manager.js';
import { rejects, thrown } from '../support/assertions.js';
import { selfSignedCert } from '../support/certs.js';
import { waitFor } from '../support/processes.js';

const NAME = 'portal.example.test';
const DAY = 86400_000;

interface Timer {
  delayMs: number;
  run: () => void;
  cancelled: boolean;
}

function selfSigned(name: string, days: number): Promise<CertificatePair> {
  return selfSignedCert([name], days);
}

async function setup(stored: Record<string, string>, directory?: string) {
  const dir = await mkdtemp(path.join(tmpdir(), 'piccolo-acme-unit-'));
  await mkdir(path.join(dir, 'certificates'), { recursive: true });
  for (const [file, content] of Object.entries(stored)) await writeFile(path.join(dir, 'certificates', file), content);
  // Nothing listens there: every order fails with a real "connection refused".
  const directoryUrl = directory ?? `http://127.0.0.1:${await freePort()}/dir`;
  const clock = { now: Date.now() };
  const timers: Timer[] = [];
  const changes: CertificatePair[][] = [];
  const logLines: string[] = [];
  const manager = new CertificateManager({
    dir,
    directoryUrl,
    logger: createLogger({ service: 'daemon', level: 'debug', write: (line) => logLines.push(line) }),
    now: () => clock.now,
    onChange: (pairs) => changes.push(pairs),
    schedule: (delayMs, run) => {
      const timer = { delayMs, run, cancelled: false };
      timers.push(timer);
      return () => (timer.cancelled = true);
    },
    backoff: { minMs: 60_000, maxMs: 3600_000 },
    random: () => 0.5,
  });
  const armed = () => {
    const live = timers.filter((t) => !t.cancelled);
    assert.is(live.length, 1, 'exactly one timer armed');
    return live[0]!;
  };
  /** Moves the clock to the armed timer's time and runs it; resolves when that work is done. */
  const fire = async () => {
    const timer = armed();
    clock.now += timer.delayMs;
    timer.cancelled = true;
    timer.run();
    await waitFor(() => timers.some((t) => !t.cancelled) || undefined, 10_000, 'the timer re-armed');
  };
  return { dir, directoryUrl, clock, timers, changes, logLines, manager, armed, fire };
}

test('a stored certificate is served at once, renewed at 2/3 of its lifetime; failures back off and keep serving until expiry', async () => {
  const pair = await selfSigned(NAME, 90);
  const t = await setup({ [`${NAME}.json`]: JSON.stringify(pair) });
  try {
    await t.manager.start();
    t.manager.setNames([NAME]);
    assert.equal(t.manager.current(), [pair]);
    assert.equal(t.changes, [[pair]], 'onChange heard of the stored certificate');
    const [info] = t.manager.inventory();
    assert.is(info!.state, 'valid');
    assert.is(info!.issuer, NAME);
    const notBefore = Date.parse(info!.notBefore!);
    const renewAt = notBefore + 60 * DAY;
    assert.is(Date.parse(info!.notAfter!), notBefore + 90 * DAY);
    assert.is(Date.parse(info!.renewAt!), renewAt);
    assert.is(t.clock.now + t.armed().delayMs, renewAt, 'the timer is set for the renewal time');

    await t.fire();
    assert.is(t.clock.now, renewAt);
    const failed = t.manager.inventory()[0]!;
    assert.is(failed.state, 'failed');
    assert.is(failed.lastError, `could not reach the ACME server at ${t.directoryUrl}: connection refused`);
    // random 0.5 of a 60 s ceiling: 45 s.
    assert.is(Date.parse(failed.nextAttemptAt!), renewAt + 45_000);
    assert.is(t.armed().delayMs, 45_000);
    assert.equal(t.manager.current(), [pair], 'the old certificate is still served');

    await t.fire();
    assert.is(Date.parse(t.manager.inventory()[0]!.nextAttemptAt!), t.clock.now + 90_000, 'the second retry waits twice as long');

    const err = await rejects(t.manager.renew(NAME), CertificateIssueError);
    assert.is(err.status, 502);
    assert.match(err.message, `${NAME}: could not reach the ACME server`);
    assert.is(Date.parse(t.manager.inventory()[0]!.nextAttemptAt!), t.clock.now + 180_000);

    // Past its expiry the certificate is no longer served, and onChange hears of it.
    t.clock.now = Date.parse(info!.notAfter!) + 1;
    await t.fire();
    assert.equal(t.manager.current(), []);
    assert.equal(t.changes.at(-1), []);
    assert.is(t.manager.inventory()[0]!.state, 'failed');
    assert.not.match(t.logLines.join(''), /PRIVATE KEY/);
  } finally {
    await t.manager.stop();
    await rm(t.dir, { recursive: true, force: true });
  }
});

test('setNames checks every name, normalises case, and dropping a name stops serving it and removes its file', async () => {
  const pair = await selfSigned(NAME, 90);
  const t = await setup({ [`${NAME}.json`]: JSON.stringify(pair) });
  try {
    await t.manager.start();
    const bad = thrown(() => t.manager.setNames(['ok.example.test', 'not a name']), BadRequestError);
    assert.match(bad.message, /^names\[1\]: /);
    assert.match(thrown(() => t.manager.setNames(['*.example.test']), BadRequestError).message, /^names\[0\]/);
    assert.match(thrown(() => t.manager.setNames(['localhost']), BadRequestError).message, /^names\[0\]/);
    assert.equal(t.manager.current(), [pair], 'a refused list changes nothing');
    assert.match((await rejects(t.manager.renew('unknown.example.test'), NotFoundError)).message, /^name: /);

    t.manager.setNames(['Other.Example.Test.']);
    assert.equal(t.manager.inventory().map((c) => [c.name, c.state]), [['other.example.test', 'pending']]);
    assert.equal(t.manager.current(), []);
    assert.equal(t.changes.at(-1), []);
    await waitFor(async () => !(await readdir(path.join(t.dir, 'certificates'))).includes(`${NAME}.json`) || undefined, 5000, 'the dropped file removed');
  } finally {
    await t.manager.stop();
    await rm(t.dir, { recursive: true, force: true });
  }
});

test('a stored file that does not load (corrupt, or a key of another certificate) is ignored and the name ordered again', async () => {
  const one = await selfSigned(NAME, 90);
  const other = await selfSigned('b.example.test', 90);
  const t = await setup({ [`${NAME}.json`]: '{"key": "trunc', 'b.example.test.json': JSON.stringify({ key: one.key, cert: other.cert }) });
  try {
    await t.manager.start();
    t.manager.setNames([NAME, 'b.example.test']);
    assert.equal(t.manager.current(), []);
    assert.ok(t.manager.inventory().every((c) => c.state === 'pending'));
    assert.is(t.armed().delayMs, 0, 'ordered at once');
    assert.is(t.logLines.filter((l) => l.includes('does not load')).length, 2);
  } finally {
    await t.manager.stop();
    await rm(t.dir, { recursive: true, force: true });
  }
});

test('a stop while start is still loading leaves the manager stopped: no timer, no order', async () => {
  const t = await setup({ [`${NAME}.json`]: JSON.stringify(await selfSigned(NAME, 90)) });
  try {
    const starting = t.manager.start();
    t.manager.setNames([NAME, 'other.example.test']);
    await Promise.all([starting, t.manager.stop()]);
    assert.is(t.timers.length, 0);
    assert.equal(t.manager.current(), []);
    assert.equal(t.changes, []);
    assert.is((await rejects(t.manager.renew(), PiccoloError)).status, 503);
  } finally {
    await rm(t.dir, { recursive: true, force: true });
  }
});

/**
 * Pebble has no rate limits, so this stand-in plays an ACME server that accepts the account and
 * then refuses the order as Let's Encrypt does when a limit is hit: 429, a rateLimited problem,
 * and Retry-After.
 */
async function rateLimitingAcme(retryAfterSeconds: number): Promise<{ url: string; orders: () => number; close: () => void }> {
  let orders = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const nonce = { 'replay-nonce': `n${Math.random().toString(36).slice(2)}` };
    if (req.url === '/dir') return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ newNonce: `${base}/nonce`, newAccount: `${base}/account`, newOrder: `${base}/order` }));
    if (req.url === '/nonce') return res.writeHead(200, nonce).end();
    if (req.url === '/account') return res.writeHead(201, { ...nonce, location: `${base}/account/1`, 'content-type': 'application/json' }).end(JSON.stringify({ status: 'valid' }));
    orders++;
    res
      .writeHead(429, { ...nonce, 'retry-after': String(retryAfterSeconds), 'content-type': 'application/problem+json' })
      .end(JSON.stringify({ type: 'urn:ietf:params:acme:error:rateLimited', detail: 'too many new orders recently', status: 429 }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/dir`, orders: () => orders, close: () => server.close() };
}

test('a rate limit (429, Retry-After) waits at least that long, and a manual renew is refused until then', async () => {
  const acmeServer = await rateLimitingAcme(7200);
  const t = await setup({}, acmeServer.url);
  try {
    await t.manager.start();
    t.manager.setNames([NAME]);
    await t.fire();
    const info = t.manager.inventory()[0]!;
    assert.is(info.state, 'failed');
    assert.is(info.lastError, 'the ACME server rate-limits this request: too many new orders recently');
    assert.is(Date.parse(info.nextAttemptAt!), t.clock.now + 7200_000, 'Retry-After, not the 45 s backoff');
    assert.is(t.armed().delayMs, 7200_000);
    assert.is(acmeServer.orders(), 1, 'acme-client itself did not retry');
    const refused = await rejects(t.manager.renew(NAME), CertificateRateLimitedError);
    assert.is(refused.status, 429);
    assert.match(refused.message, new Date(t.clock.now + 7200_000).toISOString());
    assert.is(acmeServer.orders(), 1);
  } finally {
    await t.manager.stop();
    acmeServer.close();
    await rm(t.dir, { recursive: true, force: true });
  }
});

test.run();
