// The certificate manager's schedule with an injected clock and timer: a stored certificate is
// served at once and renewed at 2/3 of its lifetime; a failed renewal (a real ACME address that
// refuses connections) backs off, keeps serving the old certificate until it expires, and says
// why. Names are checked before anything is ordered.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../image/qemu.js';
import { BadRequestError } from '../../services/common/errors.js';
import { createLogger } from '../../services/common/logger.js';
import { CertificateIssueError, CertificateManager, type CertificatePair } from '../../services/daemon/remote/acme/certificate-manager.js';
import { rejects, thrown } from '../support/assertions.js';
import { waitFor } from '../support/processes.js';

const execFileAsync = promisify(execFile);
const NAME = 'portal.example.test';
const DAY = 86400_000;

interface Timer {
  delayMs: number;
  run: () => void;
  cancelled: boolean;
}

async function selfSigned(name: string, days: number): Promise<CertificatePair> {
  const dir = await mkdtemp(path.join(tmpdir(), 'piccolo-acme-cert-'));
  try {
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    await execFileAsync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', String(days), '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`, '-keyout', key, '-out', cert]);
    return { key: await readFile(key, 'utf8'), cert: await readFile(cert, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function setup(stored: Record<string, string>) {
  const dir = await mkdtemp(path.join(tmpdir(), 'piccolo-acme-unit-'));
  await mkdir(path.join(dir, 'certificates'), { recursive: true });
  for (const [file, content] of Object.entries(stored)) await writeFile(path.join(dir, 'certificates', file), content);
  // Nothing listens there: every order fails with a real "connection refused".
  const directoryUrl = `http://127.0.0.1:${await freePort()}/dir`;
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

test.run();
