// A listener's fixed public port (public_port): the device serves the listener there instead of
// on a port it picks from the public range. DNS is the reason: a network's devices are told a DNS
// server's address, never a port, so a DNS app (Pi-hole, AdGuard Home) must answer on 53. Ports of
// the public range may be fixed too (a game server whose clients are set up with its port). No
// other port: the portal, SSH and the host-bind range are the device's own, and the firewall lets
// in only these (overlays/etc/nftables.d/piccolo.nft).
import type { ListenerInput } from './types.js';
import { guestPortKey } from './udp-listener.js';

/** Where the device picks listeners' public ports (ports.ts PUBLIC_PORTS), and where they may be fixed. */
export const PUBLIC_PORT_RANGE = { first: 35000, last: 45000 } as const;

/** Well-known ports outside the range that a listener may ask for, with what they are for. */
export const WELL_KNOWN_PUBLIC_PORTS: ReadonlyMap<number, string> = new Map([[53, 'DNS']]);

export function isAllowedPublicPort(port: number): boolean {
  return WELL_KNOWN_PUBLIC_PORTS.has(port) || (port >= PUBLIC_PORT_RANGE.first && port <= PUBLIC_PORT_RANGE.last);
}

/**
 * Each listener's public_port: allowed, and used once per transport (53/udp and 53/tcp are the
 * two listeners a DNS server has, as their guest ports are).
 */
export function publicPortProblems(listeners: readonly Pick<ListenerInput, 'public_port' | 'protocol'>[]): string[] {
  const problems: string[] = [];
  const owners = new Map<string, number>();
  const allowed = [...WELL_KNOWN_PUBLIC_PORTS].map(([port, what]) => `${port} (${what})`).join(', ');
  listeners.forEach((listener, i) => {
    const port = listener.public_port;
    if (port === undefined) return;
    if (!isAllowedPublicPort(port)) {
      problems.push(`listeners[${i}].public_port: the device serves apps on ${allowed} or ${PUBLIC_PORT_RANGE.first}-${PUBLIC_PORT_RANGE.last}, not on ${port}`);
      return;
    }
    const key = guestPortKey({ guest_port: port, protocol: listener.protocol });
    const owner = owners.get(key);
    if (owner !== undefined) problems.push(`listeners[${i}].public_port: ${key} is already used by listeners[${owner}]`);
    else owners.set(key, i);
  });
  return problems;
}
