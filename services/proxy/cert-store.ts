// Certificates for TLS the proxy terminates, looked up by SNI: an exact name first, then a
// wildcard one label up, then the device certificate from the local CA. They come from the route
// table (the daemon's ACME certificates, kept in memory only) and from PEM files in one folder,
// each holding a private key and its chain; the table's win where both name the same host. The
// folder is watched and reloaded on change. Either way new handshakes use new certificates while
// connections already established keep theirs.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import type { Module } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import type { CertificatePair } from '../common/route-table.js';
import { inProcessAuthority, type CertificateAuthority } from './certificate-authority.js';
// Types only: local-ca.ts (and @peculiar/x509 with it) runs only when a certificate must be made.
import type { KeyAndCert } from './local-ca.js';

export interface CertStoreOptions {
  dir: string;
  logger: Logger;
  /** Makes the CA and device certificates when none are on disk (default: in this process). */
  authority?: CertificateAuthority;
}

/**
 * TLS 1.2 suites of Mozilla's "intermediate" profile that ECDHE keys: AEAD only. Node's defaults
 * also offer CBC suites on TLS 1.2 (LUCKY13 in testssl), and finite-field DHE costs a handshake
 * far more for no client that lacks ECDHE.
 */
const TLS12_AEAD_SUITES = ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305'];
/** TLS 1.3's suites as Node offers them (all AEAD). Naming none would turn TLS 1.3 off. */
const TLS13_SUITES = tls.DEFAULT_CIPHERS.split(':').filter((suite) => suite.startsWith('TLS_'));

/** TLS settings for every terminated connection: no TLS 1.0/1.1, AEAD suites only, and HTTP/1.1 is what is spoken. */
export const TLS_SETTINGS: Pick<tls.SecureContextOptions, 'minVersion' | 'ciphers'> & { ALPNProtocols: string[] } = {
  minVersion: 'TLSv1.2',
  ciphers: [...TLS13_SUITES, ...TLS12_AEAD_SUITES].join(':'),
  ALPNProtocols: ['http/1.1'],
};

const ALWAYS_ON_DEVICE_CERT = ['localhost', '127.0.0.1'];

export class CertStore implements Module {
  readonly name = 'cert-store';
  private byName = new Map<string, tls.SecureContext>();
  private fromFiles = new Map<string, tls.SecureContext>();
  private fromTable = new Map<string, tls.SecureContext>();
  /** The table's certificates as last applied, so an unchanged list is not parsed again. */
  private tableText = '[]';
  /** The local CA's key and certificate, from disk or made with the first device certificate. */
  private caRoot: KeyAndCert | undefined;
  private device!: { names: string[]; pair: KeyAndCert; context: tls.SecureContext };
  private watcher: FSWatcher | undefined;
  private reloadTimer: NodeJS.Timeout | undefined;
  private readonly deviceListeners: ((pair: KeyAndCert) => void)[] = [];
  /** False when the folder cannot be written: the CA then lives in memory and changes on restart. */
  private persistent = true;

  constructor(private readonly options: CertStoreOptions) {}

  private get caDir(): string {
    return path.join(this.options.dir, 'local-ca');
  }

