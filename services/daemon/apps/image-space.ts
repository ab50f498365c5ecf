// Room for an image before it is pulled: the registry's manifest says how big its layers are
// (compressed), the engine says where it keeps images (podman info: graphRoot, and the folder it
// copies blobs into first, imageCopyTmpDir), statfs says what is free there. Not enough → an
// ImageSpaceError (507) naming needed and free, before anything is pulled or installed.
//
// The estimate: a pull first copies each compressed blob into the copy folder, then unpacks it
// into the engine's storage, where layers take about UNPACK_FACTOR times their compressed size.
// A layer the engine already holds is counted too (the manifest names compressed digests, the
// engine its unpacked ones): the check errs on the side of refusing.
import { stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../common/logger.js';
import { ImageSpaceError } from './errors.js';

/** Unpacked layers take about this many times their compressed size (gzip on typical images: 2-3). */
export const UNPACK_FACTOR = 2.5;

const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
];

export interface ImageReference {
  /** host[:port] to speak the distribution API to (Docker Hub's is registry-1.docker.io). */
  registry: string;
  repository: string;
  /** A tag, or a digest (sha256:...). */
  reference: string;
}

/** docker.io/library/nginx:1.27, nginx, 127.0.0.1:5000/a/b@sha256:... → where its manifest is. */
export function parseImageReference(ref: string): ImageReference {
  let rest = ref;
  let reference = 'latest';
  const at = rest.indexOf('@');
  if (at >= 0) {
    reference = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  // As the engines decide: a first part with a dot or a port, or localhost, is a registry.
  const hasRegistry = first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost');
  let registry = hasRegistry ? first : 'docker.io';
  let repository = hasRegistry ? rest.slice(slash + 1) : rest;
  const colon = repository.lastIndexOf(':');
  if (colon >= 0) {
    if (at < 0) reference = repository.slice(colon + 1);
    repository = repository.slice(0, colon);
  }
  if (registry === 'docker.io' || registry === 'index.docker.io') {
    registry = 'registry-1.docker.io';
    if (!repository.includes('/')) repository = `library/${repository}`;
  }
  return { registry, repository, reference };
}

export interface ManifestSize {
  /** The layers and the config blob, compressed, as the registry serves them. */
  compressedBytes: number;
  layers: number;
}

/** One [[registry]] entry of the engine's registries.conf: names under `prefix` are pulled from `location`. */
export interface RegistryRule {
  prefix: string;
  location: string;
  /** Spoken to over plain HTTP. */
  insecure: boolean;
}

/**
 * Where the engine really pulls a reference from, by its registries.conf (the longest matching
 * prefix, as containers-registries.conf(5) says): `docker.io/library/x:1` with prefix docker.io
 * at 127.0.0.1:5000 is 127.0.0.1:5000/library/x:1, spoken to as that rule says.
 */
export function rewriteReference(ref: string, rules: readonly RegistryRule[]): { ref: string; insecure: boolean } {
  const { registry, repository, reference } = parseImageReference(ref);
  const written = registry === 'registry-1.docker.io' ? 'docker.io' : registry;
  const name = `${written}/${repository}`;
  const rule = [...rules].sort((a, b) => b.prefix.length - a.prefix.length).find((r) => name === r.prefix || name.startsWith(`${r.prefix}/`) || (r.prefix.startsWith('*.') && written.endsWith(r.prefix.slice(1))));
  if (!rule) return { ref, insecure: false };
  if (rule.prefix.startsWith('*.') || rule.location === rule.prefix) return { ref, insecure: rule.insecure };
  const tail = reference.includes(':') ? `@${reference}` : `:${reference}`;
  return { ref: `${rule.location}${name.slice(rule.prefix.length)}${tail}`, insecure: rule.insecure };
}

export interface RegistryClientOptions {
  /** Registries spoken to over plain HTTP (the engine's insecure ones). */
  insecure?: (registry: string) => boolean;
  /** The platform's architecture in OCI words (amd64, arm64): a multi-platform index picks it. */
  architecture?: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** The image's compressed size from its registry manifest (anonymous token auth where the registry asks for it). */
export async function manifestSize(ref: string, options: RegistryClientOptions = {}): Promise<ManifestSize> {
  const { registry, repository, reference } = parseImageReference(ref);
  const scheme = options.insecure?.(registry) ? 'http' : 'https';
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 15_000;
  let token: string | undefined;
  const get = async (url: string, accept: string): Promise<Response> => {
    const request = () => doFetch(url, { headers: { accept, ...(token && { authorization: `Bearer ${token}` }) }, signal: AbortSignal.timeout(timeoutMs) });
    let res = await request();
    const challenge = res.status === 401 ? res.headers.get('www-authenticate') : null;
    if (challenge && /^bearer /i.test(challenge) && !token) {
      token = await anonymousToken(challenge, doFetch, timeoutMs);
      res = await request();
    }
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    return res;
  };
  const manifestUrl = (ref: string) => `${scheme}://${registry}/v2/${repository}/manifests/${ref}`;
  let manifest = (await (await get(manifestUrl(reference), MANIFEST_TYPES.join(', '))).json()) as Manifest;
  if (manifest.manifests) {
    const architecture = options.architecture ?? ociArchitecture(process.arch);
    const chosen = manifest.manifests.find((m) => m.platform?.os === 'linux' && m.platform.architecture === architecture) ?? manifest.manifests[0];
    if (!chosen) throw new Error(`${ref}: the registry's index lists no image`);
    manifest = (await (await get(manifestUrl(chosen.digest), MANIFEST_TYPES.slice(2).join(', '))).json()) as Manifest;
  }
  const layers = manifest.layers ?? [];
  const compressedBytes = layers.reduce((sum, layer) => sum + (layer.size ?? 0), 0) + (manifest.config?.size ?? 0);
  return { compressedBytes, layers: layers.length };
}

interface Manifest {
  manifests?: { digest: string; platform?: { os?: string; architecture?: string } }[];
  layers?: { size?: number }[];
  config?: { size?: number };
}

/** Bearer realm="...",service="...",scope="..." → an anonymous pull token (Docker Hub, ghcr.io...). */
async function anonymousToken(challenge: string, doFetch: typeof fetch, timeoutMs: number): Promise<string> {
  const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]));
  if (!params.realm) throw new Error('the registry asks for a token without saying where to get it');
  const url = new URL(params.realm);
  if (params.service) url.searchParams.set('service', params.service);
  if (params.scope) url.searchParams.set('scope', params.scope);
  const res = await doFetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`token from ${url.host}: HTTP ${res.status}`);
  const body = (await res.json()) as { token?: string; access_token?: string };
  const token = body.token ?? body.access_token;
  if (!token) throw new Error(`token from ${url.host}: none in the answer`);
  return token;
}

