// Builds the portal (Preact + TSX in services/daemon/portal/src) for the browser and hands it to the
// daemon bundle as the virtual module `piccolo:portal`: every file named by its content hash and
// precompressed here (gzip and brotli), so the device never spends CPU compressing its own UI.
import { build, type Plugin } from 'esbuild';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { brotliCompressSync, gzipSync, constants as zlib } from 'node:zlib';
import type { PortalAsset, PortalBundle } from '../services/daemon/api/portal-assets.js';

const PORTAL_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'services', 'daemon', 'portal');
const ASSET_PREFIX = '/assets/';
/** The goal the issue sets for the first load (main script + style sheet, gzip). */
export const FIRST_LOAD_GZIP_GOAL_BYTES = 150 * 1024;

const TYPES: Record<string, string> = { '.svg': 'image/svg+xml', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.html': 'text/html; charset=utf-8' };

export interface PortalBuild extends PortalBundle {
  /** gzip bytes of what the shell loads before any screen's lazy chunk: main, its static imports, the style sheet. */
  firstLoadGzipBytes: number;
}

export async function buildPortal(): Promise<PortalBuild> {
  const outdir = path.join(PORTAL_DIR, '.out'); // never written: write is false
  const result = await build({
    entryPoints: { main: path.join(PORTAL_DIR, 'src', 'main.tsx') },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome109', 'firefox115', 'safari15.4'],
    minify: true,
    write: false,
    metafile: true,
    entryNames: '[name].[hash]',
    chunkNames: '[name].[hash]',
    assetNames: '[name].[hash]',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'none',
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const assets: PortalAsset[] = result.outputFiles.map((file) => asset(ASSET_PREFIX + path.relative(outdir, file.path), file.contents));
  const outputs = result.metafile!.outputs;
  const [mainOut, main] = Object.entries(outputs).find(([, out]) => out.entryPoint?.endsWith('main.tsx'))!;
  const mainPath = ASSET_PREFIX + path.relative(outdir, path.resolve(mainOut));
  const cssPath = main.cssBundle ? ASSET_PREFIX + path.relative(outdir, path.resolve(main.cssBundle)) : undefined;
  const iconFile = readFileSync(path.join(PORTAL_DIR, 'icon.svg'));
  const icon = asset(`${ASSET_PREFIX}icon.${createHash('sha256').update(iconFile).digest('hex').slice(0, 8)}.svg`, iconFile);
  assets.push(icon);
  const template = readFileSync(path.join(PORTAL_DIR, 'index.html'), 'utf8');
  const tags = [
    `<link rel="icon" href="${icon.path}" type="image/svg+xml">`,
    cssPath && `<link rel="stylesheet" href="${cssPath}">`,
    `<script type="module" src="${mainPath}"></script>`,
  ].filter(Boolean).join('\n');
  const shell = asset('/', Buffer.from(template.replace('<!-- portal assets -->', tags)), '.html');
  // What the browser fetches before any screen's own chunk: main, what main imports statically, its CSS.
  const eager = new Set<string>();
  const visit = (out: string) => {
    if (eager.has(out)) return;
    eager.add(out);
    for (const imported of outputs[out]?.imports ?? []) if (imported.kind === 'import-statement') visit(imported.path);
  };
  visit(mainOut);
  const eagerPaths = new Set([...eager].map((out) => ASSET_PREFIX + path.relative(outdir, path.resolve(out))));
  const firstLoad = assets.filter((a) => eagerPaths.has(a.path) || a.path === cssPath);
  return { shell, assets, firstLoadGzipBytes: firstLoad.reduce((sum, a) => sum + Buffer.from(a.gzip, 'base64').length, 0) };
}

function asset(assetPath: string, contents: Uint8Array, ext = path.extname(assetPath)): PortalAsset {
  const body = Buffer.from(contents);
  return {
    path: assetPath,
    type: TYPES[ext] ?? 'application/octet-stream',
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
    gzip: gzipSync(body, { level: 9 }).toString('base64'),
    brotli: brotliCompressSync(body, { params: { [zlib.BROTLI_PARAM_QUALITY]: 11, [zlib.BROTLI_PARAM_SIZE_HINT]: body.length } }).toString('base64'),
  };
}

/** The esbuild plugin that gives the daemon bundle `import portal from 'piccolo:portal'`. */
export function portalPlugin(): Plugin {
  return {
    name: 'piccolo-portal',
    setup(pluginBuild) {
      pluginBuild.onResolve({ filter: /^piccolo:portal$/ }, () => ({ path: 'portal', namespace: 'piccolo-portal' }));
      pluginBuild.onLoad({ filter: /.*/, namespace: 'piccolo-portal' }, async () => {
        const { shell, assets } = await buildPortal();
        return { contents: `export default ${JSON.stringify({ shell, assets } satisfies PortalBundle)};`, loader: 'js', watchDirs: [path.join(PORTAL_DIR, 'src')] };
      });
    },
  };
}
