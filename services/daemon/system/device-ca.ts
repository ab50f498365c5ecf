// The device CA's certificate, as the proxy (which owns the CA and its key: services/proxy/
// cert-store.ts) hands it over on the internal socket. Kept in memory: the proxy pushes it again
// whenever it (re)connects, so a restarted daemon has it back within moments. Only the public
// certificate ever reaches the daemon; the key stays with the proxy.
import { X509Certificate } from 'node:crypto';
import { BadRequestError, NotFoundError } from '../../common/errors.js';
import type { CaInfo } from './types.js';

export class DeviceCa {
  private current: { pem: string; info: CaInfo } | undefined;

  /** Checks and keeps a PEM certificate; 400 naming `certificate` when it is not a CA certificate. */
  set(pem: unknown): CaInfo {
    if (typeof pem !== 'string' || !pem.includes('-----BEGIN CERTIFICATE-----')) throw new BadRequestError('certificate: a PEM certificate');
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch (err) {
      throw new BadRequestError(`certificate: cannot be read (${(err as Error).message})`);
    }
    if (!cert.ca) throw new BadRequestError('certificate: not a CA certificate');
    const info: CaInfo = {
      subject: cert.subject.split('\n').join(', '),
      sha256Fingerprint: cert.fingerprint256,
      notAfter: new Date(cert.validTo).toISOString(),
    };
    this.current = { pem: cert.toString(), info };
    return info;
  }

  get pem(): string {
    return this.require().pem;
  }

  get info(): CaInfo {
    return this.require().info;
  }

  private require(): { pem: string; info: CaInfo } {
    if (!this.current) throw new NotFoundError('the device CA certificate is not available yet: the proxy hands it over when it starts; try again in a few seconds');
    return this.current;
  }
}
