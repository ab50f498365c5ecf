// The per-listener middleware pipeline, compiled once per route-table change from parameters the
// daemon validated at install time (validateMiddleware). Connection-level checks run when a
// connection is accepted on the route's own port; request-level ones for each HTTP request and
// WebSocket upgrade, including requests routed by host name on the portal port. A middleware may
// also set headers on every response it let through (the auth gate's Cache-Control).
import type http from 'node:http';
import { parse as parseCookies } from 'cookie';
import type { Logger } from '../common/logger.js';
import {
  SESSION_COOKIE,
  USER_HEADER,
  carriesHttp,
  cidrBlockList,
  type ConnectionLimitParams,
  type IpAllowParams,
  type MiddlewareSpec,
  type RateLimitParams,
  type RequestLogParams,
  type Route,
} from '../common/route-table.js';
import type { PortalAddress } from './portal-address.js';
import type { Problem } from './problem-pages.js';
import type { SessionCache } from './session-cache.js';

/** An answer given instead of the app's. */
export type Rejection = Problem;

export interface RequestCheck {
  req: http.IncomingMessage;
  client: string;
  secure: boolean;
}

/**
 * What connection-level middleware admits: a TCP socket, or a UDP flow (udp-relay.ts), which
 * emits 'close' when it is forgotten, so connection_limit counts flows the same way.
 */
export interface Admitted {
  once(event: 'close', listener: () => void): unknown;
}

interface Middleware {
  admitConnection?(socket: Admitted, client: string): boolean;
  checkRequest?(check: RequestCheck): Rejection | undefined | Promise<Rejection | undefined>;
  observe?(check: RequestCheck, res: http.ServerResponse, startedAt: number): void;
  /** Set on every response this middleware let through, replacing the app's own (Vary is merged instead). */
  responseHeaders?: Record<string, string>;
}

export interface PipelineDeps {
  sessions: SessionCache;
  /** Where the portal is for each client: an unauthenticated browser is sent to its sign-in. */
  portal: PortalAddress;
  logger: Logger;
  now?: () => number;
}

export class Pipeline {
  private readonly connectionChecks: Middleware[];
  private readonly requestChecks: Middleware[];
  private readonly observers: Middleware[];
  /** The headers the middleware set on the app's responses; undefined (the common case) when none does. */
  readonly responseHeaders: Record<string, string> | undefined;

  constructor(route: Route, deps: PipelineDeps) {
    const specs = [...route.middleware];
    // A private HTTP listener always sits behind the gate, whatever its middleware list says.
    if (route.access === 'private' && carriesHttp(route.protocol) && !specs.some((m) => m.name === 'auth')) specs.unshift({ name: 'auth' });
    const all = specs.map((spec) => build(spec, route, deps));
    this.connectionChecks = all.filter((m) => m.admitConnection);
    this.requestChecks = all.filter((m) => m.checkRequest);
    this.observers = all.filter((m) => m.observe);
    const setters = all.filter((m) => m.responseHeaders);
    this.responseHeaders = setters.length ? Object.assign({}, ...setters.map((m) => m.responseHeaders)) : undefined;
  }

  admitConnection(socket: Admitted, client: string): boolean {
    return this.connectionChecks.every((m) => m.admitConnection!(socket, client));
  }

  get checksRequests(): boolean {
    return this.requestChecks.length > 0 || this.observers.length > 0;
  }

  async checkRequest(check: RequestCheck, res?: http.ServerResponse): Promise<Rejection | undefined> {
    if (res && this.observers.length) {
      const startedAt = Date.now();
      res.once('finish', () => this.observers.forEach((m) => m.observe!(check, res, startedAt)));
    }
    for (const middleware of this.requestChecks) {
      const rejection = await middleware.checkRequest!(check);
      if (rejection) return rejection;
    }
    return undefined;
  }
}

function build(spec: MiddlewareSpec, route: Route, deps: PipelineDeps): Middleware {
  const params = (spec.params ?? {}) as never;
  switch (spec.name) {
    case 'auth':
      return authGate(deps);
    case 'rate_limit':
      return rateLimit(params, route.protocol, deps.now ?? Date.now);
    case 'ip_allow':
      return ipAllow(params);
    case 'request_log':
      return requestLog(params, route, deps.logger);
    case 'connection_limit':
      return connectionLimit(params);
  }
}

/**
 * Signing out means signed out: what the gate let through was for one signed-in person, so no
 * cache (the browser's included: back, reload, a shared computer) may keep it, whatever the app said.
 */
const GATED_RESPONSE_HEADERS: Readonly<Record<string, string>> = { 'cache-control': 'private, no-store', vary: 'Cookie' };

