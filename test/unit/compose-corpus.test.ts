// The import corpus: compose files shaped like the app stores' (Umbrel app folders, CasaOS files
// with x-casaos, plain stacks from projects' READMEs), each with its expected outcome on its first
// line (`# expect: import`, `# expect: permissions devices, media`, `# expect: refused build`).
// Prints the figures (imported, asking for permissions, refused by reason) and holds the goal:
// at least 90% import, and every refusal names the key and the reason.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BadRequestError } from '../../services/common/errors.js';
import { importCompose, importUmbrelApp, type ComposeImport, type ComposeImportOptions } from '../../services/daemon/apps/spec/compose.js';
import type { Permissions } from '../../services/daemon/apps/spec/types.js';

const CORPUS = fileURLToPath(new URL('../fixtures/compose', import.meta.url));

interface Case {
  name: string;
  expect: string;
  run: () => ComposeImport;
}

/** Siblings of plain/<name>.yml: <name>.env is its .env, <name>--<file> a file its env_file names. */
function optionsFor(dir: string, base: string): ComposeImportOptions {
  const options: ComposeImportOptions = { random: (n) => Buffer.alloc(n, 7) };
  const env = path.join(dir, `${base}.env`);
  if (fs.existsSync(env)) options.env = fs.readFileSync(env, 'utf8');
  for (const file of fs.readdirSync(dir).filter((f) => f.startsWith(`${base}--`))) {
    (options.envFiles ??= {})[file.slice(base.length + 2)] = fs.readFileSync(path.join(dir, file), 'utf8');
  }
  return options;
}

function expectation(text: string, where: string): string {
  const line = /^# expect: (.+)$/m.exec(text)?.[1];
  if (!line) throw new Error(`${where} has no "# expect:" line`);
  return line.trim();
}

function corpus(): Case[] {
  const cases: Case[] = [];
  const umbrel = path.join(CORPUS, 'umbrel');
  for (const app of fs.readdirSync(umbrel).sort()) {
    const compose = fs.readFileSync(path.join(umbrel, app, 'docker-compose.yml'), 'utf8');
    const manifest = fs.readFileSync(path.join(umbrel, app, 'umbrel-app.yml'), 'utf8');
    // Umbrel's exports.sh sets the app's own variables; the portal sends it as the .env.
    const exports = path.join(umbrel, app, 'exports.sh');
    const env = fs.existsSync(exports) ? { env: fs.readFileSync(exports, 'utf8') } : {};
    cases.push({ name: `umbrel/${app}`, expect: expectation(compose, app), run: () => importUmbrelApp({ manifest, compose }, { random: (n) => Buffer.alloc(n, 7), ...env }) });
  }
  for (const kind of ['casaos', 'plain']) {
    const dir = path.join(CORPUS, kind);
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.yml')).sort()) {
      const text = fs.readFileSync(path.join(dir, file), 'utf8');
      const options = optionsFor(dir, file.slice(0, -4));
      cases.push({ name: `${kind}/${file}`, expect: expectation(text, file), run: () => importCompose(text, options) });
    }
  }
  return cases;
}

function permissionIds(permissions: Permissions): string[] {
  const ids: string[] = [];
  if (permissions.host_network) ids.push('host_network');
  if (permissions.privileged) ids.push('privileged');
  if (permissions.engine_socket) ids.push('engine_socket');
  if (permissions.devices.length) ids.push('devices');
  if (permissions.capabilities.length) ids.push('capabilities');
  if (permissions.media.length) ids.push('media');
  return ids.sort();
}

