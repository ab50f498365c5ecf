// The device-local certificate authority: until ACME certificates exist (tunnel issue), the
// proxy terminates TLS with a certificate for the device's own names signed by this CA, whose
// root the portal offers for download so people can trust it once. @peculiar/x509 builds the
// certificates and Node's WebCrypto (native) makes the keys and signs. Keys are ECDSA P-256, which
// every browser accepts: an RSA-2048 key took 1.3 to 5.6 s to generate under the guest's CPU
// emulation, two of them on a first boot. A CA from an older version (RSA key in PKCS#1 PEM) keeps
// signing with its own key.
import { createPrivateKey, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

export interface KeyAndCert {
  key: string;
  cert: string;
}

const CA_YEARS = 10;
/** Browsers refuse leaf certificates valid for more than 398 days. */
const LEAF_DAYS = 397;
/** Backdated a minute: a client whose clock is slightly behind still accepts a fresh certificate. */
const BACKDATE_MS = 60_000;
const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' };
/** Node 18 has no WebCrypto on globalThis (without a flag): every call that needs one is handed this. */
const crypto = webcrypto as unknown as Crypto;

export class LocalCa {
  private constructor(
    readonly root: KeyAndCert,
    private readonly signingKey: CryptoKey,
    private readonly caCert: x509.X509Certificate,
  ) {}

  /** The CA from its PEM files, whatever its key type (older versions made RSA ones). */
  static async load(root: KeyAndCert): Promise<LocalCa> {
    return new LocalCa(root, await importSigningKey(root.key), new x509.X509Certificate(root.cert));
  }

  static async create(deviceLabel: string, now = new Date()): Promise<LocalCa> {
    const keys = await newKeyPair();
    const name: x509.JsonName = [{ CN: [`Piccolo device CA (${deviceLabel})`] }, { O: ['Piccolo OS'] }];
    const cert = await x509.X509CertificateGenerator.create({
      subject: name,
      issuer: name,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + CA_YEARS * 365 * 86_400_000),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    }, crypto);
    return new LocalCa({ key: await privateKeyPem(keys.privateKey), cert: pem(cert) }, keys.privateKey, cert);
  }

  /** A leaf certificate for host names and IP addresses; the chain (leaf then root) is in cert. */
  async issue(names: string[], now = new Date()): Promise<KeyAndCert> {
    const keys = await newKeyPair();
    const cert = await x509.X509CertificateGenerator.create({
      subject: [{ CN: [names[0] ?? 'localhost'] }],
      // The CA's subject as encoded in its certificate: chain building compares the two.
      issuer: this.caCert.subjectName,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + LEAF_DAYS * 86_400_000),
      publicKey: keys.publicKey,
      signingKey: this.signingKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        // An ECDSA key only signs (the handshake); keyEncipherment is for RSA key transport.
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(names.map((value): x509.JsonGeneralName => ({ type: isIP(value) ? 'ip' : 'dns', value }))),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        ...this.authorityKeyIdentifier(),
      ],
    }, crypto);
    return { key: await privateKeyPem(keys.privateKey), cert: pem(cert) + this.root.cert };
  }

  /** Names the CA's key as the CA's own certificate does (our CAs, new and older, all carry a subject key identifier). */
  private authorityKeyIdentifier(): x509.AuthorityKeyIdentifierExtension[] {
    const keyId = this.caCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
    return keyId ? [new x509.AuthorityKeyIdentifierExtension(keyId)] : [];
  }
}

function newKeyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

/** WebCrypto imports PKCS#8 only; node:crypto reads any PEM (an older CA's PKCS#1 RSA key too) and converts. */
function importSigningKey(keyPem: string): Promise<CryptoKey> {
  const key = createPrivateKey(keyPem);
  const algorithm = key.asymmetricKeyType === 'rsa' ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } : EC_KEY;
  return crypto.subtle.importKey('pkcs8', new Uint8Array(key.export({ type: 'pkcs8', format: 'der' })), algorithm, false, ['sign']);
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await crypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY') + '\n';
}

const pem = (cert: x509.X509Certificate) => cert.toString('pem') + '\n';

export interface CertificateRequest {
  /** The CA that signs; none: a new one is made first (a first boot). */
  root?: KeyAndCert;
  /** Names the new CA, e.g. its day of birth. */
  deviceLabel: string;
  names: string[];
}

export interface IssuedCertificates {
  root: KeyAndCert;
  device: KeyAndCert;
}

/** A device certificate for names, from the given CA or a new one. */
export async function makeCertificates({ root, deviceLabel, names }: CertificateRequest): Promise<IssuedCertificates> {
  const ca = root ? await LocalCa.load(root) : await LocalCa.create(deviceLabel);
  return { root: ca.root, device: await ca.issue(names) };
}
