// `make qemu`: builds the image when its inputs changed, boots it under QEMU, prints the setup
// wizard URL once the health service is ready, and stays in the foreground until Ctrl-C.
//   --console           also print the guest's serial console
//   PICCOLO_PORTAL_PORT / PICCOLO_HEALTH_PORT   host ports (default 8080 / 4040)
//   PICCOLO_QEMU_ACCEL=kvm|tcg, PICCOLO_QEMU_MEMORY_MIB (default 1536)
import { open } from 'node:fs/promises';
import path from 'node:path';
import { REPO_ROOT } from './bundle.js';
import { stageRoot } from './stage.js';
import { findAptMirror } from './mirror.js';
import { buildImage, defaultBuildOptions } from './build.js';
import { bootGuest, chooseAccel, httpStatus, waitFor } from './qemu.js';
import { formatElapsed } from './kiwi.js';

const env = process.env;
const log = (line: string) => console.log(line);
const buildOpts = defaultBuildOptions(REPO_ROOT, (dir) => stageRoot(dir), () => findAptMirror(), env);
const image = await buildImage(buildOpts);
const accel = await chooseAccel(image.file, buildOpts.cacheDir, log);
const guest = await bootGuest({
  image: image.file,
  accel,
  portalPort: Number(env.PICCOLO_PORTAL_PORT || 8080),
  healthPort: Number(env.PICCOLO_HEALTH_PORT || 4040),
  memoryMiB: Number(env.PICCOLO_QEMU_MEMORY_MIB || 1536),
  workDir: path.join(buildOpts.workDir, 'qemu'), // serial.log stays there after the VM stops
});
let stopping = false;
const shutdown = async (code: number) => {
  if (stopping) return;
  stopping = true;
  await guest.stop();
  process.exit(code);
};
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
void guest.exited.then((code) => {
  if (!stopping) console.log(`qemu exited (${code})`);
  void shutdown(code === 0 ? 0 : 1);
});

log(`qemu: booting ${path.relative(process.cwd(), image.file)} (${accel}); serial log ${guest.serialLog}`);
if (process.argv.includes('--console')) void followFile(guest.serialLog, (text) => process.stdout.write(text));
try {
  await waitFor(async () => (await httpStatus(`${guest.healthUrl}/health/ready`))?.status === 200, 15 * 60_000, 'health /health/ready', 1000);
  log(`ready after ${formatElapsed(Date.now() - guest.startedAt)}`);
} catch (error) {
  log(`${error instanceof Error ? error.message : error} (the guest keeps running; see the serial log)`);
}
log(`Piccolo setup wizard: ${guest.portalUrl}   health: ${guest.healthUrl}/health/detail   (Ctrl-C stops the VM)`);

async function followFile(file: string, write: (text: string) => void): Promise<void> {
  const handle = await open(file, 'r');
  const buffer = Buffer.alloc(64 * 1024);
  let position = 0;
  while (!stopping) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead > 0) {
      position += bytesRead;
      write(buffer.subarray(0, bytesRead).toString('utf8'));
    } else await new Promise((r) => setTimeout(r, 300));
  }
  await handle.close();
}
