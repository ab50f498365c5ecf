// What each service's start reads, by package (esbuild's metafile of the build image/bundle.ts
// makes: its index.mjs; the chunks it imports on first need are counted apart): what to lazy-load
// or drop first when a service starts slowly or sits large. Not a benchmark;
// `tsx bench/footprint-bundle.ts [service]`.
import { build } from 'esbuild';
import { bundleOptions, SERVICES, type ServiceName } from '../image/bundle.js';

export async function bundleContents(service: ServiceName): Promise<{ totalBytes: number; lazyBytes: number; byPackage: [string, number][] }> {
  const result = await build({ ...bundleOptions(service), write: false, metafile: true, sourcemap: false, logLevel: 'error' });
  const outputs = Object.values(result.metafile.outputs);
  const output = outputs.find((o) => o.entryPoint)!;
  const lazyBytes = outputs.filter((o) => o !== output).reduce((sum, o) => sum + o.bytes, 0);
  const byPackage = new Map<string, number>();
  for (const [file, info] of Object.entries(output.inputs)) {
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1];
    const key = pkg ?? (file.startsWith('services/') ? file.split('/').slice(0, 3).join('/') : file.split('/').slice(0, 2).join('/'));
    byPackage.set(key, (byPackage.get(key) ?? 0) + info.bytesInOutput);
  }
  return { totalBytes: output.bytes, lazyBytes, byPackage: [...byPackage].sort((a, b) => b[1] - a[1]) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const service of process.argv[2] ? [process.argv[2] as ServiceName] : SERVICES) {
    const { totalBytes, lazyBytes, byPackage } = await bundleContents(service);
    console.log(`${service}: ${(totalBytes / 1024).toFixed(0)} KiB at start, ${(lazyBytes / 1024).toFixed(0)} KiB in chunks imported on first need`);
    for (const [name, bytes] of byPackage.slice(0, 15)) console.log(`  ${(bytes / 1024).toFixed(0).padStart(6)} KiB  ${name}`);
  }
}
