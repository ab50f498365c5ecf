// Who makes the local CA and signs the device certificates for the cert store. The proxy runs the
// work in a short-lived child process (cert-maker.ts): loading @peculiar/x509 and its WebCrypto
// work leave ~8 MiB of heap behind in a long-running process, which the proxy of a device set up
// once would carry until its next restart; the child's exit gives it all back. In-process serves
// tests and tools.
import { execFile } from 'node:child_process';
import type { CertificateRequest, IssuedCertificates } from './local-ca.js';

export type CertificateAuthority = (request: CertificateRequest) => Promise<IssuedCertificates>;

/** Under the guest's CPU emulation a first boot's CA takes seconds; this bounds a stuck child. */
const CHILD_TIMEOUT_MS = 120_000;

export const inProcessAuthority: CertificateAuthority = async (request) => (await import('./local-ca.js')).makeCertificates(request);

/** Runs script (the bundled cert-maker.mjs) with this process's Node for each request. */
export function childProcessAuthority(script: string, node = process.execPath): CertificateAuthority {
  return (request) =>
    new Promise((resolve, reject) => {
      const child = execFile(node, [script], { timeout: CHILD_TIMEOUT_MS, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
        // Node prints an uncaught error's stack: its first "...Error: message" line says what went wrong.
        if (err) return reject(new Error(`the certificate maker failed: ${/^\w*Error\b.*$/m.exec(stderr)?.[0] ?? (stderr.trim() || err.message)}`));
        try {
          resolve(JSON.parse(stdout) as IssuedCertificates);
        } catch {
          reject(new Error('the certificate maker answered something other than JSON'));
        }
      });
      child.stdin!.end(JSON.stringify(request));
    });
}
