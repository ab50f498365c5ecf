// The proxy's side of the daemon's internal socket (services/daemon/internal/): the route table,
// session checks for the auth gate, ACME challenge answers, and the device CA handed over. One
// small JSON-over-HTTP client; each call has a deadline, so a stuck daemon never holds a request forever.
import { INTERNAL_PATHS, parseRouteTable, type RouteTable } from '../common/route-table.js';
import { DaemonUnreachableError, UnixHttpClient } from '../common/unix-http.js';

export { DaemonUnreachableError };

export interface SessionVerdict {
  valid: boolean;
  user?: string;
}

export interface DaemonClientOptions {
  socketPath: string;
}

export class DaemonClient {
  private readonly http: UnixHttpClient;

  constructor(options: DaemonClientOptions) {
    this.http = new UnixHttpClient(options.socketPath);
  }

  /** The current table, or (with afterRev) the next one, waiting up to the daemon's long-poll time. */
  async routes(afterRev: number | undefined, signal: AbortSignal): Promise<RouteTable> {
    return parseRouteTable(await this.http.longPoll(INTERNAL_PATHS.routes, afterRev, signal, 'route table'));
  }

  async checkSession(sessionId: string): Promise<SessionVerdict> {
    const { status, body } = await this.http.call(INTERNAL_PATHS.sessionCheck, { method: 'POST', body: { sessionId }, timeoutMs: 3000 });
    if (status !== 200) throw new DaemonUnreachableError(`session check: daemon answered ${status}`);
    const verdict = JSON.parse(body) as SessionVerdict;
    return { valid: verdict.valid === true, user: typeof verdict.user === 'string' ? verdict.user : undefined };
  }

  /** The key authorization for an ACME HTTP-01 token, or undefined when the daemon has none. */
  async acmeChallenge(token: string): Promise<string | undefined> {
    const { status, body } = await this.http.call(`${INTERNAL_PATHS.acmeChallenge}/${encodeURIComponent(token)}`, { timeoutMs: 3000 });
    if (status === 404) return undefined;
    if (status !== 200) throw new DaemonUnreachableError(`acme challenge: daemon answered ${status}`);
    return body;
  }

  /** Hands the daemon the device CA certificate (for the portal's download); false when this daemon takes none (404). */
  async pushDeviceCa(certificate: string, signal?: AbortSignal): Promise<boolean> {
    const { status } = await this.http.call(INTERNAL_PATHS.deviceCa, { method: 'PUT', body: { certificate }, timeoutMs: 3000, signal });
    if (status === 404) return false;
    if (status !== 204) throw new DaemonUnreachableError(`device CA: daemon answered ${status}`);
    return true;
  }

  close(): void {
    this.http.close();
  }
}
