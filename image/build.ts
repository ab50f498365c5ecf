// Builds the Piccolo OS disk image with KIWI, in two cached halves:
//   1. `kiwi-ng system prepare` (packages: slow) into a cache outside the clone, keyed by a hash
//      of the description WITHOUT the root overlay: it only reruns when config.kiwi/config.sh change;
//   2. a copy of that prepared root + the freshly staged overlay -> `kiwi-ng system create`.
// The finished image is reused as is when the hash of all inputs (description + overlay) is unchanged.
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import path from 'node:path';
import { hashTrees } from './hash.js';
import { formatElapsed, profileArch, requireBinfmt, runKiwi, writeDebootstrapWrapper, writePartxWrapper, type Log } from './kiwi.js';

const DEBIAN_ARCH = { aarch64: 'arm64' } as const;

const run = promisify(execFile);

export const DEFAULT_PROFILE = 'debian-qemu';
export const defaultCacheDir = (env = process.env) => env.PICCOLO_CACHE_DIR || '/var/cache/piccolo-image';

export interface BuildOptions {
  profile: string;
  kiwiDir: string; // the repository's kiwi/ folder
  workDir: string; // e.g. build/image: assembled description, output image
  cacheDir: string; // prepared roots and KIWI's package cache, survives `rm -rf build`
  stage: (rootDir: string) => Promise<unknown>; // writes the root overlay (overlays/ + bundles)
  aptMirror: () => Promise<string>; // value for @APT_MIRROR@
  log: Log;
  verbose?: boolean;
}

export interface BuiltImage {
  file: string;
  reused: boolean;
  inputsHash: string;
  seconds: number;
}

export async function buildImage(opts: BuildOptions): Promise<BuiltImage> {
  if (process.getuid?.() !== 0) throw new Error('KIWI needs root (loop devices, chroot): run as root');
  const started = Date.now();
  const step = (text: string) => opts.log(`[${formatElapsed(Date.now() - started)}] ${text}`);
  const description = path.join(opts.workDir, 'description');
  const outDir = path.join(opts.workDir, 'out');
  const stampFile = path.join(outDir, 'inputs.sha256');

  step(`assembling description for profile ${opts.profile} in ${description}`);
  await assembleDescription(opts, description);
  step('staging root overlay (overlays/ + bundles)');
  await opts.stage(path.join(description, 'root'));

  const descriptionHash = await hashTrees([{ label: 'description', dir: description, exclude: ['root'] }], opts.profile);
  const inputsHash = await hashTrees([{ label: 'description', dir: description }], opts.profile);
  const existing = await findImage(outDir);
  if (existing && (await readFile(stampFile, 'utf8').catch(() => '')).trim() === inputsHash) {
    step(`inputs unchanged (${inputsHash.slice(0, 12)}): reusing ${existing}`);
    return { file: existing, reused: true, inputsHash, seconds: (Date.now() - started) / 1000 };
  }

  const binDir = await writePartxWrapper(path.join(opts.workDir, 'bin'));
  const targetArch = profileArch(opts.profile);
  if (targetArch) {
    await requireBinfmt(targetArch);
    await writeDebootstrapWrapper(binDir, DEBIAN_ARCH[targetArch]);
  }
  const kiwi = { profile: opts.profile, sharedCacheDir: path.join(opts.cacheDir, 'kiwi-shared'), wrapperBinDir: binDir, log: opts.log, verbose: opts.verbose };
  const preparedRoot = await ensurePreparedRoot(opts, description, descriptionHash, kiwi, step);

  const workRoot = path.join(opts.workDir, 'root-work');
  step('copying prepared root');
  await rm(workRoot, { recursive: true, force: true });
  await run('cp', ['-a', '--reflink=auto', preparedRoot, workRoot]);
  step('adding root overlay');
  // Same rsync options as KIWI's own overlay import, plus --keep-dirlinks so an overlay /lib
  // folder never replaces a merged-/usr symlink.
  await run('rsync', ['-rptDHXA', '--links', '--keep-dirlinks', `${path.join(description, 'root')}/`, `${workRoot}/`]);
  // The overlay brings sysusers.d entries; create the users now rather than relying on
  // systemd-sysusers.service's first-boot condition.
  if (existsSync('/usr/bin/systemd-sysusers')) await run('systemd-sysusers', ['--root', workRoot]);

  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  await runKiwi({
    ...kiwi,
    label: 'kiwi create',
    // Only here: KIWI 9.24 hands --target-arch to apt-get as "_target_arch%..." during prepare
    // (apt rejects it); prepare needs none, the debootstrap wrapper made the root foreign already.
    targetArch,
    logFile: path.join(opts.workDir, 'kiwi-create.log'),
    args: ['system', 'create', '--root', workRoot, '--target-dir', outDir],
  });
  const file = await findImage(outDir);
  if (!file) throw new Error(`kiwi create finished but no disk image in ${outDir}`);
  // KIWI keeps the raw disk it converted from: 3 GB (sparse) nobody uses once the qcow2 exists.
  if (file.endsWith('.qcow2')) await rm(file.replace(/\.qcow2$/, '.raw'), { force: true });
  await writeFile(stampFile, `${inputsHash}\n`);
  await rm(workRoot, { recursive: true, force: true });
  step(`image ready: ${file}`);
  return { file, reused: false, inputsHash, seconds: (Date.now() - started) / 1000 };
}

