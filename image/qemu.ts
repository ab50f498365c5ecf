// Boots a built Piccolo OS image in QEMU: a throwaway qcow2 overlay (the built image stays
// pristine), a software TPM (swtpm), the serial console in a log file, and user networking with
// the portal (guest 80) and health (guest 4040) ports forwarded to 127.0.0.1.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir, release } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export type Accel = 'kvm' | 'tcg';
export type Log = (line: string) => void;

export interface BootOptions {
  image: string;
  accel: Accel;
  portalPort: number;
  healthPort: number;
  memoryMiB?: number;
  cpus?: number;
  tpm?: boolean;
  network?: boolean;
  workDir?: string; // default: a fresh temp dir, removed by stop(); a given one keeps serial.log
}

export interface Guest {
  serialLog: string;
  portalUrl: string;
  healthUrl: string;
  startedAt: number; // Date.now() when QEMU was spawned
  exited: Promise<number | null>;
  /** Ctrl+Alt+Del on the guest's keyboard: systemd reboots cleanly, and QEMU (and the TPM) stay up. */
  reboot(): Promise<void>;
  stop(): Promise<void>;
}

export async function bootGuest(opts: BootOptions): Promise<Guest> {
  const ownWorkDir = !opts.workDir;
  const workDir = opts.workDir ?? (await mkdtemp(path.join(tmpdir(), 'piccolo-qemu-')));
  await mkdir(workDir, { recursive: true });
  const overlay = path.join(workDir, 'disk.qcow2');
  const serialLog = path.join(workDir, 'serial.log');
  const qmpSocket = path.join(workDir, 'qmp.sock');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', path.resolve(opts.image), overlay]);
  await writeFile(serialLog, '');

  const children: ChildProcess[] = [];
  const killAll = () => children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL'));
  // Last resort when the caller dies without stop(): never leave QEMU or swtpm behind.
  process.once('exit', killAll);

  const args = [
    '-name', 'piccolo-os',
    // Only the devices the image uses: no default VGA, floppy, CD-ROM, parallel port or SMBus.
    // Their drivers (bochs-drm with its framebuffer console, floppy, sr_mod, parport, piix4_smbus)
    // loaded during the boot and competed with the Piccolo units for the emulated CPU (trial boots
    // under TCG: ready 41.7 -> 36.7 s, 61 -> 55 s of QEMU CPU). The PS/2 keyboard stays (reboot()).
    '-nodefaults',
    '-vga', 'none',
    '-machine', 'pc,smbus=off',
    '-m', String(opts.memoryMiB ?? 1536),
    '-smp', String(opts.cpus ?? 2),
    ...(opts.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg']),
    '-drive', `file=${overlay},if=virtio,format=qcow2`,
    '-display', 'none',
    '-monitor', 'none',
    '-qmp', `unix:${qmpSocket},server=on,wait=off`,
    '-serial', `file:${serialLog}`,
  ];
  if (opts.network !== false) {
    const fwd = `hostfwd=tcp:127.0.0.1:${opts.portalPort}-:80,hostfwd=tcp:127.0.0.1:${opts.healthPort}-:4040`;
    args.push('-netdev', `user,id=net0,${fwd}`, '-device', 'virtio-net-pci,netdev=net0');
  } else {
    args.push('-nic', 'none');
  }
  try {
    if (opts.tpm !== false) {
      const tpmDir = path.join(workDir, 'tpm');
      const socket = path.join(workDir, 'swtpm.sock');
      await mkdir(tpmDir, { recursive: true });
      // --terminate: swtpm exits by itself once QEMU closes the control channel.
      const swtpm = spawn('swtpm', ['socket', '--tpm2', '--tpmstate', `dir=${tpmDir}`, '--ctrl', `type=unixio,path=${socket}`, '--terminate'], { stdio: 'ignore' });
      children.push(swtpm);
      await waitFor(() => existsSync(socket), 10_000, 'swtpm control socket');
      args.push('-chardev', `socket,id=chrtpm,path=${socket}`, '-tpmdev', 'emulator,id=tpm0,chardev=chrtpm', '-device', 'tpm-tis,tpmdev=tpm0');
    }
  } catch (error) {
    killAll();
    throw error;
  }

  const startedAt = Date.now();
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(qemu);
  let stderr = '';
  qemu.stderr?.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => qemu.on('close', (code) => resolve(code)));
  // A QEMU that fails on its arguments exits at once: report that instead of a later timeout.
  const early = await Promise.race([exited.then(() => true), delay(1500).then(() => false)]);
  if (early) {
    killAll();
    throw new Error(`qemu-system-x86_64 exited at start: ${stderr.trim()}`);
  }

  const stop = async () => {
    for (const child of children.reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      child.kill('SIGTERM');
      const gone = await Promise.race([new Promise((r) => child.once('close', () => r(true))), delay(5000).then(() => false)]);
      if (!gone) child.kill('SIGKILL');
    }
    process.removeListener('exit', killAll);
    if (ownWorkDir) await rm(workDir, { recursive: true, force: true });
    else await Promise.all([overlay, path.join(workDir, 'tpm'), path.join(workDir, 'swtpm.sock')].map((p) => rm(p, { recursive: true, force: true })));
  };
  return {
    serialLog,
    portalUrl: `http://127.0.0.1:${opts.portalPort}/`,
    healthUrl: `http://127.0.0.1:${opts.healthPort}`,
    startedAt,
    exited,
    reboot: () => qmp(qmpSocket, { execute: 'send-key', arguments: { keys: ['ctrl', 'alt', 'delete'].map((data) => ({ type: 'qcode', data })) } }),
    stop,
  };
}

