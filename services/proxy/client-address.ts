// The client address of a connection, in one place: the peer of a LAN socket, or, on the tunnel
// ingress (a unix socket, whose peer is the tunnel), the end user's address from the PROXY header.
// Middleware, logs and the X-Forwarded-* headers all ask here, so they always agree.
import type net from 'node:net';
import type tls from 'node:tls';

export class ClientAddresses {
  private readonly given = new WeakMap<net.Socket, string>();

  /** The tunnel ingress names the client of a socket it accepted. */
  set(socket: net.Socket, address: string): void {
    this.given.set(socket, unmapped(address));
  }

  /** A TLS socket the proxy terminated keeps the client of the connection it wraps. */
  carryOver(secure: tls.TLSSocket): void {
    // _parent is the wrapped socket; Node sets it for every server-side TLSSocket.
    const address = this.given.get((secure as tls.TLSSocket & { _parent?: net.Socket })._parent!);
    if (address !== undefined) this.given.set(secure, address);
  }

  of(socket: net.Socket): string {
    return this.given.get(socket) ?? unmapped(socket.remoteAddress ?? '');
  }
}

/** IPv4 clients on a dual-stack socket ("::ffff:192.0.2.1") as access lists see them. */
export function unmapped(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
