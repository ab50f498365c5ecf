// JSON over HTTP on a local unix socket: how the proxy and the tunnel call the daemon's internal
// socket. Each call has a deadline, so a stuck peer never holds a caller forever.
import http from 'node:http';

export class DaemonUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DaemonUnreachableError';
  }
}

export interface UnixCallOptions {
  method?: string;
  body?: unknown;
  timeoutMs: number;
  signal?: AbortSignal;
}

export class UnixHttpClient {
  // One connection is reused for short calls; a long poll gets its own from the same agent.
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

  constructor(private readonly socketPath: string) {}

  call(path: string, { method = 'GET', body, timeoutMs, signal }: UnixCallOptions): Promise<{ status: number; body: string }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) };
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.socketPath, path, method, headers, agent: this.agent, signal }, (res) => {
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

  /** The daemon's long poll: GET path (with ?wait=afterRev once a rev is known), its JSON body; what names it in errors. */
  async longPoll(path: string, afterRev: number | undefined, signal: AbortSignal, what: string): Promise<unknown> {
    const { status, body } = await this.call(afterRev === undefined ? path : `${path}?wait=${afterRev}`, { timeoutMs: 35_000, signal });
    if (status !== 200) throw new DaemonUnreachableError(`${what}: daemon answered ${status}`);
    return JSON.parse(body);
  }

  close(): void {
    this.agent.destroy();
  }
}