/** One QMP command (after the capabilities handshake); resolves on its "return", rejects on its "error". */
function qmp(socketPath: string, command: object): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let buffered = '';
    let sent = 0;
    const fail = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.on('error', fail);
    socket.on('data', (chunk) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const message = JSON.parse(buffered.slice(0, newline)) as { QMP?: unknown; return?: unknown; error?: { desc: string } };
        buffered = buffered.slice(newline + 1);
        if (message.error) return fail(new Error(`QMP: ${message.error.desc}`));
        if (message.QMP !== undefined) socket.write(JSON.stringify({ execute: 'qmp_capabilities' }) + '\n');
        else if (message.return !== undefined && sent++ === 0) socket.write(JSON.stringify(command) + '\n');
        else if (message.return !== undefined) {
          socket.end();
          return resolve();
        }
      }
    });
  });
}

// KVM exists here but a Linux guest hangs under it (nested virtualization without nested paging),
// so /dev/kvm proves nothing: boot the image briefly under KVM and see whether systemd starts.
// The verdict is cached per host kernel and QEMU version. PICCOLO_QEMU_ACCEL=kvm|tcg forces it.
export async function chooseAccel(image: string, cacheDir: string, log: Log, env = process.env): Promise<Accel> {
  const forced = env.PICCOLO_QEMU_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return forced;
  if (forced) throw new Error(`PICCOLO_QEMU_ACCEL must be kvm or tcg, not "${forced}"`);
  if (!existsSync('/dev/kvm')) return 'tcg';
  const { stdout: qemuVersion } = await run('qemu-system-x86_64', ['--version']);
  const key = `${release()} ${qemuVersion.split('\n')[0]}`;
  const cacheFile = path.join(cacheDir, 'qemu-accel.json');
  const cached = JSON.parse(await readFile(cacheFile, 'utf8').catch(() => '{}')) as { key?: string; accel?: Accel };
  if (cached.key === key && cached.accel) return cached.accel;

  log('qemu: trying KVM with a short trial boot (verdict is cached)');
  const guest = await bootGuest({ image, accel: 'kvm', portalPort: 0, healthPort: 0, tpm: false, network: false, memoryMiB: 1024 }).catch(() => undefined);
  let accel: Accel = 'tcg';
  if (guest) {
    try {
      // Under working KVM systemd greets within seconds; under TCG it takes ~15 s, so 40 s is generous.
      const booted = await waitFor(async () => /Welcome to|login:/.test(await readFile(guest.serialLog, 'utf8')), 40_000, 'KVM trial').then(() => true, () => false);
      accel = booted ? 'kvm' : 'tcg';
    } finally {
      await guest.stop();
    }
  }
  log(`qemu: accelerator ${accel}${accel === 'tcg' ? ' (KVM guest did not boot)' : ''}`);
  await mkdir(cacheDir, { recursive: true });
  await writeFile(cacheFile, JSON.stringify({ key, accel, decidedAt: new Date().toISOString() }) + '\n');
  return accel;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string, intervalMs = 500): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await delay(intervalMs);
  }
}

export async function httpStatus(url: string, timeoutMs = 3000): Promise<{ status: number; type: string; body: string } | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
  } catch {
    return undefined; // guest not listening yet: slirp accepts, then resets
  }
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
