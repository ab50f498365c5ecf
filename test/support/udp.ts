// UDP for the tests: an echo server that names who sent each datagram, clients bound to a chosen
// loopback address (127.0.0.2 and 127.0.0.3 are distinct clients), and a free UDP port.
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';

/** A UDP port free right now (bound then released), for a udp route's public port. */
export async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

export interface UdpEcho {
  port: number;
  /** "address:port" of every datagram's sender, in order. */
  senders: string[];
  close(): Promise<void>;
}

/** Answers each datagram with "echo:<payload> from <sender address:port>" (the same shape as the test app's). */
export async function udpEcho(): Promise<UdpEcho> {
  const socket = dgram.createSocket('udp4');
  const senders: string[] = [];
  socket.on('message', (message, from) => {
    senders.push(`${from.address}:${from.port}`);
    socket.send(`echo:${message} from ${from.address}:${from.port}`, from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { port: socket.address().port, senders, close: () => new Promise((resolve) => socket.close(() => resolve())) };
}

export interface UdpClient {
  /** The client's own source port. */
  port: number;
  /** Sends one datagram and resolves with the first answer, or undefined after timeoutMs. */
  ask(payload: string, timeoutMs?: number): Promise<string | undefined>;
  /** Everything this client received, in order. */
  received: string[];
  close(): void;
}

/** A client socket bound to `from` (any 127.0.0.0/8 address works on Linux loopback, or ::1) talking to port on loopback. */
export async function udpClient(from: string, port: number): Promise<UdpClient> {
  const v6 = isIPv6(from);
  const to = v6 ? '::1' : '127.0.0.1';
  const socket = dgram.createSocket(v6 ? 'udp6' : 'udp4');
  const received: string[] = [];
  const waiting: ((text: string) => void)[] = [];
  socket.on('message', (message) => {
    received.push(message.toString());
    waiting.shift()?.(message.toString());
  });
  // A port with nothing behind it answers with ICMP unreachable, which Node reports here.
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.bind(0, from, resolve));
  return {
    port: socket.address().port,
    received,
    ask: (payload, timeoutMs = 1500) =>
      new Promise((resolve) => {
        let done = false;
        const answer = (text: string | undefined) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          const at = waiting.indexOf(answer);
          if (at >= 0) waiting.splice(at, 1);
          resolve(text);
        };
        const timer = setTimeout(() => answer(undefined), timeoutMs);
        waiting.push(answer);
        socket.send(payload, port, to);
      }),
    close: () => socket.close(),
  };
}

/** The sender's "address:port" out of an echo's answer. */
export function echoSender(answer: string | undefined): string | undefined {
  return answer === undefined ? undefined : / from (\S+)$/.exec(answer)?.[1];
}
