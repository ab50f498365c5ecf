// What each service bundle carries, by package (esbuild's metafile): what to lazy-load or drop
// first when a service starts slowly or sits large. Not a benchmark; `tsx bench/footprint-bundle.ts [service]`.
import { build } from 'esbuild';
import path from 'node:path';
import { REPO_ROOT, SERVICES, type ServiceName } from '../image/bundle.js';
import { portalPlugin } from '../image/portal-build.js';
import { openApiPlugin } from '../image/openapi-build.js';
import { unusedModulesPlugin } from '../image/unused-modules.js';

export async function bundleContents(service: ServiceName): Promise<{ totalBytes: number; byPackage: [string, number][] }> {
  const result = await build({
    entryPoints: [path.join(REPO_ROOT, 'services', service, 'index.ts')],
    outfile: path.join(REPO_ROOT, 'build', 'metafile', service, 'index.mjs'),
    bundle: true,
    platform: 'node',
    target: 'node18',
    format: 'esm',
    write: false,
    metafile: true,
    minifySyntax: true,
    legalComments: 'none',
    logLevel: 'error',
    // As image/bundle.ts builds them.
    external: ['cpu-features', '*.node'],
    loader: { '.yaml': 'text' },
    plugins: service === 'daemon' ? [portalPlugin(), openApiPlugin(), unusedModulesPlugin()] : [],
    define: { __PICCOLO_VERSION__: '"metafile"', __PICCOLO_TEST_HOOKS__: 'false' },
  });
  const output = Object.values(result.metafile.outputs).find((o) => o.entryPoint)!;
  const byPackage = new Map<string, number>();
  for (const [file, info] of Object.entries(output.inputs)) {
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1];
    const key = pkg ?? (file.startsWith('services/') ? file.split('/').slice(0, 3).join('/') : file.split('/').slice(0, 2).join('/'));
    byPackage.set(key, (byPackage.get(key) ?? 0) + info.bytesInOutput);
  }
  return { totalBytes: output.bytes, byPackage: [...byPackage].sort((a, b) => b[1] - a[1]) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const service of process.argv[2] ? [process.argv[2] as ServiceName] : SERVICES) {
    const { totalBytes, byPackage } = await bundleContents(service);
    console.log(`${service}: ${(totalBytes / 1024).toFixed(0)} KiB`);
    for (const [name, bytes] of byPackage.slice(0, 15)) console.log(`  ${(bytes / 1024).toFixed(0).padStart(6)} KiB  ${name}`);
  }
}
