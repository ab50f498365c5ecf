// Remote access for integration tests: the socket paths that join the daemon, the proxy and the
// tunnel; the proxy and tunnel bundles started on them (the daemon is each test's own, given
// sockets.internal and sockets.portal); our TypeScript relay, in-process.
import path from 'node:path';
import { TEST_BUNDLE_DIR } from '../../image/bundle.js';
import { createLogger } from '../../services/common/logger.js';
import { Relay } from '../../services/relay/relay.js';
import { ServiceProcess } from './processes.js';
import { selfSignedCert } from './tunnel-harness.js';

export interface RemoteSockets {
  /** The daemon's internal socket: routes for the proxy, the remote table for the tunnel. */
  internal: string;
  /** The daemon's portal socket, which only the proxy uses (X-Forwarded-For believed there). */
  portal: string;
  /** The proxy's tunnel ingress sockets. */
  tunnelTls: string;
  tunnelHttp: string;
}

export function remoteSockets(dir: string): RemoteSockets {
  return {
    internal: path.join(dir, 'daemon-internal.sock'),
    portal: path.join(dir, 'daemon-portal.sock'),
    tunnelTls: path.join(dir, 'proxy-tunnel-tls.sock'),
    tunnelHttp: path.join(dir, 'proxy-tunnel-http.sock'),
  };
}

/** Our relay on loopback (hub and two relay ports: TLS, then plain HTTP) with a self-signed hub certificate. */
export async function startTestRelay(secret: string): Promise<{ relay: Relay; hubCert: string; hubKey: string }> {
  const { key, cert } = await selfSignedCert();
  const relay = new Relay({ hub: { host: '127.0.0.1', port: 0 }, tls: { key, cert }, secret, relayPorts: [0, 0], logger: createLogger({ service: 'test-relay', level: 'error' }) });
  await relay.start();
  return { relay, hubCert: cert, hubKey: key };
}

/** The proxy with its tunnel ingress, then the tunnel, both following the daemon; resolves once both are READY. */
export async function startProxyAndTunnel(dir: string, sockets: RemoteSockets, trust: string): Promise<{ proxy: ServiceProcess; tunnel: ServiceProcess }> {
  const health = path.join(dir, 'no-health.sock');
  const proxy = await ServiceProcess.start(
    'proxy',
    {
      PICCOLO_PROXY_LISTEN: '127.0.0.1:0',
      PICCOLO_PROXY_BIND_HOST: '127.0.0.1',
      PICCOLO_PROXY_DAEMON_SOCKET: sockets.internal,
      PICCOLO_PROXY_CERT_DIR: path.join(dir, 'proxy-certs'),
      PICCOLO_PROXY_TUNNEL_TLS_SOCKET: sockets.tunnelTls,
      PICCOLO_PROXY_TUNNEL_HTTP_SOCKET: sockets.tunnelHttp,
      PICCOLO_HEALTH_SOCKET: health,
    },
    TEST_BUNDLE_DIR,
  );
  await proxy.notified('READY=1', 20_000);
  const tunnel = await ServiceProcess.start(
    'tunnel',
    {
      PICCOLO_TUNNEL_LISTEN: '127.0.0.1:0',
      PICCOLO_TUNNEL_DAEMON_SOCKET: sockets.internal,
      PICCOLO_TUNNEL_PROXY_TLS_SOCKET: sockets.tunnelTls,
      PICCOLO_TUNNEL_PROXY_HTTP_SOCKET: sockets.tunnelHttp,
      PICCOLO_HEALTH_SOCKET: health,
      NODE_EXTRA_CA_CERTS: trust,
    },
    TEST_BUNDLE_DIR,
  );
  await tunnel.notified('READY=1', 20_000);
  return { proxy, tunnel };
}