/** A refusal's reason in a few words, for the figures. */
function reasonOf(problem: string): string {
  const reason = problem.slice(problem.indexOf(': ') + 2);
  if (/building images/.test(reason)) return 'build';
  if (/outside the app's data|steps out|not an app data or shared folder|single file/.test(reason)) return 'host path outside the app data';
  if (/^the variable /.test(reason)) return 'variable without a value';
  if (/another container's network/.test(reason)) return "another container's network";
  return reason.split(/[;,(]/)[0]!.slice(0, 60);
}

/** "services.web.volumes[1]: /etc is outside..." : a compose key, then the reason in words. */
const NAMES_KEY_AND_REASON = /^(?:[A-Za-z_][\w.-]*|umbrel-app\.yml [\w.]+)(?:\[\d+\])*(?:\.[\w.-]+(?:\[\d+\])*)*: \S.{9,}/;

test('the corpus: at least 90% import, permissions where the file needs them, each refusal names its key and reason', () => {
  const cases = corpus();
  assert.ok(cases.length >= 40, `the corpus has ${cases.length} files; it should have at least 40`);
  let imported = 0;
  let withPermissions = 0;
  const byReason = new Map<string, string[]>();
  const mismatches: string[] = [];
  for (const { name, expect, run } of cases) {
    let result: ComposeImport | undefined;
    let problems: string[] = [];
    try {
      result = run();
    } catch (err) {
      if (!(err instanceof BadRequestError)) throw new Error(`${name}: ${String(err)}`);
      problems = (err.details as string[]) ?? [err.message];
    }
    if (result) {
      imported++;
      const ids = permissionIds(result.spec.permissions);
      if (ids.length) withPermissions++;
      const wanted = expect === 'import' ? [] : expect.startsWith('permissions ') ? expect.slice(12).split(/,\s*/).sort() : undefined;
      if (!wanted) mismatches.push(`${name}: expected "${expect}", imported`);
      else if (wanted.join() !== ids.join()) mismatches.push(`${name}: expected permissions [${wanted}], got [${ids}]`);
      continue;
    }
    for (const problem of problems) {
      assert.match(problem, NAMES_KEY_AND_REASON, `${name}: the refusal "${problem}" must name the key and the reason`);
    }
    const reasons = [...new Set(problems.map(reasonOf))];
    for (const reason of reasons) byReason.set(reason, [...(byReason.get(reason) ?? []), name]);
    if (!expect.startsWith('refused ')) mismatches.push(`${name}: expected "${expect}", refused: ${problems.join(' | ')}`);
    else if (!problems.some((p) => p.includes(expect.slice(8)) || reasonOf(p).includes(expect.slice(8)))) mismatches.push(`${name}: expected a refusal for ${expect.slice(8)}, got ${problems.join(' | ')}`);
  }
  const refused = cases.length - imported;
  const lines = [
    `compose corpus: ${cases.length} files, ${imported} imported (${((100 * imported) / cases.length).toFixed(1)}%), ${withPermissions} of them asking for permissions, ${refused} refused`,
    ...[...byReason].map(([reason, names]) => `  refused, ${reason}: ${names.length} (${names.join(', ')})`),
  ];
  console.log(lines.join('\n'));
  assert.equal(mismatches, [], mismatches.join('\n'));
  assert.ok(imported / cases.length >= 0.9, `only ${imported} of ${cases.length} import`);
});

test('mangled corpus files are refused with problems, never a crash', () => {
  const files = [
    ...fs.readdirSync(path.join(CORPUS, 'umbrel')).map((app) => fs.readFileSync(path.join(CORPUS, 'umbrel', app, 'docker-compose.yml'), 'utf8')),
    ...['casaos', 'plain'].flatMap((kind) =>
      fs.readdirSync(path.join(CORPUS, kind)).filter((f) => f.endsWith('.yml')).map((f) => fs.readFileSync(path.join(CORPUS, kind, f), 'utf8')),
    ),
  ];
  // A fixed sequence, so a failure is reproducible.
  let seed = 1;
  const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const values = [' null', ' 5', ' [1, 2]', ' {a: 1}', ' ""', ' true', ' "${X}"', ' "$$"', ' "${"', ' -1', ' 99999', ' "/"', ' "a:b:c:d"'];
  let refused = 0;
  for (let round = 0; round < 1500; round++) {
    const lines = files[random(files.length)]!.split('\n');
    for (let change = 0; change <= random(3); change++) {
      const i = random(lines.length);
      const colon = lines[i]!.indexOf(':');
      if (random(4) === 0) lines.splice(i, 1);
      else if (colon > 0) lines[i] = lines[i]!.slice(0, colon + 1) + values[random(values.length)];
    }
    const text = lines.join('\n');
    try {
      if (text.includes('app_proxy') && random(2)) importUmbrelApp({ manifest: 'id: mangled\n', compose: text });
      else importCompose(text);
    } catch (err) {
      if (!(err instanceof BadRequestError)) throw new Error(`round ${round}: ${(err as Error).stack}\n${text}`);
      refused++;
      for (const problem of (err.details as string[]) ?? []) assert.match(problem, /^\S.*: \S/, `round ${round}: ${problem}`);
    }
  }
  assert.ok(refused > 100, `the mangling refused only ${refused} files: it changes too little to test anything`);
});

test.run();
