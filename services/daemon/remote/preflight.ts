// Before (or after) remote access is turned on: can this device reach the relay, and do the names
// resolve? Each step is one check with a message a person can act on. The TLS check verifies the
// relay's certificate as the tunnel will (Node's trust store plus NODE_EXTRA_CA_CERTS).
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import net from 'node:net';
import tls from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';
import { checkRelayUrl } from './settings.js';

export const PREFLIGHT_CHECKS = ['relay-url', 'relay-dns', 'portal-dns', 'relay-tcp', 'relay-tls', 'relay-websocket'] as const;

export interface PreflightCheck {
  id: (typeof PREFLIGHT_CHECKS)[number];
  ok: boolean;
  message: string;
}

export interface PreflightResult {
  ok: boolean;
  checks: PreflightCheck[];
}

/** A host name to its addresses; rejects with the resolver's error (code ENOTFOUND, ...). */
export type Lookup = (host: string) => Promise<string[]>;

export interface PreflightOptions {
  lookup: Lookup;
  /** Per network step. */
  timeoutMs?: number;
}

/** The system's resolver (getaddrinfo: /etc/hosts, then DNS), as the tunnel's own dial uses. */
export const systemLookup: Lookup = async (host) => (await dns.lookup(host, { all: true })).map((entry) => entry.address);

/** One DNS server (host:port) instead of the system's: for networks, and tests, with their own. */
export function serverLookup(server: string): Lookup {
  const resolver = new dns.Resolver({ timeout: 2000, tries: 2 });
  resolver.setServers([server]);
  return async (host) => {
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
    const addresses = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (addresses.length) return addresses;
    throw v4.status === 'rejected' ? v4.reason : Object.assign(new Error(`no address for ${host}`), { code: 'ENODATA' });
  };
}

export async function preflight(target: { relayUrl: string; portalHostname: string }, options: PreflightOptions): Promise<PreflightResult> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const checks: PreflightCheck[] = [];
  const record = (id: PreflightCheck['id'], ok: boolean, message: string) => checks.push({ id, ok, message });

  const relay = checkRelayUrl(target.relayUrl);
  if ('problem' in relay) record('relay-url', false, `the relay URL ${relay.problem}`);
  else record('relay-url', true, `${relay.url.href} is a relay URL`);
  const url = 'url' in relay ? relay.url : undefined;
  const host = url?.hostname.replace(/^\[|\]$/g, '');
  const port = url ? Number(url.port || 443) : 0;

  const relayAddress = host ? await resolveCheck(host, options.lookup, (ok, message) => record('relay-dns', ok, message)) : skip('relay-dns', 'not tried: the relay URL is not usable');
  await resolveCheck(target.portalHostname, options.lookup, (ok, message) => record('portal-dns', ok, ok ? message : `${message} (it should point at the relay)`));

  let reached = false;
  if (relayAddress) {
    const failure = await tcpCheck(host!, relayAddress, port, timeoutMs);
    reached = failure === undefined;
    record('relay-tcp', reached, failure ?? `${host}:${port} (${relayAddress}) accepts connections`);
  } else skip('relay-tcp', "not tried: the relay's address is not known");

  let trusted = false;
  if (reached) {
    const outcome = await tlsCheck(relayAddress!, port, host!, timeoutMs);
    trusted = outcome.ok;
    record('relay-tls', outcome.ok, outcome.message);
  } else skip('relay-tls', 'not tried: no TCP connection to the relay');

  if (trusted) {
    const outcome = await webSocketCheck(url!, relayAddress!, timeoutMs);
    record('relay-websocket', outcome.ok, outcome.message);
  } else skip('relay-websocket', 'not tried: the TLS check did not pass');

  return { ok: checks.every((check) => check.ok), checks: PREFLIGHT_CHECKS.map((id) => checks.find((check) => check.id === id)!) };

  function skip(id: PreflightCheck['id'], message: string): undefined {
    record(id, false, message);
    return undefined;
  }
}

/** The first address of a name (or the IP literal itself); reports the check either way. */
async function resolveCheck(host: string, lookup: Lookup, report: (ok: boolean, message: string) => void): Promise<string | undefined> {
  if (isIP(host)) {
    report(true, `${host} is an IP address`);
    return host;
  }
  try {
    const addresses = await lookup(host);
    report(true, `${host} resolves to ${addresses.join(', ')}`);
    return addresses[0];
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTFOUND' || code === 'ENODATA' || code === 'EAI_NONAME') report(false, `${host} does not resolve: check the spelling or your DNS`);
    else report(false, `${host} could not be looked up (${code ?? (err as Error).message}): the DNS server did not answer; check this device's network and DNS settings`);
    return undefined;
  }
}

