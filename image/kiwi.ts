// Runs kiwi-ng and turns its console log into short progress lines with elapsed time, so a
// ten-minute build shows where it is instead of waiting silently.
import { spawn } from 'node:child_process';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';

export type Log = (line: string) => void;

// KIWI's console lines look like "[ INFO    ]: 23:33:52 | Installing system ...".
// Lines starting with "-->" are details of the step above; errors and warnings always show.
export function progressLine(raw: string): { level: string; text: string; detail: boolean } | undefined {
  const match = /^\[\s*(\w+)\s*\]:\s*[\d:]+\s*\|\s?(.*)$/.exec(raw);
  if (!match) return undefined;
  const text = match[2].trim();
  return { level: match[1], text, detail: text.startsWith('-->') };
}

export function formatElapsed(ms: number): string {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

// Parted (run by KIWI for msdos tables) already registers the new partitions on the loop device,
// so KIWI's next "partx --add" fails with "error adding partition 1". --update is idempotent.
export async function writePartxWrapper(binDir: string): Promise<string> {
  await mkdir(binDir, { recursive: true });
  const file = path.join(binDir, 'partx');
  await writeFile(
    file,
    [
      '#!/bin/sh',
      '# Written by image/kiwi.ts: KIWI calls "partx --add" after parted already added the partitions.',
      'for arg do shift; [ "$arg" = --add ] && arg=--update; set -- "$@" "$arg"; done',
      'exec /usr/bin/partx "$@"',
      '',
    ].join('\n'),
  );
  await chmod(file, 0o755);
  return binDir;
}

/** The architecture a profile builds for: `*-aarch64` profiles are aarch64, the rest the host's. */
export function profileArch(profile: string): 'aarch64' | undefined {
  return profile.endsWith('-aarch64') ? 'aarch64' : undefined;
}

// KIWI 9.24 calls debootstrap without --arch, so it would bootstrap the host's architecture even
// with --target-arch. This wrapper adds it; debootstrap then runs its second stage inside the
// foreign root, through qemu-user-static's binfmt handler (checked by requireBinfmt).
export async function writeDebootstrapWrapper(binDir: string, debianArch: string): Promise<void> {
  await mkdir(binDir, { recursive: true });
  const file = path.join(binDir, 'debootstrap');
  await writeFile(
    file,
    ['#!/bin/sh', `# Written by image/kiwi.ts: KIWI 9.24 does not pass the target architecture to debootstrap.`, `exec /usr/sbin/debootstrap --arch=${debianArch} "$@"`, ''].join('\n'),
  );
  await chmod(file, 0o755);
}

/** Foreign binaries in the image root run only through a registered, enabled binfmt handler. */
export async function requireBinfmt(arch: string): Promise<void> {
  const entry = `/proc/sys/fs/binfmt_misc/qemu-${arch}`;
  const text = await readFile(entry, 'utf8').catch(() => '');
  if (!/^enabled/m.test(text) || !/^flags:.*F/m.test(text)) {
    throw new Error(
      `${entry} is not an enabled binfmt handler with the F flag: install qemu-user-static and binfmt-support, ` +
        `mount binfmt_misc (mount -t binfmt_misc none /proc/sys/fs/binfmt_misc) and run update-binfmts --enable qemu-${arch}`,
    );
  }
}

export interface KiwiRun {
  args: string[]; // everything after the global options, e.g. ['system', 'prepare', ...]
  profile: string;
  sharedCacheDir: string;
  logFile: string;
  wrapperBinDir: string;
  log: Log;
  label: string;
  targetArch?: string; // KIWI's --target-arch (a foreign architecture, see profileArch)
  timeoutMs?: number;
  verbose?: boolean; // also show the "-->" detail lines
}

export async function runKiwi(run: KiwiRun): Promise<void> {
  const started = Date.now();
  const elapsed = () => formatElapsed(Date.now() - started);
  const argv = [
    '--profile', run.profile, '--shared-cache-dir', run.sharedCacheDir, '--logfile', run.logFile,
    ...(run.targetArch ? ['--target-arch', run.targetArch] : []),
    ...run.args,
  ];
  run.log(`${run.label}: kiwi-ng ${argv.join(' ')}`);
  await rm(run.logFile, { force: true }); // KIWI appends; keep only this run's log
  const child = spawn('kiwi-ng', argv, {
    env: { ...process.env, PATH: `${run.wrapperBinDir}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let step = 'starting';
  const tail: string[] = [];
  const onLine = (raw: string) => {
    tail.push(raw);
    if (tail.length > 30) tail.shift();
    const line = progressLine(raw);
    if (!line) return;
    if (line.level === 'INFO' && line.detail && !run.verbose) return;
    if (line.level === 'INFO' && !line.detail) step = line.text;
    run.log(`  [${elapsed()}] ${line.level === 'INFO' ? '' : `${line.level}: `}${line.text}`);
  };
  createInterface({ input: child.stdout }).on('line', onLine);
  createInterface({ input: child.stderr }).on('line', onLine);
  // Some steps (apt, dracut) print nothing for minutes: say that we are still alive.
  const heartbeat = setInterval(() => run.log(`  [${elapsed()}] ... still: ${step}`), 60_000);
  const timer = setTimeout(() => child.kill('SIGTERM'), run.timeoutMs ?? 60 * 60_000);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    if (code !== 0) {
      throw new Error(`${run.label} failed (exit ${code}) after ${elapsed()}; full log: ${run.logFile}\n${tail.join('\n')}`);
    }
    run.log(`${run.label}: done in ${elapsed()}`);
  } finally {
    clearInterval(heartbeat);
    clearTimeout(timer);
  }
}
