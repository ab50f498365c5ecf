// The proxy's certificate maker, run as a short-lived child (certificate-authority.ts): a
// CertificateRequest as JSON on stdin, the IssuedCertificates as JSON on stdout, a failure on stderr.
import { makeCertificates, type CertificateRequest } from './local-ca.js';

const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as CertificateRequest;
process.stdout.write(JSON.stringify(await makeCertificates(request)));
