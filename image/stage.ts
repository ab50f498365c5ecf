// Stages the image's root overlay: overlays/ plus the four bundles under /usr/lib/piccolo/<service>/.
// KIWI takes this folder as its root overlay, and `systemd-analyze verify --root` checks units in it,
// so both see the same paths as the booted image.
import { cp, mkdir, realpath, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { BUNDLE_DIR, REPO_ROOT, SERVICES, bundleServices } from './bundle.js';

export const OVERLAY_DIR = path.join(REPO_ROOT, 'overlays');
export const IMAGE_BUNDLE_DIR = '/usr/lib/piccolo';

export const KIWI_DIR = path.join(REPO_ROOT, 'kiwi');

export interface StageOptions {
  rebuild?: boolean; // bundle the services first (default); false reuses bundleDir as it is
  bundleDir?: string; // default BUNDLE_DIR
}

export async function stageRoot(rootDir: string, { rebuild = true, bundleDir = BUNDLE_DIR }: StageOptions = {}): Promise<string> {
  if (rebuild) await bundleServices({ outDir: bundleDir });
  await rm(rootDir, { recursive: true, force: true });
  await mkdir(rootDir, { recursive: true });
  await cp(OVERLAY_DIR, rootDir, { recursive: true, verbatimSymlinks: true });
  for (const service of SERVICES) {
    await cp(path.join(bundleDir, service), path.join(rootDir, IMAGE_BUNDLE_DIR, service), { recursive: true });
  }
  return rootDir;
}

/**
 * What one profile's image receives from this repository: the shared root overlay, then the
 * profile's own folder (kiwi/<profile>/) on top, in the order KIWI applies them. Lets tests compare
 * profiles without building them.
 */
export async function stageProfileRoot(rootDir: string, profile: string, options: StageOptions = {}): Promise<string> {
  await stageRoot(rootDir, options);
  const profileDir = path.join(KIWI_DIR, profile);
  // realpath: a profile folder may be a symlink to another profile's (debian-qemu-aarch64), which
  // KIWI's rsync of "<profile>/" follows too.
  if (existsSync(profileDir)) await cp(await realpath(profileDir), rootDir, { recursive: true, verbatimSymlinks: true, force: true });
  return rootDir;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = path.resolve(process.argv[2] ?? path.join(REPO_ROOT, 'build', 'root'));
  await stageRoot(dir);
  console.log(`staged ${dir}`);
}
