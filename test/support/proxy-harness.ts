// The proxy bundle as a real process, fed by a real InternalApi (the daemon's side of the
// contract) with an in-memory route table, plus small upstream servers on loopback.
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { InternalApi, type ChallengeStore, type SessionChecker } from '../../services/daemon/internal/internal-api.js';
import { InMemoryRouteSource } from '../../services/daemon/internal/memory-route-source.js';
import { createLogger } from '../../services/common/logger.js';
import type { Route } from '../../services/common/route-table.js';
import { ServiceProcess, waitFor } from './processes.js';

export interface ProxyHarness {
  dir: string;
  routes: InMemoryRouteSource;
  sessions: Map<string, string>;
  challenges: Map<string, string>;
  api: InternalApi;
  proxy: ServiceProcess;
  /** The portal listener's port (host-name routing). */
  portalPort: number;
  /** The tunnel ingress sockets (each connection starts with a PROXY v2 header). */
  tunnelTlsSocket: string;
  tunnelHttpSocket: string;
  /** Replaces the table and waits until the proxy applied it. */
  setRoutes(change: Parameters<InMemoryRouteSource['set']>[0]): Promise<void>;
  stop(): Promise<void>;
}

/** env overrides the harness's settings; undefined unsets one (the proxy's default applies). */
export async function startProxy(env: Record<string, string | undefined> = {}, options: { netns?: string } = {}): Promise<ProxyHarness> {
  const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-proxy-'));
  const routes = new InMemoryRouteSource();
  const sessions = new Map<string, string>();
  const challenges = new Map<string, string>();
  const checker: SessionChecker = { check: async (id) => (sessions.has(id) ? { valid: true, user: sessions.get(id) } : { valid: false }) };
  const store: ChallengeStore = { get: (token) => challenges.get(token) };
  const socketPath = path.join(dir, 'internal.sock');
  const api = new InternalApi({ socketPath, routes, sessions: checker, challenges: store, logger: createLogger({ service: 'test-daemon', level: 'error' }), longPollMs: 2000 });
  await api.start();
  const tunnelTlsSocket = path.join(dir, 'tunnel', 'tls.sock');
  const tunnelHttpSocket = path.join(dir, 'tunnel', 'http.sock');
  const proxy = await ServiceProcess.start('proxy', {
    PICCOLO_PROXY_LISTEN: '127.0.0.1:0',
    PICCOLO_PROXY_BIND_HOST: '127.0.0.1',
    PICCOLO_PROXY_DAEMON_SOCKET: socketPath,
    PICCOLO_PROXY_CERT_DIR: path.join(dir, 'certs'),
    PICCOLO_HEALTH_SOCKET: path.join(dir, 'health.sock'),
    PICCOLO_PROXY_TUNNEL_TLS_SOCKET: tunnelTlsSocket,
    PICCOLO_PROXY_TUNNEL_HTTP_SOCKET: tunnelHttpSocket,
    ...env,
  }, undefined, options);
  await proxy.notified('READY=1', 20_000);
  const portalPort = Number((await proxy.address('listener-0')).split(':').pop());
  const setRoutes = async (change: Parameters<InMemoryRouteSource['set']>[0]) => {
    const { rev } = routes.set(change);
    await waitFor(() => proxy.logs.find((l) => l.msg === 'routes applied' && l.rev === rev), 10_000, `proxy applies rev ${rev}`);
  };
  const stop = async () => {
    await proxy.kill('SIGTERM');
    await api.stop();
  };
  return { dir, routes, sessions, challenges, api, proxy, portalPort, tunnelTlsSocket, tunnelHttpSocket, setRoutes, stop };
}

/** A port free right now (bound then released), for a public port in a route. */
/** Tests of the proxy import it from here with the rest of the harness. */
export { freePort } from '../../image/qemu.js';

/** An upstream HTTP server that echoes what it got as JSON. */
export async function echoServer(name: string): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({ name, method: req.method, url: req.url, headers: req.headers, bodyBytes: Buffer.concat(chunks).length });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  return { server, port: await listenOn(server) };
}

export async function listenOn(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

export function route(fields: Partial<Route> & Pick<Route, 'app' | 'publicPort' | 'hostBindPort'>): Route {
  return { listener: 'web', flow: 'tcp', protocol: 'http', access: 'public', middleware: [], hostnames: [], ...fields };
}

/** Sends raw bytes and collects everything until the server closes (or timeoutMs). */
export function rawExchange(port: number, payload: string | Buffer, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(payload));
    let data = '';
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('data', (d) => (data += d.toString('latin1')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
    socket.on('error', () => {});
  });
}

/** Resident memory of a process in MiB, from /proc. */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}
