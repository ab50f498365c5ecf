// The local CA's certificates as node:crypto and openssl read them: the leaf chains to the CA and
// verifies with its key, names its hosts and IPs, is no CA, lasts 397 days; the CA is a CA for
// ten years. The same holds for a CA made by an older version (RSA key in PKCS#1 PEM): a device
// that has one on disk keeps issuing under it, through the cert store as on a real start. The
// proxy makes them in a child process (the bundled cert-maker.mjs): a first boot through it stores
// a CA and a device certificate that chains to it, both requests of a first boot served by one
// child that ends when idle; a maker that fails stops the start, saying why.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { bundleOptions } from '../../image/bundle.js';
import { createLogger } from '../../services/common/logger.js';
import { CertStore } from '../../services/proxy/cert-store.js';
import { childProcessAuthority } from '../../services/proxy/certificate-authority.js';
import { LocalCa, type KeyAndCert } from '../../services/proxy/local-ca.js';
import { waitFor } from '../support/processes.js';

const DAY_MS = 86_400_000;
const NAMES = ['piccolo.local', '*.piccolo.local', '127.0.0.1', '::1'];
const NAMES_SAN = 'DNS:piccolo.local, DNS:*.piccolo.local, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1';
const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-local-ca-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** A CA as older versions stored it: an RSA-2048 key in PKCS#1 PEM, its certificate made here by openssl. */
function olderRsaCa(): KeyAndCert {
  const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
  const keyFile = path.join(dir, 'old-ca.key.pem');
  writeFileSync(keyFile, key);
  const cert = execFileSync(
    'openssl',
    ['req', '-x509', '-key', keyFile, '-sha256', '-days', '3650', '-subj', '/CN=Piccolo device CA (2025-06-01)/O=Piccolo OS', '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    { encoding: 'utf8' },
  );
  return { key, cert };
}

/** Checks a leaf's chain (leaf then root) against its CA with node:crypto, then openssl verify. */
function assertIssuedBy(pair: KeyAndCert, caPem: string, subjectAltName: string, now: number): void {
  const [leafPem, rootPem] = pair.cert.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g)!;
  assert.is(rootPem, caPem, 'the chain ends with the CA');
  const leaf = new X509Certificate(leafPem!);
  const ca = new X509Certificate(caPem);
  assert.ok(leaf.checkIssued(ca), 'issuer and key identifiers match the CA');
  assert.ok(leaf.verify(ca.publicKey), 'signed with the CA key');
  assert.ok(leaf.checkPrivateKey(createPrivateKey(pair.key)), 'the key belongs to the certificate');
  assert.is(leaf.ca, false);
  assert.is(leaf.subjectAltName, subjectAltName);
  assert.equal(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'extKeyUsage serverAuth (node names extKeyUsage keyUsage)');
  const [from, to] = [Date.parse(leaf.validFrom), Date.parse(leaf.validTo)];
  // 397 days from issue (notAfter has whole seconds); browsers refuse spans over 398 days.
  assert.ok(from <= now && to - now >= 397 * DAY_MS - 1000 && to - from < 398 * DAY_MS, `397 days: ${leaf.validFrom} .. ${leaf.validTo}`);
  const chainFile = path.join(dir, 'leaf.pem');
  const caFile = path.join(dir, 'ca.pem');
  writeFileSync(chainFile, leafPem!);
  writeFileSync(caFile, caPem);
  assert.match(execFileSync('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', caFile, chainFile], { encoding: 'utf8' }), /: OK/);
  // node:crypto shows the serial without its sign; openssl marks a negative one.
  assert.match(execFileSync('openssl', ['x509', '-noout', '-text', '-in', chainFile], { encoding: 'utf8' }), /Serial Number:\s+[0-9a-f]{2}:/, 'a positive serial');
}

test('a new CA: P-256, a CA for ten years, and the device certificate it issues chains to it', async () => {
  const now = Date.now();
  const ca = await LocalCa.create('2026-12-01');
  const root = new X509Certificate(ca.root.cert);
  assert.is(root.ca, true);
  assert.is(root.publicKey.asymmetricKeyType, 'ec');
  assert.ok(root.checkIssued(root) && root.verify(root.publicKey), 'self-signed');
  assert.ok(Date.parse(root.validTo) - now > 3649 * DAY_MS, `ten years: ${root.validTo}`);
  assert.match(ca.root.key, /^-----BEGIN PRIVATE KEY-----/);
  const leaf = await ca.issue(NAMES);
  assert.is(new X509Certificate(leaf.cert).publicKey.asymmetricKeyType, 'ec');
  assertIssuedBy(leaf, ca.root.cert, NAMES_SAN, now);
  // Loaded again from its PEM files, as a later start does, it still issues under the same root.
  assertIssuedBy(await (await LocalCa.load(ca.root)).issue(['piccolo.local']), ca.root.cert, 'DNS:piccolo.local', now);
});

