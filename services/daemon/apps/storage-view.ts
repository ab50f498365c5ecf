// What an app stores and shares, for its page and the portal's Shared folders card: each volume
// with its mounts, its limit and what it uses now; the shared media folders it mounts; and, for
// the device, which app has which media folder.
//
// A size-limited volume is its own file system (volumes/size-limited.ts), so statfs says exactly
// how much of it is used. An unlimited one is a folder of the app's volume: its files are added
// up, at most WALK_LIMIT of them (then usedBytes is a lower bound and `partial` says so).
// Temporary volumes live in the containers' memory (tmpfs): only their limit is known here.
import { lstat, opendir, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { DeepReadonly } from '../store/store.js';
import type { AppSpec } from './spec/types.js';

export interface VolumeUse {
  name: string;
  kind: 'persistent' | 'temporary';
  mounts: { service: string; path: string; readOnly: boolean }[];
  /** The size_limit, when the spec sets one (enforced). */
  limitBytes?: number;
  /** Stored now: measured while the app's volume is open. */
  usedBytes?: number;
  /** Counted from the first WALK_LIMIT files only: more is stored. */
  partial?: boolean;
}

export interface MediaMountView {
  folder: string;
  service: string;
  path: string;
  subpath?: string;
  readOnly: boolean;
}

export interface AppStorageView {
  volumes: VolumeUse[];
  media: MediaMountView[];
}

export interface SharedFolderView {
  name: string;
  /** The apps that mount it, each mount once. */
  apps: ({ app: string } & Omit<MediaMountView, 'folder'>)[];
}

const WALK_LIMIT = 20_000;

/** The app's media mounts, from its spec. */
export function mediaMounts(spec: DeepReadonly<AppSpec>): MediaMountView[] {
  return spec.services.flatMap((service) =>
    service.mounts.flatMap((mount) =>
      mount.media === undefined ? [] : [{ folder: mount.media, service: service.name, path: mount.container, ...(mount.subpath && mount.subpath !== '.' && { subpath: mount.subpath }), readOnly: mount.read_only }],
    ),
  );
}

/** Every shared folder the device has made or an app mounts, with the apps that mount it. */
export function sharedFolders(made: readonly string[], apps: readonly { name: string; spec: DeepReadonly<AppSpec> }[]): SharedFolderView[] {
  const folders = new Map<string, SharedFolderView>(made.map((name) => [name, { name, apps: [] }]));
  for (const app of apps) {
    for (const { folder, ...mount } of mediaMounts(app.spec)) {
      const entry = folders.get(folder) ?? { name: folder, apps: [] };
      entry.apps.push({ app: app.name, ...mount });
      folders.set(folder, entry);
    }
  }
  return [...folders.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** The app's volumes and media mounts; `volumeDir` is its open volume (undefined while it is not mounted). */
export async function appStorage(spec: DeepReadonly<AppSpec>, volumeDir: string | undefined): Promise<AppStorageView> {
  const volumes: VolumeUse[] = [];
  for (const kind of ['persistent', 'temporary'] as const) {
    for (const [name, volume] of Object.entries(spec.storage[kind])) {
      const mounts = spec.services.flatMap((service) => service.mounts.filter((m) => m.volume === name).map((m) => ({ service: service.name, path: m.container, readOnly: m.read_only })));
      const use: VolumeUse = { name, kind, mounts, ...(volume.size_limit_bytes !== undefined && { limitBytes: volume.size_limit_bytes }) };
      if (kind === 'persistent' && volumeDir) Object.assign(use, await measure(path.join(volumeDir, name), volume.size_limit_bytes !== undefined));
      volumes.push(use);
    }
  }
  return { volumes, media: mediaMounts(spec) };
}

async function measure(dir: string, ownFileSystem: boolean): Promise<Pick<VolumeUse, 'usedBytes' | 'partial'>> {
  try {
    if (ownFileSystem) {
      const fs = await statfs(dir);
      return { usedBytes: (fs.blocks - fs.bfree) * fs.bsize };
    }
    return await folderSize(dir);
  } catch {
    return {}; // not made yet, or closed meanwhile: nothing to say
  }
}

async function folderSize(root: string): Promise<{ usedBytes: number; partial?: boolean }> {
  let used = 0;
  let seen = 0;
  const pending = [root];
  while (pending.length) {
    const dir = pending.pop()!;
    for await (const entry of await opendir(dir)) {
      if (++seen > WALK_LIMIT) return { usedBytes: used, partial: true };
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) pending.push(file);
      else used += await lstat(file).then((s) => s.blocks * 512, () => 0);
    }
  }
  return { usedBytes: used };
}
