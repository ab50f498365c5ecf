// The device-local certificate authority: until ACME certificates exist (tunnel issue), the
// proxy terminates TLS with a certificate for the device's own names signed by this CA, whose
// root the portal offers for download so people can trust it once. Keys come from node:crypto
// (native, fast); node-forge builds and signs the X.509 certificates, which node:crypto cannot.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';

export interface KeyAndCert {
  key: string;
  cert: string;
}

const CA_YEARS = 10;
/** Browsers refuse leaf certificates valid for more than 398 days. */
const LEAF_DAYS = 397;

export class LocalCa {
  private readonly caKey: forge.pki.rsa.PrivateKey;
  private readonly caCert: forge.pki.Certificate;

  constructor(readonly root: KeyAndCert) {
    this.caKey = forge.pki.privateKeyFromPem(root.key) as forge.pki.rsa.PrivateKey;
    this.caCert = forge.pki.certificateFromPem(root.cert);
  }

  static create(deviceLabel: string, now = new Date()): LocalCa {
    const { key, forgeKey } = newRsaKey();
    const cert = forge.pki.createCertificate();
    cert.publicKey = forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e);
    cert.serialNumber = serialNumber();
    cert.validity.notBefore = new Date(now.getTime() - 60_000);
    cert.validity.notAfter = new Date(now.getTime() + CA_YEARS * 365 * 86_400_000);
    const subject = [{ name: 'commonName', value: `Piccolo device CA (${deviceLabel})` }, { name: 'organizationName', value: 'Piccolo OS' }];
    cert.setSubject(subject);
    cert.setIssuer(subject);
    cert.setExtensions([
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ]);
    cert.sign(forgeKey, forge.md.sha256.create());
    return new LocalCa({ key, cert: forge.pki.certificateToPem(cert) });
  }

  /** A leaf certificate for host names and IP addresses; the chain (leaf then root) is in cert. */
  issue(names: string[], now = new Date()): KeyAndCert {
    const { key, forgeKey } = newRsaKey();
    const cert = forge.pki.createCertificate();
    cert.publicKey = forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e);
    cert.serialNumber = serialNumber();
    cert.validity.notBefore = new Date(now.getTime() - 60_000);
    cert.validity.notAfter = new Date(now.getTime() + LEAF_DAYS * 86_400_000);
    cert.setSubject([{ name: 'commonName', value: names[0] ?? 'localhost' }]);
    cert.setIssuer(this.caCert.subject.attributes);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: names.map((name) => (isIP(name) ? { type: 7, ip: name } : { type: 2, value: name })) },
    ]);
    cert.sign(this.caKey, forge.md.sha256.create());
    return { key, cert: forge.pki.certificateToPem(cert) + this.root.cert };
  }
}

function newRsaKey(): { key: string; forgeKey: forge.pki.rsa.PrivateKey } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const key = privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
  return { key, forgeKey: forge.pki.privateKeyFromPem(key) as forge.pki.rsa.PrivateKey };
}

/** 16 random bytes, high bit clear so the DER integer stays positive. */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0]! &= 0x7f;
  return bytes.toString('hex');
}
