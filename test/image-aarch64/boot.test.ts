// Opt-in (make test-image-aarch64): builds the debian-qemu-aarch64 image on this x86_64 host
// (KIWI + debootstrap's second stage through qemu-user-static's binfmt handler), boots it under
// TCG on `-M virt` with AAVMF (the firmware starts the image's kernel, handed over by -kernel:
// the image has no EFI partition, see image/qemu-aarch64.ts), and checks what a user sees first:
// /health/ready 200 and the portal's page through the forwarded ports. Slow: the emulated build
// takes tens of minutes the first time, a boot several minutes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { findAptMirror } from '../../image/mirror.js';
import { buildImage, defaultBuildOptions, stageByCommand } from '../../image/build.js';
import { freePort, httpStatus, waitFor } from '../../image/qemu.js';
import { bootAarch64, type Aarch64Guest } from '../../image/qemu-aarch64.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const READY_TIMEOUT_MS = 30 * 60_000;

test('the aarch64 image boots under AAVMF to a ready Piccolo serving the portal', async () => {
  const build = defaultBuildOptions(REPO_ROOT, stageByCommand(REPO_ROOT), () => findAptMirror());
  const profile = 'debian-qemu-aarch64';
  const image = await buildImage({ ...build, profile, workDir: path.join(REPO_ROOT, 'build', `image-${profile}`) });
  let guest: Aarch64Guest | undefined;
  try {
    guest = await bootAarch64({ image: image.file, workDir: path.join(REPO_ROOT, 'build', `qemu-${profile}`), portalPort: await freePort(), healthPort: await freePort() });
    const g = guest;
    console.log(`booting ${image.file} (TCG, -M virt, AAVMF); serial log ${g.serialLog}`);
    await waitFor(async () => (await httpStatus(`${g.healthUrl}/health/ready`))?.status === 200, READY_TIMEOUT_MS, '/health/ready 200', 2000).catch(async (error) => {
      throw new Error(`${error.message}\n--- serial tail ---\n${(await readFile(g.serialLog, 'utf8')).slice(-3000)}`);
    });
    const bootToReadyS = (Date.now() - g.startedAt) / 1000;
    const serial = await readFile(g.serialLog, 'utf8');
    // The firmware, not QEMU's own loader, started the kernel: its EFI stub says so.
    assert.match(serial, /EFI stub: Booting Linux Kernel/);
    assert.match(serial, /Machine model: linux,dummy-virt|Booting Linux on physical CPU/);
    let portal: Awaited<ReturnType<typeof httpStatus>>;
    await waitFor(async () => (portal = await httpStatus(g.portalUrl, 10_000))?.status === 200, 5 * 60_000, 'GET / on the portal port 200', 2000);
    assert.match(portal?.type ?? '', /text\/html/);
    console.log(`FIGURE aarch64 qemu start -> /health/ready 200: ${bootToReadyS.toFixed(1)} s (TCG)`);
  } finally {
    await guest?.stop();
  }
});

test.run();
