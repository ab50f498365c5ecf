// ACME HTTP-01 answers: the daemon holds the pending tokens; the proxy asks it for each request to
// /.well-known/acme-challenge/<token>, on the portal port and on the tunnel's plain HTTP ingress.
import type http from 'node:http';
import type { Logger } from '../common/logger.js';
import type { DaemonClient } from './daemon-client.js';
import { sendProblem } from './problem-pages.js';

export const ACME_PREFIX = '/.well-known/acme-challenge/';

export async function answerAcmeChallenge(req: http.IncomingMessage, res: http.ServerResponse, deps: { daemon: Pick<DaemonClient, 'acmeChallenge'>; logger: Logger }): Promise<void> {
  // Tokens are base64url (RFC 8555 §8.3): anything else cannot be one of ours.
  const token = req.url!.slice(ACME_PREFIX.length).split('?')[0]!;
  if (!/^[A-Za-z0-9_-]{1,256}$/.test(token)) return sendProblem(req, res, { status: 404, message: 'no ACME challenge for this token' });
  let answer: string | undefined;
  try {
    answer = await deps.daemon.acmeChallenge(token);
  } catch (err) {
    deps.logger.warn('ACME challenge lookup failed', { err });
    return sendProblem(req, res, { status: 503, message: 'cannot reach the certificate service right now' });
  }
  if (answer === undefined) return sendProblem(req, res, { status: 404, message: 'no ACME challenge for this token' });
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(answer), 'cache-control': 'no-store' });
  res.end(answer);
}