function ociArchitecture(arch: string): string {
  return arch === 'x64' ? 'amd64' : arch === 'ia32' ? '386' : arch;
}

/** What the engine says about where it keeps images. */
export interface EngineStorage {
  graphRoot: string;
  /** Where blobs are copied before they are unpacked (Podman's imageCopyTmpDir, default /var/tmp). */
  copyDir: string;
  /** The engine's registries.conf entries. */
  registries: RegistryRule[];
}

export interface ImageSpaceCheckOptions {
  storage: () => Promise<EngineStorage>;
  /** Whether the engine holds an image already (nothing to pull). */
  has: (image: string) => Promise<boolean>;
  logger: Logger;
  /** Kept free beyond the image, for the device's own writes (default 100 MiB). */
  reserveBytes?: number;
  /** Free bytes and file system id of a folder; statfs by default. */
  free?: (dir: string) => Promise<{ freeBytes: number; fsId: string }>;
  size?: (ref: string, options: RegistryClientOptions) => Promise<ManifestSize>;
}

export const DEFAULT_RESERVE_BYTES = 100 * 2 ** 20;

export class ImageSpaceCheck {
  constructor(private readonly options: ImageSpaceCheckOptions) {}

  /** Before an install or update is accepted: the images the engine does not hold yet must fit, all together. */
  async assertRoomFor(images: readonly string[]): Promise<void> {
    const missing: string[] = [];
    for (const image of new Set(images)) if (!(await this.options.has(image))) missing.push(image);
    await this.assertRoom(missing);
  }

  /**
   * Throws ImageSpaceError when the images (to be pulled, in order) do not fit. An image whose
   * manifest cannot be read is left to the pull, which then fails with the registry's own words.
   */
  async assertRoom(images: readonly string[]): Promise<void> {
    if (!images.length) return;
    let storage: EngineStorage;
    try {
      storage = await this.options.storage();
    } catch (err) {
      // An engine that cannot say where it keeps images (not Podman's API) cannot be checked;
      // refusing every install for that would be worse than the pull's own disk-full error.
      this.options.logger.warn('the engine does not say where it keeps images; room not checked', { images, err });
      return;
    }
    let compressed = 0;
    for (const image of images) {
      try {
        const { ref, insecure } = rewriteReference(image, storage.registries);
        compressed += (await (this.options.size ?? manifestSize)(ref, { insecure: () => insecure })).compressedBytes;
      } catch (err) {
        this.options.logger.warn('image size unknown before its pull; not checked', { image, err });
      }
    }
    if (!compressed) return;
    const reserve = this.options.reserveBytes ?? DEFAULT_RESERVE_BYTES;
    const free = this.options.free ?? freeAt;
    const root = await free(storage.graphRoot);
    const copy = await free(storage.copyDir);
    const unpacked = Math.ceil(compressed * UNPACK_FACTOR);
    // One file system holding both: it needs room for the copy and the unpacked layers at once.
    const needs = root.fsId === copy.fsId ? [{ dir: storage.graphRoot, free: root.freeBytes, bytes: unpacked + compressed }] : [
      { dir: storage.graphRoot, free: root.freeBytes, bytes: unpacked },
      { dir: storage.copyDir, free: copy.freeBytes, bytes: compressed },
    ];
    for (const need of needs) {
      if (need.bytes + reserve > need.free) throw new ImageSpaceError(images, { neededBytes: need.bytes + reserve, freeBytes: need.free, path: need.dir, compressedBytes: compressed, reserveBytes: reserve });
    }
  }
}

async function freeAt(dir: string): Promise<{ freeBytes: number; fsId: string }> {
  // A folder the engine has not made yet (a fresh graphRoot) is on its parent's file system.
  while (dir !== path.dirname(dir) && !(await stat(dir).then(() => true, () => false))) dir = path.dirname(dir);
  const [space, info] = await Promise.all([statfs(dir), stat(dir)]);
  // bavail: what an unprivileged writer may use (root's reserved blocks are not counted as free).
  return { freeBytes: space.bavail * space.bsize, fsId: String(info.dev) };
}
