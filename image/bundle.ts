// Builds one esbuild bundle per service: build/bundles/<service>/index.mjs (+ .map).
// The image and `make run` both use these files, so what is tested is what ships.
import { build, type BuildOptions } from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { readFileSync } from 'node:fs';
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

/** How one service is bundled; bench/footprint-bundle.ts reads the same build's metafile. */
export function bundleOptions(service: ServiceName | DevEntryName, { outDir = BUNDLE_DIR, testHooks = false }: BundleOptions = {}): BuildOptions {
  return {
    entryPoints: [path.join(REPO_ROOT, 'services', service, 'index.ts')],
    outfile: bundlePath(service, outDir),
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
    // the portal as its built files: one file per service.
    loader: { '.yaml': 'text' },
    plugins: service === 'daemon' ? [portalPlugin(), openApiPlugin(), unusedModulesPlugin()] : [],
    define: { __PICCOLO_VERSION__: JSON.stringify(VERSION), __PICCOLO_TEST_HOOKS__: String(testHooks) },
  };
}

export async function bundleServices(options: BundleOptions = {}): Promise<string[]> {
  const entries = [...SERVICES, ...DEV_ENTRIES];
  await Promise.all(entries.map((service) => build(bundleOptions(service, options)).then(() => asciiOnlyBundle(bundlePath(service, options.outDir)))));
  return entries.map((service) => bundlePath(service, options.outDir));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outputs = await bundleServices({ outDir: process.argv[2] ? path.resolve(process.argv[2]) : BUNDLE_DIR });
  for (const file of outputs) console.log(`bundle ${path.relative(REPO_ROOT, file)}`);
}
