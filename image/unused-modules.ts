// Modules the daemon bundle leaves out: dockerode loads them at start for transports Piccolo never
// uses. docker-modem's ssh transport requires ssh2 (with its 16 MiB WebAssembly heap), and dockerode's
// BuildKit session (buildImage with version 2) requires @grpc/grpc-js, @grpc/proto-loader and
// protobufjs. Piccolo reaches Podman only over its unix socket (new Docker({ socketPath })) and
// never builds an image. Left out, the daemon bundle is 1.5 MB smaller and its start allocates
// ~8 MiB less (bench/footprint-start.ts). Only these importers get the stub; any other importer
// of the same package bundles the real one. A use reaches the stub's error, which names this file.
import type { Plugin } from 'esbuild';

const UNUSED: Record<string, readonly string[]> = {
  ssh2: ['docker-modem'],
  '@grpc/grpc-js': ['dockerode'],
  '@grpc/proto-loader': ['dockerode'],
  protobufjs: ['dockerode', '@grpc/grpc-js', '@grpc/proto-loader'],
};

const packageOf = (file: string) => /node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*node_modules\/)/.exec(file)?.[1];

export function unusedModulesPlugin(): Plugin {
  return {
    name: 'piccolo-unused-modules',
    setup(pluginBuild) {
      pluginBuild.onResolve({ filter: /^(ssh2|@grpc\/grpc-js|@grpc\/proto-loader|protobufjs)(\/.*)?$/ }, ({ path, importer }) => {
        const name = Object.keys(UNUSED).find((pkg) => path === pkg || path.startsWith(`${pkg}/`))!;
        const from = packageOf(importer);
        return from && UNUSED[name]!.includes(from) ? { path: name, namespace: 'piccolo-unused' } : undefined;
      });
      // Property reads succeed (docker-modem reads require('ssh2').Client as it loads); calls and `new` fail.
      pluginBuild.onLoad({ filter: /.*/, namespace: 'piccolo-unused' }, ({ path }) => ({
        contents: `function fail() { throw new Error(${JSON.stringify(`${path} is not in this bundle (image/unused-modules.ts): Piccolo reaches Podman over its unix socket only`)}); }
module.exports = new Proxy({}, { get: (_, key) => (typeof key === 'symbol' || key === '__esModule' ? undefined : fail) });`,
        loader: 'js',
      }));
    },
  };
}
