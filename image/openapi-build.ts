// Gives the daemon bundle `import openApi from 'piccolo:openapi'`: the OpenAPI document parsed here,
// at build time, and embedded as JSON (JSON.parse of one string is ~1 ms; the YAML parse it
// replaces took 100-230 ms of each start).
import type { Plugin } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { OPENAPI_FILE, readOpenApiDocument } from '../services/daemon/api/openapi-document.js';

export function openApiPlugin(): Plugin {
  return {
    name: 'piccolo-openapi',
    setup(pluginBuild) {
      pluginBuild.onResolve({ filter: /^piccolo:openapi$/ }, () => ({ path: 'openapi', namespace: 'piccolo-openapi' }));
      pluginBuild.onLoad({ filter: /.*/, namespace: 'piccolo-openapi' }, () => ({
        contents: `export default JSON.parse(${JSON.stringify(JSON.stringify(readOpenApiDocument()))});`,
        loader: 'js',
        watchFiles: [fileURLToPath(OPENAPI_FILE)],
      }));
    },
  };
}
