// The PROXY protocol v2 header that starts every tunnel ingress connection: the tunnel's way of
// saying who the end user is. The header is read off the socket (the bytes after it stay for
// whoever reads next) and parsed with proxy-protocol-js; only a PROXY command with an IPv4 or
// IPv6 source names a client, anything else leaves the connection without one, and it is closed.
import type net from 'node:net';
import { IPv4ProxyAddress, IPv6ProxyAddress, V2ProxyProtocol, Command } from 'proxy-protocol-js';
import { peek } from './sockets.js';

const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** Signature, version and command, family, and the 16-bit length of what follows. */
const FIXED_PART = 16;
/** Room for an IPv6 address block and a few TLVs; a tunnel sends no more. */
const MAX_HEADER = FIXED_PART + 36 + 512;

/** The end user's address from the header, with the header consumed; undefined when there is no valid one in time. */
export async function readProxyHeader(socket: net.Socket, timeoutMs: number): Promise<string | undefined> {
  const data = await peek(socket, (bytes) => !startsLikeHeader(bytes) || headerLength(bytes) !== undefined, { maxBytes: MAX_HEADER, timeoutMs });
  const length = data && startsLikeHeader(data) ? headerLength(data) : undefined;
  if (length === undefined || length > MAX_HEADER) return undefined;
  socket.read(length);
  return clientOf(data!.subarray(0, length));
}

function startsLikeHeader(bytes: Buffer): boolean {
  return bytes.subarray(0, SIGNATURE.length).equals(SIGNATURE.subarray(0, Math.min(bytes.length, SIGNATURE.length)));
}

/** The whole header's length, once those bytes have all arrived. */
function headerLength(bytes: Buffer): number | undefined {
  if (bytes.length < FIXED_PART) return undefined;
  const length = FIXED_PART + bytes.readUInt16BE(14);
  return bytes.length >= length ? length : undefined;
}

function clientOf(header: Buffer): string | undefined {
  let parsed: V2ProxyProtocol;
  try {
    parsed = V2ProxyProtocol.parse(header);
  } catch {
    return undefined;
  }
  if (parsed.command !== Command.PROXY) return undefined;
  const { proxyAddress } = parsed;
  if (proxyAddress instanceof IPv4ProxyAddress) return proxyAddress.sourceAddress.address.join('.');
  if (proxyAddress instanceof IPv6ProxyAddress) return ipv6Text(proxyAddress.sourceAddress.address);
  return undefined;
}

/** 16 bytes as the canonical text form (URL parsing compresses zeros), an IPv4-mapped one as IPv4. */
function ipv6Text(bytes: number[]): string {
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12).join('.');
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}
