// The certificate manager against Debian's real pebble on loopback: HTTP-01 answered from
// challengeAnswer() by a server on pebble's validation port, chains checked against pebble's
// root with a real TLS handshake, restart without reissue, manual renewal that keeps serving,
// failures with a clear lastError and backoff, and renewal by the scheduler at 2/3 of a short
// lifetime.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { createLogger } from '../../services/common/logger.js';
import { CertificateIssueError, CertificateManager, type CertificateManagerOptions, type CertificatePair } from '../../services/daemon/remote/acme/certificate-manager.js';
import { rejects } from '../support/assertions.js';
import { startPebble, trustPebbleApi, type Pebble } from '../support/pebble.js';
import { waitFor } from '../support/processes.js';

const PORTAL = 'portal.example.test';
const APP = 'web-blog.apps.example.test';
const UNRESOLVED = 'nowhere.example.test';

let pebble: Pebble;
let untrust: () => void;
let dir: string;
let root: string;
const logLines: string[] = [];
/** The manager whose challenges the responder answers, and what it saw during validations. */
let serving: CertificateManager | undefined;
const validations: { token: string; states: string[]; served: number }[] = [];
let responder: http.Server | undefined;
let manager: CertificateManager;
const changes: CertificatePair[][] = [];

test.before(async () => {
  pebble = await startPebble();
  untrust = await trustPebbleApi(pebble);
  await pebble.resolve(PORTAL);
  await pebble.resolve(APP);
  root = await pebble.issuerRoot();
  dir = await mkdtemp(path.join(tmpdir(), 'piccolo-acme-'));
  await startResponder();
});

test.after(async () => {
  await manager?.stop();
  await stopResponder();
  untrust?.();
  await pebble?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function newManager(options: Partial<CertificateManagerOptions> = {}): CertificateManager {
  const logger = createLogger({ service: 'daemon', level: 'debug', write: (line) => logLines.push(line) });
  const created = new CertificateManager({
    dir,
    directoryUrl: pebble.directoryUrl,
    // No contact address, as the daemon runs by default: a restarted manager then looks its account
    // up (registering it again would be an empty update, which pebble refuses).
    logger,
    onChange: (pairs) => changes.push(pairs),
    // Long enough that no retry runs inside a test unless the test asks for one.
    backoff: { minMs: 60_000, maxMs: 600_000 },
    ...options,
  });
  serving = created;
  return created;
}

async function startResponder(): Promise<void> {
  responder = http.createServer((req, res) => {
    const token = /^\/\.well-known\/acme-challenge\/([^/]+)$/.exec(req.url ?? '')?.[1];
    const answer = token === undefined ? undefined : serving?.challengeAnswer(token);
    if (token !== undefined) validations.push({ token, states: serving!.inventory().map((c) => `${c.name}=${c.state}`), served: serving!.current().length });
    res.writeHead(answer === undefined ? 404 : 200, { 'content-type': 'text/plain' }).end(answer ?? 'no such challenge');
  });
  await new Promise<void>((resolve) => responder!.listen(pebble.httpPort, '127.0.0.1', resolve));
}

async function stopResponder(): Promise<void> {
  if (!responder) return;
  const closing = new Promise((resolve) => responder!.close(resolve));
  responder.closeAllConnections();
  await closing;
  responder = undefined;
}

/** A real handshake: the pair served for name, verified against pebble's issuing root. */
async function verifiedByRoot(pair: CertificatePair, name: string): Promise<string> {
  const server = tls.createServer({ key: pair.key, cert: pair.cert }, (socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as { port: number }).port;
    return await new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername: name, ca: root }, () => {
        const subject = socket.getPeerX509Certificate()!.subjectAltName ?? '';
        socket.destroy();
        resolve(subject);
      });
      socket.once('error', reject);
    });
  } finally {
    server.close();
  }
}

