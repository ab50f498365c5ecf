// Builds one esbuild bundle per service: build/bundles/<service>/index.mjs (+ .map), and beside it
// the chunks of what the service imports only on first need (import()), which a start never reads.
// The image and `make run` both use these files, so what is tested is what ships.
import { build, type BuildOptions } from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { portalPlugin } from './portal-build.js';
import { openApiPlugin } from './openapi-build.js';
import { unusedModulesPlugin } from './unused-modules.js';
import { asciiOnlyBundle } from './ascii-bundle.js';

export const SERVICES = ['daemon', 'proxy', 'tunnel', 'health'] as const;
export type ServiceName = (typeof SERVICES)[number];
/** Development tools bundled like the services but never shipped: the image copies SERVICES only. */
export const DEV_ENTRIES = ['relay'] as const;
export type DevEntryName = (typeof DEV_ENTRIES)[number];

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// PICCOLO_BUNDLE_DIR / PICCOLO_TEST_BUNDLE_DIR: separate outputs for runs side by side in one tree.
export const BUNDLE_DIR = process.env.PICCOLO_BUNDLE_DIR ?? path.join(REPO_ROOT, 'build', 'bundles');

export function bundlePath(service: ServiceName | DevEntryName, outDir = BUNDLE_DIR): string {
  return path.join(outDir, service, 'index.mjs');
}

const VERSION = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).version as string;

export interface BundleOptions {
  outDir?: string;
  /** Compiles in the test hooks (services/daemon/test-hooks.ts); never for the image. */
  testHooks?: boolean;
}

/** Test bundles, with hooks, live apart so they never reach the image. */
export const TEST_BUNDLE_DIR = process.env.PICCOLO_TEST_BUNDLE_DIR ?? path.join(REPO_ROOT, 'build', 'test-bundles');

/** Programs a service runs as its own children, bundled beside its index.mjs (proxy/certificate-authority.ts says why). */
const EXTRA_ENTRIES: Partial<Record<ServiceName | DevEntryName, string[]>> = { proxy: ['cert-maker.ts'] };

/** How one service is bundled; bench/footprint-bundle.ts reads the same build's metafile. */
export function bundleOptions(service: ServiceName | DevEntryName, { outDir = BUNDLE_DIR, testHooks = false }: BundleOptions = {}): BuildOptions {
  return {
    entryPoints: [path.join(REPO_ROOT, 'services', service, 'index.ts'), ...(EXTRA_ENTRIES[service] ?? []).map((entry) => path.join(REPO_ROOT, 'services', service, entry))],
    outdir: path.dirname(bundlePath(service, outDir)),
    entryNames: '[name]',
    // V8 keeps a module's whole source for as long as it runs: what is imported lazily (the proxy's
    // certificate library, the daemon's ACME client, WebAuthn, ...) lives in chunks of its own, read
    // only on first use. Beside index.mjs, so __dirname stays the same in every chunk.
    splitting: true,
    chunkNames: '[name]-[hash]',
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    target: 'node18',
    format: 'esm',
    sourcemap: true,
    minifySyntax: true,
    minifyWhitespace: true,
    legalComments: 'none',
    logLevel: 'warning',
    // CommonJS dependencies (dockerode and its modem, node-forge) use require() and __dirname:
    // give the ESM output both.
    banner: {
      js: [
        "import { createRequire as __createRequire } from 'node:module';",
        "import { fileURLToPath as __fileURLToPath } from 'node:url';",
        'const require = __createRequire(import.meta.url);',
        'const __filename = __fileURLToPath(import.meta.url);',
        "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
      ].join(' '),
    },
    // Optional native add-ons (ssh2's cpu-features); dockerode's ssh transport is left out
    // altogether (unused-modules.ts): Piccolo only speaks to a unix socket.
    external: ['cpu-features', '*.node'],
    // The catalog's YAML templates are embedded as strings, the OpenAPI document as parsed JSON and
    // the portal as its built files: no file to find at run time but the bundle's own.
    loader: { '.yaml': 'text' },
    plugins: service === 'daemon' ? [portalPlugin(), openApiPlugin(), unusedModulesPlugin()] : [],
    define: { __PICCOLO_VERSION__: JSON.stringify(VERSION), __PICCOLO_TEST_HOOKS__: String(testHooks) },
  };
}

export async function bundleServices(options: BundleOptions = {}): Promise<string[]> {
  const entries = [...SERVICES, ...DEV_ENTRIES];
  await Promise.all(entries.map((service) => bundleOne(service, options)));
  return entries.map((service) => bundlePath(service, options.outDir));
}

async function bundleOne(service: ServiceName | DevEntryName, options: BundleOptions): Promise<void> {
  const dir = path.dirname(bundlePath(service, options.outDir));
  // Chunk names carry a hash: an earlier build's chunks would otherwise stay and reach the image.
  await rm(dir, { recursive: true, force: true });
  await build(bundleOptions(service, options));
  const modules = (await readdir(dir)).filter((file) => file.endsWith('.mjs'));
  await Promise.all(modules.map((file) => asciiOnlyBundle(path.join(dir, file))));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outputs = await bundleServices({ outDir: process.argv[2] ? path.resolve(process.argv[2]) : BUNDLE_DIR });
  for (const file of outputs) console.log(`bundle ${path.relative(REPO_ROOT, file)}`);
}
