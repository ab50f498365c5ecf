// The offline catalog, checked as it ships: templates.ts is bundled with the image's '.yaml' text
// loader (tsx cannot import .yaml), then every template must pass the app spec validator.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { NotFoundError } from '../../services/common/errors.js';
import { createCatalog, type CatalogTemplate } from '../../services/daemon/apps/catalog/catalog.js';
import { neededPermissions } from '../../services/daemon/apps/spec/permissions.js';
import { previewInstall } from '../../services/daemon/apps/spec/preview.js';

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

test('at least 20 well-known apps, several of them multi-container, each with a category and its own comment', () => {
  const entries = createCatalog(templates).listCatalog();
  assert.ok(entries.length >= 20, `${entries.length} templates`);
  const multi = entries.filter((entry) => entry.spec.services.length > 1).map((entry) => entry.name);
  assert.ok(multi.length >= 5, `multi-container: ${multi.join(', ')}`);
  for (const name of ['nextcloud', 'immich', 'paperless', 'gitea', 'miniflux']) assert.ok(multi.includes(name), name);
  for (const entry of entries) {
    assert.ok(entry.category && entry.category !== 'Other', `${entry.name} has a category`);
    assert.match(entry.text, /^# \S/, `${entry.name} starts with a comment saying what it is`);
  }
  assert.equal(new Set(entries.map((e) => e.category)).size > 5, true, 'the catalog is grouped');
});

test('every image is pinned: a registry, a repository and a release tag (or a digest), never latest', () => {
  const PINNED = /^[a-z0-9.-]+\.[a-z]+\/[a-z0-9._/-]+(:[A-Za-z0-9][\w.-]*|@sha256:[0-9a-f]{64})$/;
  for (const entry of createCatalog(templates).listCatalog()) {
    for (const service of entry.spec.services) {
      assert.match(service.image, PINNED, `${entry.name}/${service.name}: ${service.image}`);
      assert.not.match(service.image, /:(latest|stable|main|release)$/, `${entry.name}/${service.name}: ${service.image}`);
    }
  }
});

test('apps that need more than the defaults ask for exactly what they use, and say why in words', () => {
  const catalog = createCatalog(templates);
  const needs = (name: string) => neededPermissions(catalog.catalogEntry(name).spec);
  assert.equal(needs('home-assistant').map((p) => p.id), ['host_network']);
  assert.equal(needs('dozzle').map((p) => p.id), ['engine_socket']);
  assert.equal(needs('pihole').map((p) => [p.id, p.items]), [['capabilities', ['NET_ADMIN']]]);
  assert.equal(needs('jellyfin').map((p) => [p.id, p.items]), [['devices', ['/dev/dri']], ['media', ['Media']]]);
  assert.equal(needs('navidrome').map((p) => p.id), ['media']);
  assert.equal(needs('vaultwarden'), [], 'a plain app needs no grant');
  // Pi-hole answers DNS over both transports.
  const pihole = catalog.catalogEntry('pihole').spec.listeners;
  assert.equal(pihole.filter((l) => l.guest_port === 53).map((l) => l.protocol).sort(), ['raw', 'udp']);
  assert.equal(pihole.filter((l) => l.guest_port === 53).map((l) => l.public_port), [53, 53], "on the device's own port 53, where a network's devices look for DNS");
  for (const entry of catalog.listCatalog()) {
    const preview = previewInstall(entry.spec);
    assert.is(preview.containers.length, entry.spec.services.length, entry.name);
    for (const permission of preview.permissionsNeeded) assert.ok(permission.risk.length > 40, `${entry.name}: ${permission.id}`);
    // Nothing a template mounts is left undeclared, and no volume is left unmounted.
    assert.equal(preview.warnings.filter((w) => /not mounted/.test(w)), [], entry.name);
  }
});

test('the databases of multi-container apps have no listener: only the app\'s own containers reach them', () => {
  for (const entry of createCatalog(templates).listCatalog()) {
    if (entry.spec.services.length < 2) continue;
    const listened = new Set(entry.spec.listeners.map((l) => l.service));
    for (const service of entry.spec.services) {
      if (/postgres|mariadb|redis|pgvecto/.test(service.image)) assert.not.ok(listened.has(service.name), `${entry.name}/${service.name}`);
    }
  }
});

test('a template\'s password placeholders get the app\'s own secret, the same everywhere it is named; a kept one is reused', () => {
  const catalog = createCatalog(templates);
  const bytes = (n: number) => Buffer.alloc(n, 0xab);
  const made = catalog.instantiate('nextcloud', {}, bytes);
  const password = 'ab'.repeat(16);
  assert.equal(made.secrets, { DB_PASSWORD: password });
  const env = (service: string) => made.spec.services.find((s) => s.name === service)!.environment;
  assert.is(env('web').MYSQL_PASSWORD, password);
  assert.is(env('db').MARIADB_PASSWORD, password);
  const again = catalog.instantiate('nextcloud', { DB_PASSWORD: 'kept-one' });
  assert.equal(again.secrets, {}, 'nothing new to keep');
  assert.is(again.spec.services.find((s) => s.name === 'db')!.environment.MARIADB_PASSWORD, 'kept-one');
  assert.match(catalog.instantiate('miniflux', {}, bytes).spec.services.find((s) => s.name === 'web')!.environment.DATABASE_URL, new RegExp(`^postgres://miniflux:${password}@db/`));
});

test('no template keeps a fixed database password, and every placeholder is filled; other $ stay as written', () => {
  const catalog = createCatalog(templates);
  for (const entry of catalog.listCatalog()) {
    const { spec } = catalog.instantiate(entry.name);
    const text = JSON.stringify(spec);
    assert.not.match(text, /\$\{[A-Za-z_]*(PASSWORD|SECRET|KEY)\}/, entry.name);
    for (const service of spec.services) {
      for (const [key, value] of Object.entries(service.environment)) {
        if (/PASSWORD$|PASSWD$|DBPASS$/.test(key) && !/RANDOM/.test(key)) assert.match(value, /^[0-9a-f]{32}$/, `${entry.name}/${service.name} ${key}`);
      }
    }
  }
  const immich = catalog.instantiate('immich').spec.services.find((s) => s.name === 'database')!;
  assert.ok(immich.command!.includes('search_path="$user", public, vectors'), 'a $ that is no placeholder is kept');
});

test('catalogEntry finds an app by name, or throws NotFoundError', () => {
  const catalog = createCatalog(templates);
  const notes = catalog.catalogEntry('notes');
  assert.is(notes.spec.permissions.network.internet, 'deny');
  assert.match(notes.text, /^# Memos/);
  assert.throws(() => catalog.catalogEntry('nope'), (err: unknown) => err instanceof NotFoundError);
});

test('an invalid template fails the catalog on its first use (parsed then, not at start)', () => {
  assert.throws(() => createCatalog([{ file: 'bad.yaml', description: 'bad', text: 'name: admin\n' }]).listCatalog(), /bad\.yaml is invalid/);
  const twice = { description: 'x', text: 'name: twin\nimage: a\nlisteners: [{ name: web, guest_port: 80 }]\n' };
  assert.throws(() => createCatalog([{ file: 'a.yaml', ...twice }, { file: 'b.yaml', ...twice }]).catalogEntry('twin'), /twin is used twice/);
});

test.run();
