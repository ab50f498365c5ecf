// Both images carry the same bundles and overlays byte for byte: each profile's staged tree (what
// KIWI receives from this repository: overlays/ + the service bundles, then kiwi/<profile>/ on top,
// image/stage.ts) is hashed file by file, with the bundles built afresh for each profile.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

// Dynamic import: stage.ts's CLI entry uses top-level await.
const stage = () => import('../../image/stage.js');
const PROFILES = ['microos-x86_64', 'microos-rpi', 'debian-qemu', 'debian-qemu-aarch64'];

/** relative path -> "file <mode> <sha256>" | "link <target>" | "dir <mode>", for every entry. */
async function treeHashes(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  async function walk(rel: string): Promise<void> {
    for (const name of (await readdir(path.join(root, rel))).sort()) {
      const relPath = rel ? `${rel}/${name}` : name;
      const full = path.join(root, relPath);
      const info = await lstat(full);
      const mode = (info.mode & 0o7777).toString(8);
      if (info.isSymbolicLink()) out.set(relPath, `link ${await readlink(full)}`);
      else if (info.isDirectory()) {
        out.set(relPath, `dir ${mode}`);
        await walk(relPath);
      } else out.set(relPath, `file ${mode} ${createHash('sha256').update(await readFile(full)).digest('hex')}`);
    }
  }
  await walk('');
  return out;
}

/** Paths whose entries differ (or exist on one side only), among `paths`. */
function differences(a: Map<string, string>, b: Map<string, string>, paths: Iterable<string>): string[] {
  return [...paths].filter((p) => a.get(p) !== b.get(p)).map((p) => `${p}: ${a.get(p) ?? 'missing'} vs ${b.get(p) ?? 'missing'}`);
}

let tmp: string;
const trees = new Map<string, Map<string, string>>();
let shared: string[] = []; // every path the repository ships to all profiles
let profileOnly = new Map<string, string[]>();

test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'piccolo-staged-'));
  const { stageProfileRoot, OVERLAY_DIR, KIWI_DIR, IMAGE_BUNDLE_DIR } = await stage();
  for (const profile of PROFILES) {
    // Each profile bundles on its own, as separate builds would.
    const root = await stageProfileRoot(path.join(tmp, profile, 'root'), profile, { bundleDir: path.join(tmp, profile, 'bundles') });
    trees.set(profile, await treeHashes(root));
  }
  const overlayPaths = [...(await treeHashes(OVERLAY_DIR)).keys()];
  const anyTree = trees.get(PROFILES[0])!;
  const bundlePrefix = IMAGE_BUNDLE_DIR.slice(1);
  shared = [...new Set([...overlayPaths, ...[...anyTree.keys()].filter((p) => p === bundlePrefix || p.startsWith(`${bundlePrefix}/`))])].sort();
  profileOnly = new Map();
  for (const profile of PROFILES) {
    const dir = path.join(KIWI_DIR, profile);
    const files = await treeHashes(dir).then((m) => [...m.keys()], () => [] as string[]);
    profileOnly.set(profile, files);
  }
});

test.after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('the shared part holds the four service bundles and every overlay file', async () => {
  const { SERVICES } = await import('../../image/bundle.js');
  for (const service of SERVICES) assert.ok(shared.includes(`usr/lib/piccolo/${service}/index.mjs`), `bundle ${service} not staged`);
  assert.ok(shared.includes('usr/lib/systemd/system/piccolo-daemon.service'));
  assert.ok(shared.filter((p) => trees.get(PROFILES[0])!.get(p)?.startsWith('file')).length >= 10, `only ${shared.length} shared paths`);
});

test('MicroOS x86_64, MicroOS Pi and Debian carry the same bundles and overlays, byte for byte', () => {
  const [first, ...others] = PROFILES;
  for (const profile of others) {
    assert.equal(differences(trees.get(first)!, trees.get(profile)!, shared), [], `${first} vs ${profile}`);
  }
  // Every shared path is present in each tree (differences() would also flag a missing one).
  for (const profile of PROFILES) for (const p of shared) assert.ok(trees.get(profile)!.has(p), `${profile} lacks ${p}`);
});

test("a profile's own folder adds files but replaces nothing shared, and nothing else differs", () => {
  for (const profile of PROFILES) {
    const own = profileOnly.get(profile)!;
    const clash = own.filter((p) => shared.includes(p) && !trees.get(profile)!.get(p)!.startsWith('dir'));
    assert.equal(clash, [], `kiwi/${profile}/ replaces shared files`);
    const tree = trees.get(profile)!;
    const extra = [...tree.keys()].filter((p) => !shared.includes(p) && !own.includes(p));
    assert.equal(extra, [], `${profile}: staged paths from neither overlays/, the bundles nor kiwi/${profile}/`);
  }
  // The Debian QEMU profile does have its test aids: the check above is not vacuous.
  assert.ok(profileOnly.get('debian-qemu')!.some((p) => p.endsWith('piccolo-boot-report.service')));
});

test('the comparison sees a single changed byte in a bundle', async () => {
  const { stageRoot } = await stage();
  const root = path.join(tmp, 'tampered');
  await stageRoot(root, { rebuild: false, bundleDir: path.join(tmp, PROFILES[0], 'bundles') });
  const file = path.join(root, 'usr/lib/piccolo/health/index.mjs');
  const bytes = await readFile(file);
  bytes[bytes.length - 2] ^= 0x20;
  await writeFile(file, bytes);
  const diff = differences(trees.get(PROFILES[0])!, await treeHashes(root), shared);
  assert.is(diff.length, 1, diff.join('\n'));
  assert.match(diff[0], /^usr\/lib\/piccolo\/health\/index\.mjs: file /);
});

test.run();
