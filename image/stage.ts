// Stages the image's root overlay: overlays/ plus the four bundles under /usr/lib/piccolo/<service>/.
// KIWI takes this folder as its root overlay, and `systemd-analyze verify --root` checks units in it,
// so both see the same paths as the booted image.
import { cp, mkdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { BUNDLE_DIR, REPO_ROOT, SERVICES, bundleServices } from './bundle.js';

export const OVERLAY_DIR = path.join(REPO_ROOT, 'overlays');
export const IMAGE_BUNDLE_DIR = '/usr/lib/piccolo';

export async function stageRoot(rootDir: string, { rebuild = true } = {}): Promise<string> {
  if (rebuild) await bundleServices();
  await rm(rootDir, { recursive: true, force: true });
  await mkdir(rootDir, { recursive: true });
  await cp(OVERLAY_DIR, rootDir, { recursive: true, verbatimSymlinks: true });
  for (const service of SERVICES) {
    await cp(path.join(BUNDLE_DIR, service), path.join(rootDir, IMAGE_BUNDLE_DIR, service), { recursive: true });
  }
  return rootDir;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = path.resolve(process.argv[2] ?? path.join(REPO_ROOT, 'build', 'root'));
  await stageRoot(dir);
  console.log(`staged ${dir}`);
}