test('issues one certificate per name by HTTP-01; each chain verifies against pebble’s root; files are 0600', async () => {
  manager = newManager();
  await manager.start();
  manager.setNames([PORTAL, APP]);
  await waitFor(() => manager.inventory().every((c) => c.state === 'valid') || undefined, 30_000, 'both certificates valid');

  const inventory = manager.inventory();
  assert.equal(inventory.map((c) => c.name), [PORTAL, APP]);
  for (const info of inventory) {
    assert.match(info.issuer!, /^Pebble Intermediate CA/);
    assert.is(info.lastError, undefined);
    const lifetime = Date.parse(info.notAfter!) - Date.parse(info.notBefore!);
    assert.is(Date.parse(info.renewAt!), Date.parse(info.notBefore!) + Math.floor((lifetime * 2) / 3));
  }
  const pairs = manager.current();
  assert.is(pairs.length, 2);
  assert.is(await verifiedByRoot(pairs[0]!, PORTAL), `DNS:${PORTAL}`);
  assert.is(await verifiedByRoot(pairs[1]!, APP), `DNS:${APP}`);
  assert.equal(changes.at(-1), pairs, 'onChange got the served pairs');
  assert.ok(validations.length >= 2, 'pebble fetched the challenges from the responder');

  const files = [path.join(dir, 'account.key.pem'), ...(await readdir(path.join(dir, 'certificates'))).map((f) => path.join(dir, 'certificates', f))];
  assert.is(files.length, 3);
  for (const file of files) assert.is((await stat(file)).mode & 0o777, 0o600, file);
  const log = logLines.join('');
  assert.not.match(log, /PRIVATE KEY/);
  for (const pair of pairs) assert.not.ok(log.includes(pair.key.split('\n')[1]!), 'no key material in the log');
});

test('a restarted manager serves the stored certificates at once and orders nothing', async () => {
  const before = manager.current();
  await manager.stop();
  const validationsBefore = validations.length;
  const delays: number[] = [];
  manager = newManager({ schedule: (delayMs) => (delays.push(delayMs), () => undefined) });
  await manager.start();
  manager.setNames([APP, PORTAL]);
  assert.equal(manager.current(), before);
  assert.ok(manager.inventory().every((c) => c.state === 'valid'));
  // The next wakeup is the first renewal, years away for pebble's five-year certificates.
  assert.ok(Math.min(...delays) > 365 * 86400_000, `next wakeup in ${Math.min(...delays)} ms`);
  assert.is(validations.length, validationsBefore);
});

test('renew() orders a new certificate while the old one is still served', async () => {
  await manager.stop();
  manager = newManager();
  await manager.start();
  manager.setNames([PORTAL, APP]);
  const [oldPortal, oldApp] = manager.current();
  const validationsBefore = validations.length;
  await manager.renew(APP);
  const [samePortal, newApp] = manager.current();
  assert.is.not(newApp!.cert, oldApp!.cert);
  assert.is(samePortal!.cert, oldPortal!.cert, 'the other name is not reissued');
  assert.is(await verifiedByRoot(newApp!, APP), `DNS:${APP}`);
  const during = validations.slice(validationsBefore);
  assert.ok(during.length >= 1);
  assert.ok(during.every((v) => v.states.includes(`${APP}=renewing`) && v.served === 2), JSON.stringify(during));
  const stored = JSON.parse(await readFile(path.join(dir, 'certificates', `${APP}.json`), 'utf8'));
  assert.is(stored.cert, newApp!.cert, 'the new certificate is what is stored');
});

