// The offline catalog, checked as it ships: templates.ts is bundled with the image's '.yaml' text
// loader (tsx cannot import .yaml), then every template must pass the app spec validator.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { NotFoundError } from '../../services/common/errors.js';
import { createCatalog, type CatalogTemplate } from '../../services/daemon/apps/catalog/catalog.js';

const CATALOG_DIR = new URL('../../services/daemon/apps/catalog/', import.meta.url);

async function bundledTemplates(): Promise<readonly CatalogTemplate[]> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL('templates.ts', CATALOG_DIR))],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'node',
    loader: { '.yaml': 'text' },
    logLevel: 'silent',
  });
  const code = result.outputFiles[0]!.text;
  const module = (await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)) as { CATALOG_TEMPLATES: readonly CatalogTemplate[] };
  return module.CATALOG_TEMPLATES;
}

const templates = await bundledTemplates();

test('every template file ships, and every template validates', () => {
  const files = readdirSync(CATALOG_DIR).filter((file) => file.endsWith('.yaml'));
  assert.equal(templates.map((t) => t.file).sort(), files.sort());
  const catalog = createCatalog(templates);
  assert.is(catalog.listCatalog().length, files.length);
  for (const entry of catalog.listCatalog()) {
    assert.ok(entry.description, `${entry.name} has a description`);
    assert.is(entry.spec.name, entry.name);
  }
});

test('catalogEntry finds an app by name, or throws NotFoundError', () => {
  const catalog = createCatalog(templates);
  const notes = catalog.catalogEntry('notes');
  assert.is(notes.spec.permissions.network.internet, 'deny');
  assert.match(notes.text, /^# Memos/);
  assert.throws(() => catalog.catalogEntry('nope'), (err: unknown) => err instanceof NotFoundError);
});

test('an invalid template stops the catalog from being created', () => {
  assert.throws(() => createCatalog([{ file: 'bad.yaml', description: 'bad', text: 'name: admin\n' }]), /bad\.yaml is invalid/);
  const twice = { description: 'x', text: 'name: twin\nimage: a\nlisteners: [{ name: web, guest_port: 80 }]\n' };
  assert.throws(() => createCatalog([{ file: 'a.yaml', ...twice }, { file: 'b.yaml', ...twice }]), /twin is used twice/);
});

test.run();
