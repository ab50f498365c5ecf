// The device-side targets of the tunnel bench, in their own pinned process so that their work
// never lands on the tunnels' core or in the bench's event loop:
// - blaster: writes without end to whoever connects (a stalled reader's stream fills up behind it);
// - echo: echoes every byte, the end-to-end check for idle streams (T5) and reconnects (S4).
// Prints its ports as one JSON line; answers {count: true} on IPC with its open connections.
import net from 'node:net';

const CHUNK = Buffer.alloc(64 * 1024, 0x61);
const echoSockets = new Set<net.Socket>();
const blasterSockets = new Set<net.Socket>();

const blaster = net.createServer((socket) => {
  blasterSockets.add(socket);
  socket.on('error', () => socket.destroy());
  socket.on('close', () => blasterSockets.delete(socket));
  const write = () => {
    while (socket.writable && socket.write(CHUNK));
  };
  socket.on('drain', write);
  socket.resume(); // read and drop what the client says
  write();
});

const echo = () =>
  net.createServer((socket) => {
    echoSockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => echoSockets.delete(socket));
    socket.pipe(socket);
  });

const listen = (server: net.Server) => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', 4096, () => resolve((server.address() as net.AddressInfo).port)));
// One echo port per tunnel: T5's 10,000 closed streams leave as many TIME_WAIT entries towards the
// port they used, and the next tunnel's 10,000 must not compete with them for source ports.
const echoCount = Number(process.argv[2] ?? 1);
const ports = { blaster: await listen(blaster), echo: await Promise.all(Array.from({ length: echoCount }, () => listen(echo()))) };
process.on('message', (message: { count?: boolean }) => {
  if (message.count) process.send!({ echo: echoSockets.size, blaster: blasterSockets.size });
});
process.on('disconnect', () => process.exit(0));
console.log(JSON.stringify(ports));