  async start(): Promise<void> {
    try {
      await mkdir(this.caDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      this.persistent = false;
      this.options.logger.warn('certificate folder not writable; the local CA is kept in memory and changes on restart', { err, dir: this.options.dir });
    }
    this.caRoot = await this.readCaRoot();
    this.setDevice((await this.readDevicePair()) ?? (await this.issueDevice(ALWAYS_ON_DEVICE_CERT)));
    await this.reload();
    if (this.persistent) {
      // Reload a moment after the last change: a writer replacing several files fires many events.
      this.watcher = watch(this.options.dir, () => {
        clearTimeout(this.reloadTimer);
        this.reloadTimer = setTimeout(() => void this.reload(), 100);
      });
    }
  }

  async stop(): Promise<void> {
    clearTimeout(this.reloadTimer);
    this.watcher?.close();
    this.options.authority?.close();
  }

  /** The context for a ClientHello's server name. */
  contextFor(serverName: string | undefined): tls.SecureContext {
    if (serverName) {
      const name = serverName.toLowerCase();
      const exact = this.byName.get(name);
      if (exact) return exact;
      const dot = name.indexOf('.');
      const wildcard = dot > 0 ? this.byName.get(`*${name.slice(dot)}`) : undefined;
      if (wildcard) return wildcard;
    }
    return this.device.context;
  }

  /** The device certificate, for clients that send no server name. */
  get devicePair(): KeyAndCert {
    return this.device.pair;
  }

  get caCertificate(): string {
    return this.caRoot!.cert;
  }

  onDeviceCertificate(listener: (pair: KeyAndCert) => void): void {
    this.deviceListeners.push(listener);
  }

  /** Makes the device certificate cover these names (and their subdomains, where apps live). */
  async coverDeviceNames(hostnames: string[]): Promise<void> {
    const names = [...new Set([...hostnames.flatMap((name) => [name, `*.${name}`]), ...ALWAYS_ON_DEVICE_CERT])].sort();
    if (names.every((name) => this.device.names.includes(name))) return;
    const pair = await this.issueDevice(names);
    this.setDevice(pair);
    this.options.logger.info('device certificate issued by the local CA', { names });
  }

  /** Reads every PEM file of the folder; a bad file is logged and skipped, the others still load. */
  async reload(): Promise<void> {
    const next = new Map<string, tls.SecureContext>();
    const files = this.persistent ? (await readdir(this.options.dir)).filter((file) => file.endsWith('.pem')).sort() : [];
    for (const file of files) {
      try {
        addContext(next, splitPem(await readFile(path.join(this.options.dir, file), 'utf8')));
      } catch (err) {
        this.options.logger.warn('certificate file skipped', { file, err });
      }
    }
    this.fromFiles = next;
    this.byName = new Map([...this.fromFiles, ...this.fromTable]);
    this.options.logger.info('certificates loaded', { files: files.length, names: [...next.keys()] });
  }

  /** The route table's certificates replace the previous ones; a bad pair is logged (by index, never its key) and skipped. */
  useTableCertificates(pairs: CertificatePair[]): void {
    const text = JSON.stringify(pairs);
    if (text === this.tableText) return;
    const next = new Map<string, tls.SecureContext>();
    pairs.forEach((pair, index) => {
      try {
        addContext(next, splitPem(pair.key + '\n' + pair.cert));
      } catch (err) {
        this.options.logger.warn('route table certificate skipped', { index, err: (err as Error).message });
      }
    });
    this.tableText = text;
    this.fromTable = next;
    this.byName = new Map([...this.fromFiles, ...this.fromTable]);
    this.options.logger.info('route table certificates loaded', { certificates: pairs.length, names: [...next.keys()] });
  }

  private setDevice(pair: KeyAndCert): void {
    this.device = { names: certificateNames(pair.cert), pair, context: tls.createSecureContext({ ...pair, ...TLS_SETTINGS }) };
    for (const listener of this.deviceListeners) listener(pair);
  }

  /**
   * A new device certificate, stored at once: one not on disk was issued again on every start
   * (a new key and a signature each time). The first one comes with a new CA.
   */
  private async issueDevice(names: string[]): Promise<KeyAndCert> {
    const made = await (this.options.authority ?? inProcessAuthority).issue({ root: this.caRoot, deviceLabel: new Date().toISOString().slice(0, 10), names });
    if (!this.caRoot) await this.keepCa(made.root);
    if (this.persistent) await writeFile(path.join(this.caDir, 'device.pem'), made.device.key + made.device.cert, { mode: 0o600 });
    return made.device;
  }

  private async readCaRoot(): Promise<KeyAndCert | undefined> {
    if (!this.persistent) return undefined;
    const [key, cert] = await Promise.all(['ca.key.pem', 'ca.cert.pem'].map((file) => readFile(path.join(this.caDir, file), 'utf8').catch(() => undefined)));
    return key && cert ? { key, cert } : undefined;
  }

  private async keepCa(root: KeyAndCert): Promise<void> {
    this.caRoot = root;
    if (this.persistent) {
      // Key first: a CA certificate without its key on disk would be useless after a crash.
      await writeFile(path.join(this.caDir, 'ca.key.pem'), root.key, { mode: 0o600 });
      await writeFile(path.join(this.caDir, 'ca.cert.pem'), root.cert, { mode: 0o644 });
    }
    this.options.logger.info('local CA created', { persistent: this.persistent });
  }

  private async readDevicePair(): Promise<KeyAndCert | undefined> {
    if (!this.persistent || !this.caRoot) return undefined;
    try {
      const pair = splitPem(await readFile(path.join(this.caDir, 'device.pem'), 'utf8'));
      // A device certificate from an older CA (the CA was replaced) would not chain: issue anew.
      return new X509Certificate(pair.cert).checkIssued(new X509Certificate(this.caRoot.cert)) ? pair : undefined;
    } catch {
      return undefined;
    }
  }
}

function addContext(byName: Map<string, tls.SecureContext>, pair: KeyAndCert): void {
  const context = tls.createSecureContext({ ...pair, ...TLS_SETTINGS });
  for (const name of certificateNames(pair.cert)) byName.set(name, context);
}

/** Splits a PEM bundle into its private key and its certificate chain. */
export function splitPem(text: string): KeyAndCert {
  const key = /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]+?-----END \1PRIVATE KEY-----/.exec(text)?.[0];
  const certs = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!key || !certs) throw new Error('needs a private key and at least one certificate');
  createPrivateKey(key); // throws on a malformed key, before any handshake would
  return { key: key + '\n', cert: certs.join('\n') + '\n' };
}

/** The DNS and IP names of the first (leaf) certificate, lower-cased. */
export function certificateNames(chain: string): string[] {
  const leaf = new X509Certificate(chain);
  return (leaf.subjectAltName ?? '')
    .split(', ')
    .map((entry) => /^(?:DNS|IP Address):(.+)$/.exec(entry)?.[1]?.toLowerCase())
    .filter((name): name is string => Boolean(name));
}