function authGate({ sessions, portal }: PipelineDeps): Middleware {
  return {
    responseHeaders: { ...GATED_RESPONSE_HEADERS },
    async checkRequest({ req, secure }) {
      const sessionId = req.headers.cookie ? parseCookies(req.headers.cookie)[SESSION_COOKIE] : undefined;
      const verdict = sessionId ? await sessions.check(sessionId) : { valid: false as const };
      if (verdict === 'unavailable') return { status: 503, title: 'Cannot check your sign-in', message: 'cannot check the session with the device right now; retry shortly', advice: 'The device may be busy or restarting. Reload this page in a few seconds.' };
      if (verdict.valid) {
        // The app learns who the user is, never the portal session itself.
        req.headers.cookie = withoutCookie(req.headers.cookie!, SESSION_COOKIE);
        if (!req.headers.cookie) delete req.headers.cookie;
        req.headers[USER_HEADER] = verdict.user ?? '';
        return undefined;
      }
      const acceptsHtml = (req.headers.accept ?? '').includes('text/html');
      if ((req.method === 'GET' || req.method === 'HEAD') && acceptsHtml) {
        const signIn = portal.signIn(req, secure);
        if ('badHost' in signIn) return { status: 400, title: 'Not a valid address', message: signIn.badHost, advice: 'Check the address in the browser bar.' };
        return { status: 302, message: 'sign in to the portal first', headers: { location: signIn.url } };
      }
      const portalOrigin = portal.origin(req, secure);
      return {
        status: 401,
        title: 'Sign in first',
        message: 'sign in to the portal first',
        advice: 'This app is private to the people who can sign in to this device.',
        link: portalOrigin ? { href: `${portalOrigin}/`, text: 'Sign in to the portal' } : undefined,
      };
    },
  };
}

function rateLimit({ rate, burst }: RateLimitParams, protocol: Route['protocol'], now: () => number): Middleware {
  const buckets = new TokenBuckets(rate, burst, now);
  // raw and udp listeners have no requests: each connection (each new UDP flow) costs a token instead.
  if (!carriesHttp(protocol)) return { admitConnection: (_socket, client) => buckets.take(client) === 0 };
  return {
    checkRequest({ client }) {
      const waitMs = buckets.take(client);
      if (waitMs === 0) return undefined;
      return { status: 429, title: 'Too many requests', message: 'too many requests; slow down', advice: `This app limits how often it may be asked. Try again in ${Math.ceil(waitMs / 1000)} s.`, headers: { 'retry-after': String(Math.ceil(waitMs / 1000)) } };
    },
  };
}

function ipAllow({ cidrs }: IpAllowParams): Middleware {
  const allowed = cidrBlockList(cidrs);
  const admits = (client: string) => allowed.check(client, client.includes(':') ? 'ipv6' : 'ipv4');
  return {
    admitConnection: (_socket, client) => admits(client),
    checkRequest: ({ client }) => (admits(client) ? undefined : { status: 403, title: 'Not from this network', message: 'this app does not accept connections from your address', advice: 'It accepts only some networks; connect from one of those.' }),
  };
}

function requestLog({ sample }: RequestLogParams, route: Route, logger: Logger): Middleware {
  const log = logger.child({ app: route.app, listener: route.listener });
  return {
    observe({ req, client }, res, startedAt) {
      if (Math.random() >= sample) return;
      // The path only: query strings often carry tokens.
      const path = (req.url ?? '/').split('?')[0];
      log.info('request', { method: req.method, path, status: res.statusCode, ms: Date.now() - startedAt, client, sample });
    },
  };
}

function connectionLimit({ max, perClient }: ConnectionLimitParams): Middleware {
  let total = 0;
  const byClient = new Map<string, number>();
  return {
    admitConnection(socket, client) {
      const mine = byClient.get(client) ?? 0;
      if (total >= max || (perClient !== undefined && mine >= perClient)) return false;
      total++;
      byClient.set(client, mine + 1);
      socket.once('close', () => {
        total--;
        const left = byClient.get(client)! - 1;
        if (left === 0) byClient.delete(client);
        else byClient.set(client, left);
      });
      return true;
    },
  };
}

/** Token buckets per client address, refilled lazily; full buckets are forgotten so the map stays small. */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private static readonly SWEEP_ABOVE = 10_000;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number,
  ) {}

  /** Takes a token: 0 when granted, else how many ms until one is there. */
  take(client: string): number {
    const now = this.now();
    const bucket = this.buckets.get(client) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.rate);
    bucket.at = now;
    if (!this.buckets.has(client)) {
      if (this.buckets.size >= TokenBuckets.SWEEP_ABOVE) this.sweep(now);
      this.buckets.set(client, bucket);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - bucket.tokens) / this.rate) * 1000);
  }

  private sweep(now: number): void {
    for (const [client, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.rate >= this.burst) this.buckets.delete(client);
    }
  }
}

function withoutCookie(header: string, name: string): string {
  return header
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part && !part.startsWith(`${name}=`))
    .join('; ');
}

/** "host:port" or "[v6]:port" → the host alone, lower-cased. */
export function hostName(host: string): string {
  const bracket = /^\[([^\]]+)\]/.exec(host);
  return (bracket ? bracket[1]! : host.split(':')[0]!).toLowerCase().replace(/\.$/, '');
}