async function assembleDescription(opts: BuildOptions, description: string): Promise<void> {
  await rm(description, { recursive: true, force: true });
  await cp(opts.kiwiDir, description, { recursive: true, verbatimSymlinks: true });
  const configFile = path.join(description, 'config.kiwi');
  let config = await readFile(configFile, 'utf8');
  // Only the Debian profile reads the apt mirror; MicroOS builds may run where there is no apt.
  if (opts.profile.startsWith('debian')) config = config.replaceAll('@APT_MIRROR@', await opts.aptMirror());
  await writeFile(configFile, config);
}

async function ensurePreparedRoot(
  opts: BuildOptions,
  description: string,
  descriptionHash: string,
  kiwi: Omit<Parameters<typeof runKiwi>[0], 'args' | 'label' | 'logFile'>,
  step: Log,
): Promise<string> {
  const preparedDir = path.join(opts.cacheDir, 'prepared');
  const key = `${opts.profile}-${descriptionHash.slice(0, 16)}`;
  const slot = path.join(preparedDir, key);
  const root = path.join(slot, 'root');
  if (existsSync(path.join(slot, 'complete'))) {
    step(`prepared root cached: ${slot}`);
    return root;
  }
  step(`no prepared root for ${key}: running kiwi prepare (installs packages, the slow part)`);
  await rm(slot, { recursive: true, force: true });
  await mkdir(slot, { recursive: true });
  // Prepare without the overlay, so the cached root is valid for any overlay.
  const bareDescription = path.join(slot, 'description');
  await cp(description, bareDescription, { recursive: true, verbatimSymlinks: true, filter: (src) => src !== path.join(description, 'root') });
  await runKiwi({
    ...kiwi,
    label: 'kiwi prepare',
    logFile: path.join(slot, 'kiwi-prepare.log'),
    args: ['system', 'prepare', '--description', bareDescription, '--root', root],
  });
  await writeFile(path.join(slot, 'complete'), `${new Date().toISOString()}\n`);
  // Each prepared root is ~1 GB: keep only the current one per profile.
  for (const name of await readdir(preparedDir)) {
    if (name !== key && name.startsWith(`${opts.profile}-`)) await rm(path.join(preparedDir, name), { recursive: true, force: true });
  }
  return root;
}

async function findImage(outDir: string): Promise<string | undefined> {
  const names = await readdir(outDir).catch(() => [] as string[]);
  const image = names.find((n) => n.endsWith('.qcow2')) ?? names.find((n) => n.endsWith('.raw'));
  return image ? path.join(outDir, image) : undefined;
}

export function defaultBuildOptions(repoRoot: string, stage: BuildOptions['stage'], aptMirror: BuildOptions['aptMirror'], env = process.env): BuildOptions {
  return {
    profile: env.PICCOLO_IMAGE_PROFILE || DEFAULT_PROFILE,
    kiwiDir: path.join(repoRoot, 'kiwi'),
    workDir: path.join(repoRoot, 'build', 'image'),
    cacheDir: defaultCacheDir(env),
    stage,
    aptMirror,
    log: (line) => console.log(line),
  };
}

// Runs `tsx image/stage.ts DIR` in a child process: the same staging as stageRoot(), usable from
// code loaded as CommonJS (uvu -r tsx), which cannot import bundle.ts's top-level await.
export function stageByCommand(repoRoot: string): BuildOptions['stage'] {
  const tsx = path.join(repoRoot, 'node_modules', '.bin', 'tsx');
  return (rootDir) => run(tsx, [path.join(repoRoot, 'image', 'stage.ts'), rootDir], { cwd: repoRoot, timeout: 5 * 60_000 });
}

async function main(args: string[]): Promise<void> {
  const { REPO_ROOT } = await import('./bundle.js');
  const { stageRoot } = await import('./stage.js');
  const { findAptMirror } = await import('./mirror.js');
  const opts = defaultBuildOptions(REPO_ROOT, (dir) => stageRoot(dir), () => findAptMirror());
  const profileAt = args.indexOf('--profile');
  if (profileAt >= 0 && args[profileAt + 1]) opts.profile = args[profileAt + 1];
  opts.verbose = args.includes('--verbose');
  const image = await buildImage(opts);
  console.log(`${image.reused ? 'reused' : 'built'} ${path.relative(process.cwd(), image.file)} in ${image.seconds.toFixed(0)} s`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
