// Serves the portal built by image/portal-build.ts: hashed assets cached for good, the shell page
// revalidated on every load, each sent brotli or gzip as the browser accepts (identity otherwise).
import type http from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { Reply } from '../../common/http.js';

/** One built file, precompressed at build time (base64, so the bundle stays a text file). */
export interface PortalAsset {
  path: string;
  type: string;
  etag: string;
  gzip: string;
  brotli: string;
}

export interface PortalBundle {
  /** The HTML page every portal path answers with (the client routes). */
  shell: PortalAsset;
  assets: PortalAsset[];
}

interface Encoded {
  type: string;
  etag: string;
  gzip: Buffer;
  brotli: Buffer;
}

// The portal loads nothing from elsewhere and runs no inline script or style.
const SHELL_HEADERS = {
  'content-security-policy': "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};
const IMMUTABLE = 'public, max-age=31536000, immutable';

export class PortalAssets {
  private readonly shellFile: Encoded;
  private readonly files = new Map<string, Encoded>();

  constructor(bundle: PortalBundle) {
    this.shellFile = decode(bundle.shell);
    for (const asset of bundle.assets) this.files.set(asset.path, decode(asset));
  }

  /** The page for `/` and every client route: revalidated, so an update shows on the next load. */
  shell(req: http.IncomingMessage): Reply {
    return encodedReply(this.shellFile, req, { ...SHELL_HEADERS, 'cache-control': 'no-cache' });
  }

  /** A hashed asset, or undefined: its name changes whenever its content does. */
  asset(req: http.IncomingMessage, assetPath: string): Reply | undefined {
    const file = this.files.get(assetPath);
    return file && encodedReply(file, req, { 'cache-control': IMMUTABLE });
  }
}

function decode(asset: PortalAsset): Encoded {
  return { type: asset.type, etag: asset.etag, gzip: Buffer.from(asset.gzip, 'base64'), brotli: Buffer.from(asset.brotli, 'base64') };
}

function encodedReply(file: Encoded, req: http.IncomingMessage, headers: Record<string, string>): Reply {
  const common = { ...headers, etag: file.etag, vary: 'accept-encoding' };
  if (matchesEtag(req.headers['if-none-match'], file.etag)) return { status: 304, headers: common };
  const accepted = acceptedEncodings(req.headers['accept-encoding']);
  const type = { 'content-type': file.type };
  if (accepted.has('br')) return { headers: { ...common, ...type, 'content-encoding': 'br' }, body: file.brotli };
  if (accepted.has('gzip')) return { headers: { ...common, ...type, 'content-encoding': 'gzip' }, body: file.gzip };
  return { headers: { ...common, ...type }, body: gunzipSync(file.gzip) };
}

/** Encodings with a non-zero quality, e.g. "gzip, deflate, br;q=0.5" → {gzip, deflate, br}. */
export function acceptedEncodings(header: string | undefined): Set<string> {
  const accepted = new Set<string>();
  for (const part of (header ?? '').split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (name && !(q && Number(q.slice(2)) === 0)) accepted.add(name.trim());
  }
  return accepted;
}

function matchesEtag(header: string | undefined, etag: string): boolean {
  return header !== undefined && header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}
