// A busybox image whose programs are shell scripts, for standing in for a real app's image in a
// test: a database that answers on its port, a healthcheck program the spec names (healthcheck.sh,
// redis-cli), an entrypoint that takes the spec's command. Imported into Podman as a local image.
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'httpd', 'wget', 'echo', 'cat', 'mkdir', 'sleep', 'env', 'nc'];

export interface ScriptImage {
  /** Executable files by absolute path in the image, e.g. { '/entry.sh': '...', '/bin/redis-cli': '...' }. */
  scripts: Record<string, string>;
  /** The image's ENTRYPOINT; the spec's command becomes its arguments. */
  entrypoint: string[];
  /** Its CMD, when the spec gives no command. */
  cmd?: string[];
}

/** Imports the image as `reference` (localhost/name:tag) into the Podman the CLI talks to. */
export async function buildScriptImage(reference: string, image: ScriptImage): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'piccolo-script-image-'));
  try {
    await mkdir(path.join(root, 'bin'), { recursive: true });
    await mkdir(path.join(root, 'tmp'));
    await copyFile(BUSYBOX, path.join(root, 'bin', 'busybox'));
    for (const applet of APPLETS) await symlink('busybox', path.join(root, 'bin', applet));
    for (const [file, text] of Object.entries(image.scripts)) {
      const target = path.join(root, file);
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, text.startsWith('#!') ? text : `#!/bin/sh\n${text}`);
      await chmod(target, 0o755);
    }
    const tar = path.join(root, '..', `${path.basename(root)}.tar`);
    await execFileAsync('tar', ['-C', root, '-cf', tar, '.']);
    const changes = [`ENTRYPOINT ${JSON.stringify(image.entrypoint)}`, ...(image.cmd ? [`CMD ${JSON.stringify(image.cmd)}`] : []), 'ENV PATH=/bin'];
    await execFileAsync('podman', ['import', '-q', ...changes.flatMap((change) => ['--change', change]), tar, reference]);
    await rm(tar, { force: true });
    return reference;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
