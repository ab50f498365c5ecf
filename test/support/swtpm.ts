// A real software TPM (swtpm) for integration tests, on free TCP ports, with its state in a temp
// folder. Speaks to tpm2-tools through the "swtpm" TCTI.
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface SoftTpm {
  /** For Tpm's tcti option, e.g. "swtpm:host=127.0.0.1,port=43121". */
  tcti: string;
  /** Extends PCR 7 (sha256) as a changed Secure Boot state would: policies bound to it stop matching. */
  extendPcr7(): Promise<void>;
  stop(): Promise<void>;
}

export async function startSwtpm(): Promise<SoftTpm> {
  const dir = await mkdtemp(path.join(tmpdir(), 'piccolo-swtpm-'));
  const port = await freePortPair();
  const child = spawn(
    'swtpm',
    ['socket', '--tpm2', '--tpmstate', `dir=${dir}`, '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`, '--flags', 'not-need-init,startup-clear'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const tcti = `swtpm:host=127.0.0.1,port=${port}`;

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await waitForPort(port, 5000, () => stderr);
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    tcti,
    stop,
    async extendPcr7() {
      const digest = Date.now().toString(16).padStart(64, '0');
      await execFileAsync('tpm2_pcrextend', [`7:sha256=${digest}`], { env: { ...process.env, TPM2TOOLS_TCTI: tcti } });
    },
  };
}

/** A port P with P+1 also free (swtpm's control channel). Another process may still race us. */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await listenOnce(0);
    if (port < 65535 && (await listenOnce(port + 1).then(() => true, () => false))) return port;
  }
  throw new Error('no free pair of TCP ports for swtpm');
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address() as net.AddressInfo;
      server.close(() => resolve(bound));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number, stderr: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`swtpm did not listen on ${port}: ${stderr()}`);
}
