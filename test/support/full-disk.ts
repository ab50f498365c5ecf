// A small real file system to fill for the full-disk tests: a tmpfs (root only), filled with a file
// of zeros until the kernel refuses, so every ENOSPC the code under test sees is a real one.
import { execFileSync } from 'node:child_process';
import { open } from 'node:fs/promises';

/** Mounts a tmpfs of `size` (e.g. "2m") on the existing folder dir, mode 0700. */
export function mountTmpfs(dir: string, size: string): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
}

/** Appends zeros to `file` in 4 KiB writes (tmpfs pages) until the file system refuses: afterwards not one more page fits. */
export async function fillFileSystem(file: string): Promise<void> {
  const handle = await open(file, 'a');
  const chunk = Buffer.alloc(4096);
  try {
    for (;;) await handle.write(chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await handle.close();
  }
}
