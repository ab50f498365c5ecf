// How acme-client talks to the ACME server, and how its failures read to a person. acme-client
// keeps one axios instance for the whole process (its documented `axios` export); the policy is
// set on it once, when acme-client is first loaded.
import http from 'node:http';
import https from 'node:https';

type AcmeClient = typeof import('acme-client');

const RATE_LIMITED = 'urn:ietf:params:acme:error:rateLimited';
const REQUEST_TIMEOUT_MS = 30_000;

/** The ACME server refused for a while (HTTP 429 or a rateLimited problem). */
export class AcmeRateLimitedError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
    this.name = 'AcmeRateLimitedError';
  }
}

/** The ACME server tried the HTTP-01 challenge for name and it did not pass. */
export class ChallengeFailedError extends Error {
  constructor(name: string, token: string, detail: string) {
    // Pebble (Go) starts its detail with 'Get "<url>": ', which repeats what the message says.
    super(`the ACME server could not validate http://${name}/.well-known/acme-challenge/${token}: ${detail.replace(/^Get "[^"]*": /, '')}`);
    this.name = 'ChallengeFailedError';
  }
}

let loading: Promise<AcmeClient> | undefined;

/**
 * acme-client (and axios with it), loaded on first use with the policy below installed: a device
 * without remote access never needs it, and evaluating it cost the daemon's start ~140 ms (CPU
 * profile at start, load ~17 on 2 cores).
 */
export function loadAcme(): Promise<AcmeClient> {
  loading ??= import('acme-client').then((module) => {
    // A CommonJS package: its exports arrive as the namespace's default.
    const acme = (module as { default?: AcmeClient }).default ?? module;
    installAcmeHttpPolicy(acme);
    return acme;
  });
  return loading;
}

/**
 * No retries inside acme-client: it would sleep through a Retry-After (hours, for a rate limit)
 * where stop() cannot cancel it, and it turns transport errors into a TypeError after its
 * retries. The certificate manager's own backoff retries instead.
 */
function installAcmeHttpPolicy(acme: AcmeClient): void {
  const defaults = acme.axios.defaults as typeof acme.axios.defaults & { acmeSettings: { retryMaxAttempts: number } };
  defaults.acmeSettings.retryMaxAttempts = 0;
  defaults.timeout = REQUEST_TIMEOUT_MS;
  acme.axios.interceptors.response.use((response) => {
    const problem = response.data as { type?: string; detail?: string } | undefined;
    if (response.status === 429 || problem?.type === RATE_LIMITED) {
      const retryAfterMs = parseRetryAfter(response.headers['retry-after'], Date.now());
      throw new AcmeRateLimitedError(`the ACME server rate-limits this request: ${problem?.detail ?? `HTTP ${response.status}`}`, retryAfterMs);
    }
    return response;
  });
}

/** Retry-After as seconds or an HTTP date, in ms from now; 0 when absent or unreadable. */
export function parseRetryAfter(header: unknown, now: number): number {
  if (typeof header !== 'string' || header.trim() === '') return 0;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? 0 : Math.max(0, at - now);
}

/**
 * Why the ACME server could not be reached. acme-client reports every transport failure as the
 * same TypeError, so one plain GET of the directory finds the cause (refused, DNS, TLS, timeout).
 */
export function probeDirectory(directoryUrl: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const get = directoryUrl.startsWith('https:') ? https.get : http.get;
    const req = get(directoryUrl, { agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? undefined : `HTTP ${res.statusCode}`);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? 'connection refused' : err.message));
  });
}
