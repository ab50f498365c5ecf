// Opens the local side of a relay stream. In production that is one of the proxy's two tunnel
// ingress unix sockets, and the first bytes are a PROXY protocol v2 header naming the end user,
// so the proxy's middleware, logs and login throttle see the real client, not the tunnel.
// Tests inject their own Dialer.
import { isIPv4, isIPv6 } from 'node:net';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { Command, IPv4Address, IPv4ProxyAddress, IPv6Address, IPv6ProxyAddress, TransportProtocol, V2ProxyProtocol } from 'proxy-protocol-js';
import { splitClientAddress } from './protocol.js';
import type { Ingress } from './router.js';

export interface DialTarget {
  ingress: Ingress;
  hostname: string;
  /** connect's client_ip: "ip:port" or "[v6]:port". */
  clientIp: string;
  /** The relay port the user reached. */
  connPort: number;
}

/** Resolves with a connected stream, or rejects; the caller owns (and destroys) what it gets. */
export type Dialer = (target: DialTarget) => Promise<Duplex>;

export interface IngressSockets {
  tls: string;
  http: string;
}

export function proxyIngressDialer(sockets: IngressSockets, connectTimeoutMs = 5000): Dialer {
  return (target) => {
    // Built before dialing: a stream without a usable client address is never handed to the proxy.
    const header = proxyHeader(target.clientIp, target.connPort);
    return new Promise((resolve, reject) => {
      const socket = net.connect({ path: sockets[target.ingress] });
      const timer = setTimeout(() => socket.destroy(new Error(`proxy ${target.ingress} ingress did not accept within ${connectTimeoutMs} ms`)), connectTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', reject);
        socket.write(header);
        resolve(socket);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  };
}

/** A PROXY v2 PROXY-command header: source = the end user, destination = the relay port (address unknown: unspecified). */
export function proxyHeader(clientIp: string, connPort: number): Buffer {
  const client = splitClientAddress(clientIp);
  if (!client) throw new Error(`connect has no usable client_ip (${JSON.stringify(clientIp)})`);
  const mappedV4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(client.address)?.[1];
  const address = mappedV4 ?? client.address;
  let proxyAddress: IPv4ProxyAddress | IPv6ProxyAddress;
  if (isIPv4(address)) {
    proxyAddress = new IPv4ProxyAddress(IPv4Address.createFrom(address.split('.').map(Number)), client.port, IPv4Address.createFrom([0, 0, 0, 0]), connPort);
  } else if (isIPv6(address)) {
    proxyAddress = new IPv6ProxyAddress(IPv6Address.createFrom(ipv6Bytes(address)), client.port, IPv6Address.createWithEmptyAddress(), connPort);
  } else {
    throw new Error(`connect has no usable client_ip (${JSON.stringify(clientIp)})`);
  }
  return Buffer.from(new V2ProxyProtocol(Command.PROXY, TransportProtocol.STREAM, proxyAddress).build());
}

/** The 16 bytes of a textual IPv6 address (isIPv6 already said it is one). */
function ipv6Bytes(text: string): number[] {
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (part: string | undefined) => (part ? part.split(':') : []).flatMap((group) => (group.includes('.') ? ipv4Groups(group) : [group]));
  const left = groups(head);
  const right = groups(tail);
  const all = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  return all.flatMap((group) => {
    const value = parseInt(group, 16);
    return [value >> 8, value & 0xff];
  });
}

function ipv4Groups(dotted: string): string[] {
  const [a, b, c, d] = dotted.split('.').map(Number) as [number, number, number, number];
  return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
}
