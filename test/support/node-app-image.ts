// A container image holding Node and test/fixtures/apps/node-test-app.ts (bundled with ws and
// node-forge), for apps that need WebSockets or their own TLS: busybox has neither. Built from
// this machine's own node binary and the libraries it links, imported into Podman.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const execFileAsync = promisify(execFile);
const APP_SOURCE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'apps', 'node-test-app.ts');

/** Builds localhost/<prefix>-nodeapp:<tag>; its command serves :80 (HTTP + WebSocket /ws) and :443 (TLS). */
export async function buildNodeAppImage(prefix: string, tag: string): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'piccolo-nodeapp-'));
  try {
    const node = process.execPath;
    await mkdir(path.join(root, 'bin'), { recursive: true });
    await mkdir(path.join(root, 'app'));
    await mkdir(path.join(root, 'tmp'));
    await copyFile(node, path.join(root, 'bin', 'node'));
    const { stdout } = await execFileAsync('ldd', [node]);
    for (const lib of stdout.matchAll(/(\/\S+\.so[.\d]*)/g)) {
      const target = path.join(root, lib[1]!);
      await mkdir(path.dirname(target), { recursive: true });
      await copyFile(lib[1]!, target);
    }
    await build({ entryPoints: [APP_SOURCE], outfile: path.join(root, 'app', 'app.cjs'), bundle: true, platform: 'node', format: 'cjs', logLevel: 'warning' });
    const tar = `${root}.tar`;
    await execFileAsync('tar', ['-C', root, '-cf', tar, '.']);
    const image = `localhost/${prefix}-nodeapp:${tag}`;
    await execFileAsync('podman', ['import', '-q', '--change', 'CMD ["/bin/node","/app/app.cjs"]', tar, image]);
    await rm(tar, { force: true });
    return image;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
