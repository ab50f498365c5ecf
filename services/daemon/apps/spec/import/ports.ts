// compose `ports:` entries, short ("127.0.0.1:8080:80/udp", "6881-6889:6881-6889") or long
// ({ target, published, protocol, host_ip }), as the container ports they publish. The host side is
// only kept to recognise CasaOS's port_map and loopback-only publications; Piccolo chooses the
// address a listener is published at itself.

export interface PublishedPort {
  container: number;
  protocol: 'tcp' | 'udp';
  /** The host port as written (a number, or absent). */
  published?: number;
  hostIp?: string;
  /** The compose entry, for messages: "services.web.ports[2]". */
  path: string;
}

/** A range publishes a listener per port; beyond this it is a mistake or a game server's 1000 ports. */
export const MAX_RANGE = 20;

/** `skip`: entries already refused (a variable without a value), not read further. */
export function parsePorts(value: unknown, path: string, problems: string[], skip: (path: string) => boolean = () => false): PublishedPort[] {
  if (!Array.isArray(value)) {
    problems.push(`${path}: must be a list`);
    return [];
  }
  return value.flatMap((entry, i) => (skip(`${path}[${i}]`) ? [] : parseEntry(entry, `${path}[${i}]`, problems)));
}

function parseEntry(entry: unknown, path: string, problems: string[]): PublishedPort[] {
  if (typeof entry === 'number') return ports(String(entry), undefined, 'tcp', undefined, path, problems);
  if (typeof entry === 'object' && entry !== null && !Array.isArray(entry)) {
    const long = entry as Record<string, unknown>;
    const protocol = String(long.protocol ?? 'tcp').toLowerCase();
    if (protocol !== 'tcp' && protocol !== 'udp') return fail(`${path}.protocol: must be tcp or udp (got ${protocol})`, problems);
    if (long.target === undefined) return fail(`${path}.target: is required`, problems);
    const published = long.published === undefined || long.published === '' ? undefined : String(long.published);
    return ports(String(long.target), published, protocol, long.host_ip === undefined ? undefined : String(long.host_ip), `${path}.target`, problems);
  }
  if (typeof entry !== 'string') return fail(`${path}: must be a port such as "8080:80"`, problems);
  const [mapping = '', protocolText = 'tcp', ...extra] = entry.trim().split('/');
  const protocol = protocolText.toLowerCase();
  if (extra.length || (protocol !== 'tcp' && protocol !== 'udp')) return fail(`${path}: the protocol must be tcp or udp (got ${protocolText})`, problems);
  // An IPv6 host address is written in brackets: "[::1]:8080:80".
  const ipv6 = /^\[([^\]]+)\]:(.*)$/.exec(mapping);
  const rest = ipv6 ? ipv6[2]! : mapping;
  const parts = rest.split(':');
  if (parts.length > 3 || (ipv6 && parts.length !== 2)) return fail(`${path}: ${entry} is not [host address:][host port:]container port`, problems);
  const container = parts.pop()!;
  const published = parts.pop();
  const hostIp = ipv6 ? ipv6[1] : parts.pop();
  return ports(container, published === '' ? undefined : published, protocol, hostIp, path, problems);
}

function ports(containerText: string, publishedText: string | undefined, protocol: 'tcp' | 'udp', hostIp: string | undefined, path: string, problems: string[]): PublishedPort[] {
  const container = range(containerText, `${path}`, problems);
  if (!container) return [];
  const published = publishedText === undefined ? undefined : range(publishedText, path, problems);
  if (publishedText !== undefined && !published) return [];
  const [first, last] = container;
  if (last - first + 1 > MAX_RANGE) return fail(`${path}: the range ${containerText} is ${last - first + 1} ports; at most ${MAX_RANGE} become listeners`, problems);
  // compose maps "8000-8001:80" (a host range onto one port) to one of the host ports: one listener.
  const result: PublishedPort[] = [];
  for (let port = first; port <= last; port++) {
    const host = published && published[1] - published[0] === last - first ? published[0] + (port - first) : published?.[0];
    result.push({ container: port, protocol, path, ...(host !== undefined && { published: host }), ...(hostIp !== undefined && { hostIp }) });
  }
  return result;
}

function range(text: string, path: string, problems: string[]): [number, number] | undefined {
  const match = /^(\d+)(?:-(\d+))?$/.exec(text.trim());
  const first = Number(match?.[1]);
  const last = Number(match?.[2] ?? match?.[1]);
  if (!match || first < 1 || last > 65535 || last < first) {
    problems.push(`${path}: ${text} is not a port 1-65535 or a range such as 6881-6889`);
    return undefined;
  }
  return [first, last];
}

function fail(problem: string, problems: string[]): [] {
  problems.push(problem);
  return [];
}

/** Loopback-only publications are for the host itself, which on Piccolo runs no one's tools. */
export function isLoopback(hostIp: string | undefined): boolean {
  return hostIp !== undefined && (/^127\./.test(hostIp) || hostIp === '::1' || hostIp === 'localhost');
}

/** Ports that are not HTTP: a listener on them is raw TCP, not an HTTP host behind the login. */
const RAW_TCP_PORTS = new Set([21, 22, 23, 25, 53, 110, 143, 389, 445, 465, 587, 636, 993, 995, 1433, 1521, 1883, 2049, 3306, 3389, 5222, 5269, 5432, 5672, 6379, 6667, 8333, 8883, 9092, 9735, 11211, 25565, 27015, 27017, 50051, 51413]);

export function guessProtocol(port: PublishedPort): 'http' | 'raw' | 'udp' {
  if (port.protocol === 'udp') return 'udp';
  return RAW_TCP_PORTS.has(port.container) ? 'raw' : 'http';
}
