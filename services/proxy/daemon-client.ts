// The proxy's side of the daemon's internal socket (services/daemon/internal/): the route table,
// session checks for the auth gate, and ACME challenge answers. One small JSON-over-HTTP client;
// each call has a deadline, so a stuck daemon never holds a request forever.
import http from 'node:http';
import { INTERNAL_PATHS, parseRouteTable, type RouteTable } from '../common/route-table.js';

export class DaemonUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DaemonUnreachableError';
  }
}

export interface SessionVerdict {
  valid: boolean;
  user?: string;
}

export interface DaemonClientOptions {
  socketPath: string;
}

interface CallOptions {
  method?: string;
  body?: unknown;
  timeoutMs: number;
  signal?: AbortSignal;
}

export class DaemonClient {
  // One connection is reused for the checks; the long poll gets its own from the same agent.
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

  constructor(private readonly options: DaemonClientOptions) {}

  /** The current table, or (with afterRev) the next one, waiting up to the daemon's long-poll time. */
  async routes(afterRev: number | undefined, signal: AbortSignal): Promise<RouteTable> {
    const path = afterRev === undefined ? INTERNAL_PATHS.routes : `${INTERNAL_PATHS.routes}?wait=${afterRev}`;
    const { status, body } = await this.call(path, { timeoutMs: 35_000, signal });
    if (status !== 200) throw new DaemonUnreachableError(`route table: daemon answered ${status}`);
    return parseRouteTable(JSON.parse(body));
  }

  async checkSession(sessionId: string): Promise<SessionVerdict> {
    const { status, body } = await this.call(INTERNAL_PATHS.sessionCheck, { method: 'POST', body: { sessionId }, timeoutMs: 3000 });
    if (status !== 200) throw new DaemonUnreachableError(`session check: daemon answered ${status}`);
    const verdict = JSON.parse(body) as SessionVerdict;
    return { valid: verdict.valid === true, user: typeof verdict.user === 'string' ? verdict.user : undefined };
  }

  /** The key authorization for an ACME HTTP-01 token, or undefined when the daemon has none. */
  async acmeChallenge(token: string): Promise<string | undefined> {
    const { status, body } = await this.call(`${INTERNAL_PATHS.acmeChallenge}/${encodeURIComponent(token)}`, { timeoutMs: 3000 });
    if (status === 404) return undefined;
    if (status !== 200) throw new DaemonUnreachableError(`acme challenge: daemon answered ${status}`);
    return body;
  }

  close(): void {
    this.agent.destroy();
  }

  private call(path: string, { method = 'GET', body, timeoutMs, signal }: CallOptions): Promise<{ status: number; body: string }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) };
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.options.socketPath, path, method, headers, agent: this.agent, signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      const timer = setTimeout(() => req.destroy(new DaemonUnreachableError(`daemon did not answer ${path} within ${timeoutMs} ms`)), timeoutMs);
      req.on('close', () => clearTimeout(timer));
      req.on('error', (err) => reject(err instanceof DaemonUnreachableError || err.name === 'AbortError' ? err : new DaemonUnreachableError(`daemon socket: ${err.message}`, { cause: err })));
      req.end(payload);
    });
  }
}
