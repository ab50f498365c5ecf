// What each service bundle carries, by package (esbuild's metafile of the build image/bundle.ts
// makes): what to lazy-load or drop first when a service starts slowly or sits large. Not a
// benchmark; `tsx bench/footprint-bundle.ts [service]`.
import { build } from 'esbuild';
import { bundleOptions, SERVICES, type ServiceName } from '../image/bundle.js';

export async function bundleContents(service: ServiceName): Promise<{ totalBytes: number; byPackage: [string, number][] }> {
  const result = await build({ ...bundleOptions(service), write: false, metafile: true, sourcemap: false, logLevel: 'error' });
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
