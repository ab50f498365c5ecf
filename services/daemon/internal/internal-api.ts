// The daemon's side of the proxy's and the tunnel's contracts: a small HTTP API on a unix socket
// that only they (group piccolo) can reach. It serves the route table and the remote table, each
// with a long poll so that changes reach them at once, the session check behind the proxy's auth
// gate, the ACME HTTP-01 challenge answers, and takes the tunnel's status and the proxy's CA certificate. Its data comes from
// interfaces, so the apps runtime, the auth code, remote access and the ACME client plug in
// without this module knowing them.
import type { EventEmitter } from 'node:events';
import type http from 'node:http';
import { BadRequestError, NotFoundError } from '../../common/errors.js';
import { HttpServerModule, Router, readJson } from '../../common/http.js';
import type { Module } from '../../common/lifecycle.js';
import type { Logger } from '../../common/logger.js';
import { REMOTE_PATHS, type RemoteTable, type TunnelStatus } from '../../common/remote-contract.js';
import { INTERNAL_PATHS, type RouteTable } from '../../common/route-table.js';

/** A table with a rev, long-polled by a client that has some rev. */
export interface VersionedSource<T extends { rev: number }> extends EventEmitter {
  current(): T;
  /** Emits 'changed' after current() starts returning a table with a new rev. */
  on(event: 'changed', listener: () => void): this;
}

export type RouteSource = VersionedSource<RouteTable>;

export interface RemoteAccessLink {
  table: VersionedSource<RemoteTable>;
  /** Checks a status the tunnel pushed (throws a 400 naming the field) and keeps it. */
  tunnelStatus(body: unknown): TunnelStatus;
}

export interface SessionChecker {
  check(sessionId: string): Promise<{ valid: boolean; user?: string }>;
}

export interface ChallengeStore {
  /** The key authorization for an HTTP-01 token, or undefined when no order waits for it. */
  get(token: string): string | undefined;
}

export interface InternalApiOptions {
  socketPath: string;
  routes: RouteSource;
  sessions: SessionChecker;
  challenges: ChallengeStore;
  /** Remote access (the tunnel's routes); the proxy's tests run without it. */
  remote?: RemoteAccessLink;
  /** Takes the device CA certificate the proxy pushes (throws a 400 naming the field); absent, the route is not served. */
  deviceCa?: { set(certificate: unknown): unknown };
  logger: Logger;
  /** How long a long poll waits for a change before answering with the same table. */
  longPollMs?: number;
}

const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

export class InternalApi implements Module {
  readonly name = 'internal-api';
  private readonly server: HttpServerModule;
  /** Long polls in flight, answered at once on stop so the server can close. */
  private readonly waiting = new Set<() => void>();

  constructor(private readonly options: InternalApiOptions) {
    const router = new Router(options.logger)
      .on('GET', INTERNAL_PATHS.routes, (req) => this.longPoll(req, options.routes))
      .on('POST', INTERNAL_PATHS.sessionCheck, async (req) => {
        const body = (await readJson(req, 4096)) as { sessionId?: unknown };
        if (typeof body?.sessionId !== 'string' || body.sessionId.length > 512) throw new BadRequestError('sessionId: must be a string');
        const { valid, user } = await options.sessions.check(body.sessionId);
        return { body: valid ? { valid, user } : { valid } };
      })
      .on('GET', `${INTERNAL_PATHS.acmeChallenge}/:token`, (_req, { token }) => {
        const answer = TOKEN.test(token!) ? options.challenges.get(token!) : undefined;
        if (answer === undefined) throw new NotFoundError('no challenge for this token');
        return { body: answer };
      });
    const { remote, deviceCa } = options;
    if (deviceCa) {
      router.on('PUT', INTERNAL_PATHS.deviceCa, async (req) => {
        const body = (await readJson(req, 64 * 1024)) as { certificate?: unknown } | null;
        deviceCa.set(body?.certificate);
        return { status: 204 };
      });
    }
    if (remote) {
      router
        .on('GET', REMOTE_PATHS.remote, (req) => this.longPoll(req, remote.table))
        .on('POST', REMOTE_PATHS.tunnelStatus, async (req) => {
          remote.tunnelStatus(await readJson(req, 16 * 1024));
          return { status: 204 };
        });
    }
    // Group piccolo (the proxy runs with it as a supplementary group) may connect; nobody else.
    this.server = new HttpServerModule({ name: 'internal', address: { path: options.socketPath, mode: 0o660 }, listener: router.listener, logger: options.logger });
  }

  start(): Promise<void> {
    return this.server.start();
  }

  async stop(): Promise<void> {
    for (const answer of this.waiting) answer();
    await this.server.stop();
  }

  /** The source's table: at once, or with ?wait=<rev> once it differs from that rev (or on timeout). */
  private async longPoll<T extends { rev: number }>(req: http.IncomingMessage, source: VersionedSource<T>) {
    const wait = new URL(req.url ?? '/', 'http://internal.invalid').searchParams.get('wait');
    if (wait !== null) {
      if (!/^\d{1,15}$/.test(wait)) throw new BadRequestError('wait: must be the rev the caller has');
      if (source.current().rev === Number(wait)) await this.changeOrTimeout(req, source);
    }
    return { body: source.current() };
  }

  private changeOrTimeout(req: http.IncomingMessage, source: EventEmitter): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        source.off('changed', done);
        req.socket.off('close', done);
        this.waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, this.options.longPollMs ?? 25_000);
      source.on('changed', done);
      req.socket.on('close', done);
      this.waiting.add(done);
    });
  }
}
