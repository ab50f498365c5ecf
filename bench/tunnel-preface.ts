// The end user's side for tools that cannot name their target (iperf3): our relay routes by SNI or
// Host, as it does for browsers, so this forwarder sends an HTTP head naming the target first,
// then pipes. It runs on the client core beside iperf3, away from the tunnel's core.
// Argument: JSON {listen, relayPort, preface}. Prints "ready".
import net from 'node:net';

const { listen, relayPort, preface } = JSON.parse(process.argv[2]!) as { listen: number; relayPort: number; preface: string };
const head = Buffer.from(preface, 'latin1');
net
  .createServer({ noDelay: true }, (user) => {
    const relay = net.connect({ port: relayPort, host: '127.0.0.1', noDelay: true });
    relay.write(head);
    user.pipe(relay).pipe(user);
    user.on('error', () => relay.destroy());
    relay.on('error', () => user.destroy());
    user.on('close', () => relay.destroy());
    relay.on('close', () => user.destroy());
  })
  .listen(listen, '127.0.0.1', () => console.log('ready'));
