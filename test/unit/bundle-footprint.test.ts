// What the bundles leave out or rewrite to stay small in memory (image/unused-modules.ts,
// image/ascii-bundle.ts): dockerode still loads and reaches a unix socket without ssh2 and gRPC,
// a use of what was left out fails with a message naming why, and a bundle's comments become
// ASCII while its code is never touched.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { REPO_ROOT } from '../../image/bundle.js';
import { asciiOnlyBundle } from '../../image/ascii-bundle.js';
import { unusedModulesPlugin } from '../../image/unused-modules.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-bundle-footprint-'));

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('dockerode without ssh2 and gRPC: it loads, speaks over a unix socket, and an ssh use names what is missing', async () => {
  const outfile = path.join(dir, 'docker.mjs');
  const result = await build({
    stdin: { contents: "export { default as Docker } from 'dockerode';", resolveDir: REPO_ROOT },
    outfile, bundle: true, platform: 'node', format: 'esm', target: 'node18', metafile: true, logLevel: 'error',
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    external: ['cpu-features', '*.node'], plugins: [unusedModulesPlugin()],
  });
  const inputs = Object.keys(result.metafile.inputs).join('\n');
  assert.ok(inputs.includes('node_modules/docker-modem/'));
  for (const left of ['node_modules/ssh2/', 'node_modules/@grpc/', 'node_modules/protobufjs/']) assert.not.ok(inputs.includes(left), left);
  const { Docker } = (await import(outfile)) as { Docker: new (options: object) => { version(): Promise<{ Version: string }> } };
  const socketPath = path.join(dir, 'engine.sock');
  const engine = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"Version":"4.3.1"}'));
  await new Promise<void>((resolve) => engine.listen(socketPath, resolve));
  try {
    assert.is((await new Docker({ socketPath }).version()).Version, '4.3.1');
  } finally {
    engine.close();
  }
  await new Docker({ protocol: 'ssh', host: 'nowhere.invalid', port: 22 }).version().then(
    () => assert.unreachable('an ssh connection was made'),
    (err: Error) => assert.match(err.message, /ssh2 is not in this bundle \(image\/unused-modules\.ts\)/),
  );
});

test('a bundle keeps its code and turns only its comments ASCII, column for column', async () => {
  const file = path.join(dir, 'comments.mjs');
  const code = "// a → b, § 4\nexport const label = 'caf\\u00e9'; /* … */ export const x = 1;\n";
  writeFileSync(file, code);
  await asciiOnlyBundle(file);
  const written = readFileSync(file, 'utf8');
  assert.is(written, "// a ? b, ? 4\nexport const label = 'caf\\u00e9'; /* ? */ export const x = 1;\n");
  assert.is(written.length, code.length);
});

test('a non-ASCII character in code stops the build, since rewriting it would change the program', async () => {
  const file = path.join(dir, 'regex.mjs');
  writeFileSync(file, 'export const unit = /µs/;\n');
  await asciiOnlyBundle(file).then(
    () => assert.unreachable('the bundle was rewritten'),
    (err: Error) => assert.match(err.message, /non-ASCII outside comments \(µ\)/),
  );
  assert.is(readFileSync(file, 'utf8'), 'export const unit = /µs/;\n');
});

test.run();
