// The proxy's certificate maker, run as a child (certificate-authority.ts): a CertificateRequest as
// JSON per line on stdin, an answer per line on stdout ({"made": IssuedCertificates} or
// {"error": "..."}), in order. It ends when its stdin does.
import { createInterface } from 'node:readline';
import { makeCertificates, type CertificateRequest } from './local-ca.js';

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  let answer: object;
  try {
    answer = { made: await makeCertificates(JSON.parse(line) as CertificateRequest) };
  } catch (err) {
    answer = { error: `${(err as Error).name}: ${(err as Error).message}` };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