test('failures: an unresolvable name and a challenge server that is down give state failed, a clear lastError and backoff; valid certificates stay served', async () => {
  manager.setNames([PORTAL, APP, UNRESOLVED]);
  await waitFor(() => manager.inventory().find((c) => c.name === UNRESOLVED)?.state === 'failed' || undefined, 30_000, 'the unresolvable name fails');
  const unresolved = manager.inventory().find((c) => c.name === UNRESOLVED)!;
  assert.match(unresolved.lastError!, new RegExp(`could not validate http://${UNRESOLVED.replace(/\./g, '\\.')}/\\.well-known/acme-challenge/.+: .*(resolve|DNS|NXDOMAIN)`, 'i'));
  const wait = Date.parse(unresolved.nextAttemptAt!) - Date.now();
  assert.ok(wait > 25_000 && wait <= 60_000, `first retry in ${wait} ms`);
  assert.is(manager.current().length, 2);

  const served = manager.current().map((p) => p.cert);
  await stopResponder();
  try {
    const logFrom = logLines.length;
    // Seen once in ~15 runs: the order validated with the responder stopped. Say what the manager did then.
    const err = await rejects(manager.renew(PORTAL), CertificateIssueError).catch((error: Error) => {
      throw new Error(`${error.message}; the manager's log meanwhile:\n${logLines.slice(logFrom).join('').slice(-4000)}`);
    });
    assert.match(err.message, new RegExp(`${PORTAL}: the ACME server could not validate http://${PORTAL.replace(/\./g, '\\.')}/\\.well-known/acme-challenge/\\S+: .*connection refused`, 'i'));
    const portal = manager.inventory().find((c) => c.name === PORTAL)!;
    assert.is(portal.state, 'failed');
    assert.is(portal.lastError, err.message.slice(PORTAL.length + 2));
    assert.ok(Date.parse(portal.nextAttemptAt!) > Date.now() + 25_000);
    assert.equal(manager.current().map((p) => p.cert), served, 'the valid certificates keep being served');
  } finally {
    await startResponder();
  }
  await manager.renew(PORTAL);
  const portal = manager.inventory().find((c) => c.name === PORTAL)!;
  assert.is(portal.state, 'valid');
  assert.is(portal.lastError, undefined);
  assert.is(portal.nextAttemptAt, undefined);

  manager.setNames([PORTAL, APP]);
  await waitFor(async () => !(await readdir(path.join(dir, 'certificates'))).includes(`${UNRESOLVED}.json`) || undefined, 5000, 'no file for the dropped name');
  assert.equal(manager.inventory().map((c) => c.name), [PORTAL, APP]);
});

test('the scheduler renews by itself at 2/3 of the lifetime, serving the old certificate until the new one is in place', async () => {
  await manager.stop();
  const shortLived = await startPebble({ validitySeconds: 6 });
  const name = 'short.example.test';
  await shortLived.resolve(name);
  const shortDir = await mkdtemp(path.join(tmpdir(), 'piccolo-acme-short-'));
  await stopResponder();
  const pebbleForResponder = pebble;
  pebble = shortLived;
  const untrustShort = await trustPebbleApi(shortLived);
  await startResponder();
  const seen: CertificatePair[][] = [];
  try {
    manager = newManager({ dir: shortDir, directoryUrl: shortLived.directoryUrl, onChange: (pairs) => seen.push(pairs) });
    await manager.start();
    manager.setNames([name]);
    await waitFor(() => manager.inventory()[0]?.state === 'valid' || undefined, 20_000, 'first certificate');
    const first = manager.inventory()[0]!;
    const firstCert = manager.current()[0]!.cert;
    const lifetime = Date.parse(first.notAfter!) - Date.parse(first.notBefore!);
    assert.ok(lifetime >= 5000 && lifetime <= 6000, `lifetime ${lifetime} ms`);
    assert.is(Date.parse(first.renewAt!) - Date.parse(first.notBefore!), Math.floor((lifetime * 2) / 3));
    await waitFor(() => (manager.current()[0] && manager.current()[0]!.cert !== firstCert) || undefined, 15_000, 'renewed certificate');
    const second = manager.inventory()[0]!;
    assert.ok(Date.parse(second.notBefore!) > Date.parse(first.notBefore!));
    assert.ok(Date.now() >= Date.parse(first.renewAt!), 'not renewed before renewAt');
    assert.ok(Date.now() < Date.parse(first.notAfter!), 'renewed before the old one expired');
    // From the first issuance on, every change included the name: never a gap in serving.
    assert.ok(seen.length >= 2 && seen.every((pairs) => pairs.length === 1), JSON.stringify(seen.map((p) => p.length)));
  } finally {
    await manager.stop();
    await stopResponder();
    untrustShort();
    pebble = pebbleForResponder;
    await startResponder();
    await shortLived.stop();
    await rm(shortDir, { recursive: true, force: true });
  }
});

test.run();
