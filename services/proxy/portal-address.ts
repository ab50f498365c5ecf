// Where the portal is for one client. The auth gate's sign-in redirect and the problem pages'
// "open the portal" link must reach the portal as this client reaches the device: the scheme and
// host it used, and the port of the portal listener (an app's own port serves only that app), so
// `make run`'s portal on :8000 keeps its port. On the portal port, or through the tunnel, a request
// names an app by host name: the portal is then the portal name nearest to it, on the same port.
import type http from 'node:http';

export interface PortalAddressOptions {
  /** The portal listeners' ports, in configuration order (filled in as they bind). */
  portalPorts: ReadonlySet<number>;
  /** The portal's own names in the current route table ("piccolo.local", the remote name). */
  portalHostnames: () => readonly string[];
  /** PICCOLO_PROXY_LOGIN_URL: a fixed sign-in URL where "{host}" is the host name asked for; '' derives it. */
  loginUrl?: string;
}

/** The Host header as a client may send it: a DNS name or an address, and an optional port. Nothing else ends up in a URL we build. */
const HOST_HEADER = /^(?:\[[0-9a-f:.]+\]|[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?\.?)(?::\d{1,5})?$/i;

export type SignIn = { url: string } | { badHost: string };

export class PortalAddress {
  constructor(private readonly options: PortalAddressOptions) {}

  /** The portal's origin ("http://127.0.0.1:8000") for this request, or undefined when its Host header is unusable. */
  origin(req: http.IncomingMessage, secure: boolean): string | undefined {
    const host = usableHost(req.headers.host);
    if (host === undefined) return undefined;
    const scheme = secure ? 'https' : 'http';
    const { name, port } = splitHost(host);
    const byName = req.socket.localPort === undefined || this.options.portalPorts.has(req.socket.localPort);
    if (byName) return `${scheme}://${authority(this.nearestPortalName(name) ?? addressOf(req) ?? this.options.portalHostnames()[0] ?? name, port)}`;
    const standard = secure ? 443 : 80;
    const ports = [...this.options.portalPorts];
    const portalPort = ports.includes(standard) ? standard : ports[0];
    return `${scheme}://${authority(name, portalPort === undefined || portalPort === standard ? undefined : String(portalPort))}`;
  }

  /**
   * The sign-in page, with `next` the URL this request asked for. `next` is always on the host the
   * browser asked for: an absolute-form request target naming another origin is dropped, so the
   * gate can never be made to send anyone elsewhere after sign-in.
   */
  signIn(req: http.IncomingMessage, secure: boolean): SignIn {
    const host = usableHost(req.headers.host);
    if (host === undefined) return { badHost: req.headers.host === undefined ? 'host: the request has no Host header' : 'host: must be a host name or address with an optional port' };
    const login = new URL(this.options.loginUrl ? this.options.loginUrl.replace('{host}', splitHost(host).name) : `${this.origin(req, secure)!}/`);
    const next = requestedUrl(`${secure ? 'https' : 'http'}://${host}`, req.url ?? '/');
    if (next !== undefined) login.searchParams.set('next', next);
    return { url: login.toString() };
  }

  /**
   * The portal name sharing the most trailing labels with an app's name ("web-blog.apps.example.com"
   * → "piccolo.example.com"); undefined when none shares any (a single label, an unknown name).
   */
  private nearestPortalName(name: string): string | undefined {
    if (isAddress(name)) return name;
    const labels = name.toLowerCase().replace(/\.$/, '').split('.');
    let best: string | undefined;
    let bestShared = 0;
    for (const candidate of this.options.portalHostnames()) {
      if (candidate === name) return name;
      const theirs = candidate.split('.');
      let shared = 0;
      while (shared < labels.length && shared < theirs.length && labels[labels.length - 1 - shared] === theirs[theirs.length - 1 - shared]) shared++;
      if (shared > bestShared) [best, bestShared] = [candidate, shared];
    }
    return best;
  }
}

/** The device address this TCP connection reached: it works for this client whatever name it used. Undefined on the tunnel's unix sockets. */
function addressOf(req: http.IncomingMessage): string | undefined {
  const address = req.socket.localAddress;
  if (!address) return undefined;
  const v4 = address.replace(/^::ffff:(?=\d+\.)/, '');
  return v4.includes(':') ? `[${v4}]` : v4;
}

function usableHost(header: string | undefined): string | undefined {
  if (header === undefined || !HOST_HEADER.test(header)) return undefined;
  const { port } = splitHost(header);
  return port === undefined || Number(port) <= 65535 ? header : undefined;
}

function splitHost(host: string): { name: string; port: string | undefined } {
  const at = host.lastIndexOf(':');
  if (at === -1 || host.endsWith(']')) return { name: host, port: undefined };
  return { name: host.slice(0, at), port: host.slice(at + 1) };
}

function authority(name: string, port: string | undefined): string {
  return port === undefined ? name : `${name}:${port}`;
}

function isAddress(name: string): boolean {
  return name.startsWith('[') || /^\d+\.\d+\.\d+\.\d+$/.test(name);
}

/** The URL a request asked for on this origin; undefined for an absolute-form target on another origin. */
function requestedUrl(origin: string, target: string): string | undefined {
  if (target.startsWith('/')) return origin + target;
  try {
    const absolute = new URL(target);
    return absolute.origin === new URL(origin).origin ? absolute.href : undefined;
  } catch {
    return undefined;
  }
}