function tcpCheck(host: string, address: string, port: number, timeoutMs: number): Promise<string | undefined> {
  const where = host === address ? `${host} port ${port}` : `${host} port ${port} (${address})`;
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port, timeout: timeoutMs });
    const done = (failure: string | undefined) => {
      socket.destroy();
      resolve(failure);
    };
    socket.once('connect', () => done(undefined));
    socket.once('timeout', () => done(`no answer from ${where} within ${timeoutMs / 1000} s: a firewall may drop the traffic, or the relay is down`));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') done(`nothing accepts connections at ${where}: check the port in the relay URL and that the relay is running`);
      else if (err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH') done(`${where} cannot be reached from this device (${err.code}): check its network connection`);
      else done(`could not connect to ${where}: ${err.message}`);
    });
  });
}

/** Why a verification error happened, in words; the OpenSSL text follows after a colon. */
const CERTIFICATE_PROBLEMS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: "the relay's certificate is not trusted: {detail}. Give the relay a certificate from a public CA (e.g. Let's Encrypt), or add its CA to this device's trusted certificates",
  SELF_SIGNED_CERT_IN_CHAIN: "the relay's certificate is not trusted: {detail}. Its CA is not one this device trusts: use a public CA, or add that CA to this device's trusted certificates",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "the relay's certificate is not trusted: {detail}. Its issuer is unknown here: the relay may not send its intermediate certificates",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "the relay's certificate is not trusted: {detail}. The relay may not send its intermediate certificates",
  CERT_HAS_EXPIRED: "the relay's certificate has expired: renew it on the relay ({detail})",
  CERT_NOT_YET_VALID: "the relay's certificate is not valid yet: check this device's clock ({detail})",
  ERR_TLS_CERT_ALTNAME_INVALID: "the relay's certificate is not valid for this name: {detail}. Use the name the certificate was issued for in the relay URL",
};

function tlsCheck(address: string, port: number, host: string, timeoutMs: number): Promise<{ ok: boolean; message: string }> {
  return new Promise((resolve) => {
    // Dialled at the address the DNS check found; the certificate is checked against the name (servername).
    const socket = tls.connect({ host: address, port, servername: isIP(host) ? undefined : host, timeout: timeoutMs, ALPNProtocols: ['http/1.1'] });
    const done = (ok: boolean, message: string) => {
      socket.destroy();
      resolve({ ok, message });
    };
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate();
      const issuer = cert.issuer?.O ?? cert.issuer?.CN ?? 'an unnamed issuer';
      done(true, `the relay's certificate is valid for ${host} (issued by ${issuer}, until ${new Date(cert.valid_to).toISOString().slice(0, 10)})`);
    });
    socket.once('timeout', () => done(false, `the TLS handshake with ${host} port ${port} did not finish within ${timeoutMs / 1000} s: is this the relay's TLS port?`));
    socket.on('error', (err: NodeJS.ErrnoException) => done(false, describeCertificateError(err, `${host} port ${port}`)));
  });
}

function describeCertificateError(err: NodeJS.ErrnoException, where: string): string {
  const template = CERTIFICATE_PROBLEMS[err.code ?? ''];
  if (template) return template.replace('{detail}', err.message);
  return `the TLS handshake with ${where} failed: ${err.message}. Is this the relay's TLS port?`;
}

function webSocketCheck(url: URL, address: string, timeoutMs: number): Promise<{ ok: boolean; message: string }> {
  return new Promise((resolve) => {
    // The address found by the DNS check; the name still goes into SNI, the certificate check and Host.
    const ws = new WebSocket(url, {
      handshakeTimeout: timeoutMs,
      perMessageDeflate: false,
      lookup: (_host: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
        const family = isIP(address);
        if (options.all) callback(null, [{ address, family }]);
        else callback(null, address, family);
      },
    } as ClientOptions);
    const done = (ok: boolean, message: string) => {
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.terminate();
      resolve({ ok, message });
    };
    ws.once('open', () => done(true, `the relay accepted a WebSocket at ${url.pathname}`));
    ws.once('unexpected-response', (_req, res) =>
      done(false, `the relay answered HTTP ${res.statusCode} at ${url.pathname} instead of opening a WebSocket: check the path (exactly /connect) and that the port is the relay's hub port (8443 by default), not its public HTTPS port`),
    );
    ws.once('error', (err) => done(false, `the WebSocket upgrade at ${url.pathname} failed: ${err.message}`));
  });
}
