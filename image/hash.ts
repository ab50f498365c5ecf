// Content hash of a folder tree: paths, modes, symlink targets and file bytes. Used as cache keys,
// so a rebuild happens exactly when something KIWI would see has changed.
import { createHash, type Hash } from 'node:crypto';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';

export async function hashTree(root: string, { exclude = [] as string[], into = createHash('sha256') } = {}): Promise<Hash> {
  async function walk(rel: string): Promise<void> {
    const names = (await readdir(path.join(root, rel))).sort();
    for (const name of names) {
      const relPath = rel ? `${rel}/${name}` : name;
      if (exclude.includes(relPath)) continue;
      const full = path.join(root, relPath);
      const info = await lstat(full);
      into.update(`${relPath}\0${info.mode.toString(8)}\0`);
      if (info.isSymbolicLink()) into.update(`link:${await readlink(full)}\0`);
      else if (info.isDirectory()) await walk(relPath);
      else if (info.isFile()) into.update(await readFile(full)).update('\0');
    }
  }
  await walk('');
  return into;
}

export async function hashTrees(parts: Array<{ label: string; dir: string; exclude?: string[] }>, extra = ''): Promise<string> {
  const hash = createHash('sha256').update(extra);
  for (const part of parts) {
    hash.update(`\n== ${part.label}\n`);
    await hashTree(part.dir, { exclude: part.exclude ?? [], into: hash });
  }
  return hash.digest('hex');
}