test('an older RSA CA on disk keeps issuing: the cert store signs a new device certificate with it', async () => {
  const now = Date.now();
  const old = olderRsaCa();
  const certDir = path.join(dir, 'certs');
  mkdirSync(path.join(certDir, 'local-ca'), { recursive: true });
  writeFileSync(path.join(certDir, 'local-ca', 'ca.key.pem'), old.key);
  writeFileSync(path.join(certDir, 'local-ca', 'ca.cert.pem'), old.cert);
  const store = new CertStore({ dir: certDir, logger: createLogger({ service: 'test-proxy', level: 'error' }) });
  await store.start();
  try {
    assert.is(store.caCertificate, old.cert, 'the CA on disk is kept');
    assertIssuedBy(store.devicePair, old.cert, 'DNS:localhost, IP Address:127.0.0.1', now);
    await store.coverDeviceNames(['piccolo.local']);
    assertIssuedBy(store.devicePair, old.cert, 'DNS:*.piccolo.local, IP Address:127.0.0.1, DNS:localhost, DNS:piccolo.local', now);
    assert.is(readFileSync(path.join(certDir, 'local-ca', 'device.pem'), 'utf8'), store.devicePair.key + store.devicePair.cert, 'stored');
  } finally {
    await store.stop();
  }
});

/** The pids of this test process's cert-maker children. */
const makerChildren = () =>
  execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes('cert-maker'))
    .map((line) => line.trim().split(/\s+/)[0]!);

let makerScript = '';
test.before(async () => {
  const bundleDir = path.join(dir, 'bundle');
  await build({ ...bundleOptions('proxy', { outDir: bundleDir }), sourcemap: false, logLevel: 'error' });
  makerScript = path.join(bundleDir, 'proxy', 'cert-maker.mjs');
});

test('a first boot through the bundled cert maker (a child process): a new CA on disk and a device certificate it issued, one child for both', async () => {
  const now = Date.now();
  const certDir = path.join(dir, 'first-boot');
  const store = new CertStore({ dir: certDir, logger: createLogger({ service: 'test-proxy', level: 'error' }), authority: childProcessAuthority(makerScript) });
  await store.start();
  try {
    const caPem = readFileSync(path.join(certDir, 'local-ca', 'ca.cert.pem'), 'utf8');
    assert.is(store.caCertificate, caPem, 'the new CA is stored');
    assert.ok(createPrivateKey(readFileSync(path.join(certDir, 'local-ca', 'ca.key.pem'), 'utf8')), 'with its key');
    assert.ok(new X509Certificate(caPem).ca, 'a CA');
    assertIssuedBy(store.devicePair, caPem, 'DNS:localhost, IP Address:127.0.0.1', now);
    const maker = makerChildren();
    assert.is(maker.length, 1, 'the maker waits for a next request');
    await store.coverDeviceNames(['piccolo.local']);
    assertIssuedBy(store.devicePair, caPem, 'DNS:*.piccolo.local, IP Address:127.0.0.1, DNS:localhost, DNS:piccolo.local', now);
    assert.equal(makerChildren(), maker, 'the second certificate came from the same child');
  } finally {
    await store.stop();
  }
  await waitFor(() => makerChildren().length === 0, 5000, 'the maker to end once the store stopped');
});

test('an idle cert maker ends by itself; the next request starts another; a bad request is an error, not the end', async () => {
  const authority = childProcessAuthority(makerScript, { idleMs: 200 });
  const made = await authority.issue({ deviceLabel: 'idle test', names: ['localhost'] });
  assert.match(made.root.cert, /BEGIN CERTIFICATE/);
  const first = makerChildren();
  assert.is(first.length, 1);
  await waitFor(() => makerChildren().length === 0, 5000, 'the idle maker to end');
  await authority.issue({ root: made.root, deviceLabel: 'idle test', names: ['piccolo.local'] });
  await authority
    .issue({ root: { key: 'not a key', cert: made.root.cert }, deviceLabel: 'idle test', names: ['piccolo.local'] })
    .then(() => assert.unreachable('a CA without its key signed'), (err: Error) => assert.match(err.message, /^the certificate maker failed: \w*Error: /));
  const second = makerChildren();
  assert.is(second.length, 1, 'the same child goes on after a bad request');
  assert.is.not(second[0], first[0]);
  authority.close();
  await waitFor(() => makerChildren().length === 0, 5000, 'the closed maker to end');
});

test('a cert maker that fails stops the start with its error, and nothing half-made is stored', async () => {
  const maker = path.join(dir, 'failing-maker.mjs');
  writeFileSync(maker, "throw new TypeError('no curve P-256 here');\n");
  const certDir = path.join(dir, 'failing');
  const store = new CertStore({ dir: certDir, logger: createLogger({ service: 'test-proxy', level: 'error' }), authority: childProcessAuthority(maker) });
  await store.start().then(
    () => assert.unreachable('the store started without certificates'),
    (err: Error) => assert.match(err.message, 'the certificate maker failed: TypeError: no curve P-256 here'),
  );
  assert.equal(readdirSync(path.join(certDir, 'local-ca')), [], 'no CA without its device certificate');
});

test.run();
