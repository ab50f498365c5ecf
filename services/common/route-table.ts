// The route table: what the daemon tells the proxy to serve. The daemon builds it from the installed
// apps; the proxy fetches it over the daemon's internal socket. Both sides validate with the
// functions here, so a table the daemon accepted is a table the proxy can serve.
import { BlockList, isIP } from 'node:net';

/** The daemon's internal socket (services/daemon/internal/), as the proxy calls it. */
// deviceCa: the proxy hands the daemon its CA certificate (PUT { certificate: PEM }) for the portal's download.
export const INTERNAL_PATHS = { routes: '/v1/routes', sessionCheck: '/v1/session/check', acmeChallenge: '/v1/acme-challenge', deviceCa: '/v1/device-ca' } as const;

/** The portal's session cookie (the daemon sets it); the auth gate checks it and never passes it to apps. */
export const SESSION_COOKIE = 'piccolo_session';

/** The header that tells an app which portal user the auth gate let through; clients cannot set it. */
export const USER_HEADER = 'x-piccolo-user';

export const FLOWS = ['tcp', 'tls'] as const;
/** tcp: the device terminates TLS (or serves plain HTTP); tls: passthrough by SNI to the app. */
export type Flow = (typeof FLOWS)[number];

/** raw: TCP bytes untouched; udp: datagrams, relayed per client flow (services/proxy/udp-relay.ts). */
export const PROTOCOLS = ['http', 'websocket', 'raw', 'udp'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** HTTP and WebSocket listeners carry requests, which the auth gate and request log need. */
export function carriesHttp(protocol: Protocol): boolean {
  return protocol === 'http' || protocol === 'websocket';
}

export const MIDDLEWARE_NAMES = ['auth', 'rate_limit', 'ip_allow', 'request_log', 'connection_limit'] as const;
export type MiddlewareName = (typeof MIDDLEWARE_NAMES)[number];

export interface MiddlewareSpec {
  name: MiddlewareName;
  params?: Record<string, unknown>;
}

export interface Route {
  app: string;
  listener: string;
  /** The port the proxy opens on the LAN (35000-45000). */
  publicPort: number;
  /** Where the app's container publishes, always on 127.0.0.1 (15000-25000). */
  hostBindPort: number;
  flow: Flow;
  protocol: Protocol;
  /** private: the proxy puts the auth gate in front even if the middleware list forgets it. */
  access: 'private' | 'public';
  middleware: MiddlewareSpec[];
  /** Names that reach this route on the portal port: full names ("web-blog.piccolo.local") or single labels ("35001-blog"). */
  hostnames: string[];
}

/** The portal: the daemon's own HTTP server on loopback, reached through the proxy's portal listeners. */
export interface PortalRoute {
  hostBindPort: number;
  /**
   * The daemon's portal socket: when set, the proxy forwards the portal there instead of to
   * 127.0.0.1:hostBindPort, and the daemon believes the X-Forwarded-* headers only on it.
   */
  socketPath?: string;
  /** Names that mean "the device itself", e.g. "piccolo.local"; IP literals and localhost always do. */
  hostnames: string[];
}

export interface RouteTable {
  /** Increases on every change; the proxy long-polls for a different one. */
  rev: number;
  portal: PortalRoute | null;
  routes: Route[];
  /**
   * Certificates the daemon obtained (ACME), PEM, each a private key and its chain, leaf first.
   * The proxy keeps them in memory and prefers them over its local-CA certificate.
   */
  certificates?: CertificatePair[];
}

export interface CertificatePair {
  key: string;
  cert: string;
}

/** More would be a table gone wrong: a device has one name per app listener, plus the portal. */
export const MAX_CERTIFICATES = 512;
const MAX_PEM_CHARS = 64 * 1024;
const PEM_KEY = /^\s*-----BEGIN ([A-Z ]*)PRIVATE KEY-----[A-Za-z0-9+/=\s]+-----END \1PRIVATE KEY-----\s*$/;
const PEM_CHAIN = /^\s*(-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----\s*)+$/;

/**
 * Private `type: user` HTTP listeners get the auth gate unless the spec says public. raw TCP and
 * udp carry no session cookie to check, so they are public (ip_allow is what limits them).
 */
export function defaultAccess(appType: 'user' | 'system', protocol: Protocol, declaredPublic: boolean): Route['access'] {
  return appType === 'user' && carriesHttp(protocol) && !declaredPublic ? 'private' : 'public';
}

// ---- middleware parameters ----

export interface RateLimitParams {
  /** Tokens added per second: the sustained request rate per client address. */
  rate: number;
  /** Bucket size: how many requests a client may send at once. */
  burst: number;
}

export interface IpAllowParams {
  cidrs: string[];
}

export interface RequestLogParams {
  /** Fraction of requests logged, 0 < sample <= 1. */
  sample: number;
}

export interface ConnectionLimitParams {
  /** Concurrent connections on the listener. */
  max: number;
  /** Concurrent connections from one client address. */
  perClient?: number;
}

/** Where the auth gate applies: the portal checks the session; none of its params are tunable yet. */
export type AuthParams = Record<string, never>;

export interface MiddlewareParams {
  auth: AuthParams;
  rate_limit: RateLimitParams;
  ip_allow: IpAllowParams;
  request_log: RequestLogParams;
  connection_limit: ConnectionLimitParams;
}

type Checker = (params: Record<string, unknown>, problems: string[], at: string) => void;

const MIDDLEWARE_CHECKS: Record<MiddlewareName, Checker> = {
  auth: (params, problems, at) => onlyKeys(params, [], problems, at),
  rate_limit: (params, problems, at) => {
    onlyKeys(params, ['rate', 'burst'], problems, at);
    positiveNumber(params.rate, 1_000_000, problems, `${at}.rate`);
    positiveInteger(params.burst, 1_000_000, problems, `${at}.burst`);
  },
  ip_allow: (params, problems, at) => {
    onlyKeys(params, ['cidrs'], problems, at);
    if (!Array.isArray(params.cidrs) || params.cidrs.length === 0 || params.cidrs.length > 256) {
      problems.push(`${at}.cidrs: must be a list of 1-256 CIDRs`);
      return;
    }
    params.cidrs.forEach((cidr, i) => {
      if (typeof cidr !== 'string' || !parseCidr(cidr)) problems.push(`${at}.cidrs[${i}]: must be an address/prefix such as 192.168.0.0/16 or fd00::/8`);
    });
  },
  request_log: (params, problems, at) => {
    onlyKeys(params, ['sample'], problems, at);
    const { sample } = params;
    if (typeof sample !== 'number' || !(sample > 0 && sample <= 1)) problems.push(`${at}.sample: must be a number in (0, 1]`);
  },
  connection_limit: (params, problems, at) => {
    onlyKeys(params, ['max', 'perClient'], problems, at);
    positiveInteger(params.max, 1_000_000, problems, `${at}.max`);
    if (params.perClient !== undefined) positiveInteger(params.perClient, 1_000_000, problems, `${at}.perClient`);
  },
};

/**
 * Checks a listener's middleware list; returns one line per problem, each naming its path
 * ("middleware[1].rate: must be ..."). The daemon calls this when an app is installed, so a bad
 * parameter is refused then, never discovered when a request arrives. raw and udp listeners carry
 * no HTTP, so HTTP-only middleware is refused there; on udp, connection_limit caps the flows and
 * rate_limit charges each new flow.
 */
export function validateMiddleware(list: unknown, protocol: Protocol, path = 'middleware'): string[] {
  const problems: string[] = [];
  if (!Array.isArray(list)) return [`${path}: must be a list`];
  const seen = new Set<string>();
  list.forEach((entry, i) => {
    const at = `${path}[${i}]`;
    if (!isObject(entry)) return void problems.push(`${at}: must be an object with name and params`);
    const { name, params = {}, ...rest } = entry;
    for (const key of Object.keys(rest)) problems.push(`${at}.${key}: unknown field`);
    if (!MIDDLEWARE_NAMES.includes(name as MiddlewareName)) return void problems.push(`${at}.name: must be one of ${MIDDLEWARE_NAMES.join(', ')}`);
    if (seen.has(name as string)) problems.push(`${at}.name: ${name} appears twice`);
    seen.add(name as string);
    if (!carriesHttp(protocol) && (name === 'auth' || name === 'request_log')) problems.push(`${at}.name: ${name} needs HTTP; this listener is ${protocol}`);
    if (!isObject(params)) return void problems.push(`${at}.params: must be an object`);
    MIDDLEWARE_CHECKS[name as MiddlewareName](params, problems, `${at}.params`);
  });
  return problems;
}

/** "10.0.0.0/8" or "fd00::/8" → parts for BlockList.addSubnet; undefined when malformed. */
export function parseCidr(cidr: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const match = /^([^/]+)\/(\d{1,3})$/.exec(cidr.trim());
  if (!match) return undefined;
  const version = isIP(match[1]!);
  const prefix = Number(match[2]);
  if (version === 0 || prefix > (version === 4 ? 32 : 128)) return undefined;
  return { address: match[1]!, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** A BlockList of the CIDRs, which must have passed validateMiddleware. */
export function cidrBlockList(cidrs: string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const { address, prefix, family } = parseCidr(cidr)!;
    list.addSubnet(address, prefix, family);
  }
  return list;
}

// ---- the whole table, as the proxy receives it ----

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const NAME = /^[a-z][a-z0-9-]{0,62}$/;

/** Checks a table that arrived over the socket; returns the table or throws with every problem. */
export function parseRouteTable(doc: unknown): RouteTable {
  const problems: string[] = [];
  if (!isObject(doc)) throw new RouteTableError(['table: must be an object']);
  const { rev, portal, routes } = doc;
  if (!Number.isSafeInteger(rev) || (rev as number) < 0) problems.push('rev: must be a non-negative integer');
  if (portal !== null) {
    if (!isObject(portal)) problems.push('portal: must be an object or null');
    else {
      port(portal.hostBindPort, problems, 'portal.hostBindPort');
      hostnames(portal.hostnames, problems, 'portal.hostnames');
      if (portal.socketPath !== undefined && (typeof portal.socketPath !== 'string' || !portal.socketPath.startsWith('/') || portal.socketPath.length > 107)) {
        problems.push('portal.socketPath: must be an absolute path of at most 107 characters');
      }
    }
  }
  if (!Array.isArray(routes)) problems.push('routes: must be a list');
  else {
    const ports = new Set<string>();
    routes.forEach((route, i) => {
      const at = `routes[${i}]`;
      if (!isObject(route)) return void problems.push(`${at}: must be an object`);
      if (typeof route.app !== 'string' || !NAME.test(route.app)) problems.push(`${at}.app: must be a lower-case name`);
      if (typeof route.listener !== 'string' || !NAME.test(route.listener)) problems.push(`${at}.listener: must be a lower-case name`);
      port(route.publicPort, problems, `${at}.publicPort`);
      port(route.hostBindPort, problems, `${at}.hostBindPort`);
      // Per transport: a DNS app has 53/udp and 53/tcp.
      const key = `${route.publicPort}/${route.protocol === 'udp' ? 'udp' : 'tcp'}`;
      if (ports.has(key)) problems.push(`${at}.publicPort: ${route.publicPort} is used twice`);
      ports.add(key);
      if (!FLOWS.includes(route.flow as Flow)) problems.push(`${at}.flow: must be one of ${FLOWS.join(', ')}`);
      if (!PROTOCOLS.includes(route.protocol as Protocol)) problems.push(`${at}.protocol: must be one of ${PROTOCOLS.join(', ')}`);
      else problems.push(...validateMiddleware(route.middleware, route.protocol as Protocol, `${at}.middleware`));
      if (route.protocol === 'udp' && route.flow !== 'tcp') problems.push(`${at}.flow: a udp route has no TLS; must be tcp`);
      if (route.access !== 'private' && route.access !== 'public') problems.push(`${at}.access: must be private or public`);
      hostnames(route.hostnames, problems, `${at}.hostnames`);
    });
  }
  if (doc.certificates !== undefined) certificates(doc.certificates, problems);
  if (problems.length) throw new RouteTableError(problems);
  return doc as unknown as RouteTable;
}

export class RouteTableError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid route table: ${problems.join('; ')}`);
    this.name = 'RouteTableError';
  }
}

function hostnames(value: unknown, problems: string[], at: string): void {
  if (!Array.isArray(value)) return void problems.push(`${at}: must be a list`);
  value.forEach((name, i) => {
    if (typeof name !== 'string' || name.length > 253 || !name.split('.').every((label) => LABEL.test(label))) {
      problems.push(`${at}[${i}]: must be a lower-case host name`);
    }
  });
}

/** Shape only (the proxy parses the keys): problems name the entry, never a key's text. */
function certificates(value: unknown, problems: string[]): void {
  if (!Array.isArray(value) || value.length > MAX_CERTIFICATES) return void problems.push(`certificates: must be a list of at most ${MAX_CERTIFICATES}`);
  value.forEach((pair, i) => {
    const at = `certificates[${i}]`;
    if (!isObject(pair)) return void problems.push(`${at}: must be an object with key and cert`);
    for (const field of Object.keys(pair)) if (field !== 'key' && field !== 'cert') problems.push(`${at}.${field}: unknown field`);
    if (typeof pair.key !== 'string' || pair.key.length > MAX_PEM_CHARS || !PEM_KEY.test(pair.key)) problems.push(`${at}.key: must be one PEM private key`);
    if (typeof pair.cert !== 'string' || pair.cert.length > MAX_PEM_CHARS || !PEM_CHAIN.test(pair.cert)) problems.push(`${at}.cert: must be PEM certificates (the chain, leaf first)`);
  });
}

function port(value: unknown, problems: string[], at: string): void {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 65535) problems.push(`${at}: must be 1-65535`);
}

function positiveNumber(value: unknown, max: number, problems: string[], at: string): void {
  if (typeof value !== 'number' || !(value > 0 && value <= max)) problems.push(`${at}: must be a number above 0, at most ${max}`);
}

function positiveInteger(value: unknown, max: number, problems: string[], at: string): void {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > max) problems.push(`${at}: must be an integer from 1 to ${max}`);
}

function onlyKeys(params: Record<string, unknown>, known: string[], problems: string[], at: string): void {
  for (const key of Object.keys(params)) if (!known.includes(key)) problems.push(`${at}.${key}: unknown parameter`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
