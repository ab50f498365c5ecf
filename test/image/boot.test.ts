// Boot test: builds the debian-qemu image (reused when its inputs are unchanged), boots it
// headless under QEMU with a software TPM, and checks what a user would see first. Needs root
// (KIWI), qemu-system-x86, swtpm; the first build takes minutes, a boot ~1-2 min under TCG.
// The guest reports its unit states on the serial port (piccolo-boot-report.service, a test aid
// in the debian-qemu profile only), because the test has no login into the guest.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { findAptMirror } from '../../image/mirror.js';
import { buildImage, defaultBuildOptions, stageByCommand } from '../../image/build.js';
import { bootGuest, chooseAccel, freePort, httpStatus, waitFor, type Guest } from '../../image/qemu.js';

// piccolo-firewall: a oneshot that stays active once `nft -f` has loaded its table, sandbox and all.
const UNITS = ['piccolo-firewall', 'piccolo-health', 'piccolo-daemon', 'piccolo-proxy', 'piccolo-tunnel'];
const READY_TIMEOUT_MS = 10 * 60_000; // TCG boot is ~60 s to a login prompt; leave room for slow hosts
const REPORT_TIMEOUT_MS = 5 * 60_000;
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Report {
  states: Map<string, string>;
  times: Map<string, { start: number; ready: number }>;
  /** When the initrd's and the root's systemd started (CLOCK_MONOTONIC microseconds). */
  boot?: { initrd: number; userspace: number };
  logs: string[];
  done: boolean;
}

function parseReport(serial: string): Report {
  const report: Report = { states: new Map(), times: new Map(), logs: [], done: false };
  for (const line of serial.split(/\r?\n/)) {
    const match = /PICCOLO-REPORT (\w+)(?: (\S+) ?(.*))?/.exec(line);
    if (!match) continue;
    const [, kind, unit = '', rest = ''] = match;
    if (kind === 'done') report.done = true;
    else if (kind === 'unit') report.states.set(unit, rest.trim());
    else if (kind === 'log') report.logs.push(`${unit}: ${rest}`);
    else if (kind === 'boot') {
      const [initrd, userspace] = [/initrd=(\d+)/, /userspace=(\d+)/].map((field) => Number(field.exec(line)?.[1] ?? NaN));
      report.boot = { initrd, userspace };
    }
    else if (kind === 'times') {
      const start = Number(/start=(\d+)/.exec(rest)?.[1] ?? NaN);
      const ready = Number(/ready=(\d+)/.exec(rest)?.[1] ?? NaN);
      report.times.set(unit, { start, ready });
    }
  }
  return report;
}

test('the image boots to a ready Piccolo with the setup wizard served', async () => {
  const build = defaultBuildOptions(REPO_ROOT, stageByCommand(REPO_ROOT), () => findAptMirror());
  const image = await buildImage({ ...build, profile: 'debian-qemu' });
  const accel = await chooseAccel(image.file, build.cacheDir, console.log);
  let guest: Guest | undefined;
  try {
    // A fixed work dir keeps serial.log after the run, for diagnosis.
    const workDir = path.join(build.workDir, 'qemu-test');
    guest = await bootGuest({ image: image.file, accel, portalPort: await freePort(), healthPort: await freePort(), workDir });
    const g = guest;
    console.log(`booting ${image.file} under ${accel}; serial log ${g.serialLog}`);

    await waitFor(async () => (await httpStatus(`${g.healthUrl}/health/ready`))?.status === 200, READY_TIMEOUT_MS, '/health/ready 200', 1000).catch(async (error) => {
      throw new Error(`${error.message}\n--- serial tail ---\n${(await readFile(g.serialLog, 'utf8')).slice(-3000)}`);
    });
    const bootToReadyS = (Date.now() - g.startedAt) / 1000;

    let report = parseReport('');
    await waitFor(async () => (report = parseReport(await readFile(g.serialLog, 'utf8'))).done, REPORT_TIMEOUT_MS, 'PICCOLO-REPORT done on the serial console', 1000);
    for (const unit of UNITS) {
      assert.is(report.states.get(unit), 'active', `${unit} should be active\n${report.logs.join('\n')}`);
    }

    const ready = await httpStatus(`${g.healthUrl}/health/ready`);
    assert.is(ready?.status, 200, '/health/ready through the forwarded port');

    // The proxy may be ready before the daemon's first route table reaches it (it answers 503 "starting" then).
    let wizard: Awaited<ReturnType<typeof httpStatus>>;
    await waitFor(async () => (wizard = await httpStatus(g.portalUrl, 10_000))?.status === 200, 60_000, 'GET / on the portal port 200', 1000).catch((error) => {
      throw new Error(`${error.message}; last answer ${wizard?.status}: ${wizard?.body?.slice(0, 300)}`);
    });
    assert.match(wizard?.type ?? '', /text\/html/, 'wizard page is HTML');
    // The portal's shell, which draws the wizard in the browser, and the script it names.
    const script = /<script type="module" src="(\/assets\/main\.[A-Z0-9]+\.js)">/.exec(wizard?.body ?? '')?.[1];
    assert.ok(script, `the portal shell, served through the proxy: ${wizard?.body?.slice(0, 300)}`);
    const code = await httpStatus(new URL(script!, g.portalUrl).href, 10_000);
    assert.is(code?.status, 200, 'the portal script through the proxy');
    assert.match(code?.type ?? '', /javascript/, 'the portal script is JavaScript');
    assert.match(await readFile(g.serialLog, 'utf8'), /Piccolo OS setup claim code: [A-Z2-9]{5}-[A-Z2-9]{5}/, 'claim code on the console');

    const health = report.times.get('piccolo-health');
    const healthStartMs = health ? (health.ready - health.start) / 1000 : NaN;
    console.log(`FIGURE qemu start -> /health/ready 200: ${bootToReadyS.toFixed(1)} s (${accel})`);
    console.log(`FIGURE piccolo-health start -> READY (in guest): ${Number.isFinite(healthStartMs) ? `${healthStartMs.toFixed(0)} ms` : 'not reported'}`);
    // Where the boot before health goes: kernel, initrd, then the root's units up to health's start.
    const seconds = (us: number | undefined) => ((us ?? NaN) / 1e6).toFixed(1);
    console.log(`FIGURE boot phases (in guest): kernel ${seconds(report.boot?.initrd)} s, initrd ${seconds(report.boot && report.boot.userspace - report.boot.initrd)} s, root to health's start ${seconds(report.boot && health && health.start - report.boot.userspace)} s`);
  } finally {
    await guest?.stop();
  }
});

test.run();
