import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { BadRequestError } from '../../services/common/errors.js';
import { MAX_YAML_BYTES } from '../../services/daemon/apps/spec/safe-yaml.js';
import { parseDuration, parseSize } from '../../services/daemon/apps/spec/units.js';
import { editDistance } from '../../services/daemon/apps/spec/suggest.js';
import { parseAppSpec } from '../../services/daemon/apps/spec/validate.js';
import { thrown } from '../support/assertions.js';

const FIXTURES = new URL('../fixtures/apps/', import.meta.url);
const fixtures = (kind: 'good' | 'bad') =>
  readdirSync(new URL(kind, FIXTURES)).filter((file) => file.endsWith('.yaml')).map((file) => ({ file, text: readFileSync(new URL(`${kind}/${file}`, FIXTURES), 'utf8') }));

function problemsOf(text: string): string[] {
  const err = thrown(() => parseAppSpec(text), BadRequestError);
  assert.is(err.message, 'invalid app spec');
  return err.details as string[];
}

for (const { file, text } of fixtures('good')) {
  test(`good/${file} is accepted`, () => {
    parseAppSpec(text);
  });
}

// Each bad fixture states its expected problems in leading "# expect: ..." lines: exactly those.
for (const { file, text } of fixtures('bad')) {
  test(`bad/${file} is refused with the problems it expects`, () => {
    const expected = text.split('\n').filter((line) => line.startsWith('# expect: ')).map((line) => line.slice('# expect: '.length));
    assert.ok(expected.length, `${file} has no "# expect:" line`);
    assert.equal(problemsOf(text), expected);
  });
}

test('defaults are applied so the runtime never sees a missing list or setting', () => {
  const spec = parseAppSpec(readFileSync(new URL('good/minimal.yaml', FIXTURES), 'utf8'));
  assert.equal(spec, {
    name: 'blog',
    type: 'user',
    // The short form is one service named "app", with every container default filled in.
    services: [
      {
        name: 'app',
        image: 'ghost:5',
        environment: {},
        restart: 'unless-stopped',
        cap_drop: [],
        cap_add: [],
        read_only: false,
        tmpfs: [],
        depends_on: [],
        mounts: [],
        devices: [],
        privileged: false,
        network_mode: 'app',
        engine_socket: false,
      },
    ],
    listeners: [{ name: 'web', guest_port: 2368, flow: 'tcp', protocol: 'raw', public: false, protocol_middleware: [], remote_ports: [80, 443], service: 'app' }],
    storage: { persistent: {}, temporary: {} },
    environment: {},
    resources: { limits: {} },
    depends_on: [],
    permissions: { network: { internet: 'deny' }, host_network: false, privileged: false, engine_socket: false, devices: [], capabilities: [], media: [] },
  });
});

test('quantities, durations and environment values are normalized', () => {
  const spec = parseAppSpec(readFileSync(new URL('good/full.yaml', FIXTURES), 'utf8'));
  assert.equal(spec.resources.limits, { memory: '1Gi', memory_bytes: 2 ** 30, cpu: 1.5 });
  assert.equal(spec.storage.persistent.library, { container: '/srv/photos', size_limit: '50GB', size_limit_bytes: 50e9 });
  assert.equal(spec.storage.temporary.cache!.size_limit_bytes, 512 * 2 ** 20);
  assert.equal(spec.environment, { PHOTOS_MODE: 'production', WORKERS: '4', DEBUG: 'false' });
  assert.equal(spec.healthcheck, { http: { path: '/api/health', port: 'web', timeout: '1m30s', timeout_ms: 90_000, retries: 5 } });
  assert.equal(spec.listeners[1]!.remote_ports, []);
  assert.equal(spec.listeners[0]!.protocol_middleware[1], { name: 'rate_limit', params: { rate: 20, burst: 40 } });
  assert.not.ok('x-piccolo' in spec, 'extension keys are dropped');
});

test('parseSize and parseDuration', () => {
  assert.is(parseSize('256Mi'), 256 * 2 ** 20);
  assert.is(parseSize('1Gi'), 2 ** 30);
  assert.is(parseSize('512M'), 512e6);
  assert.is(parseSize('1.5GiB'), 1.5 * 2 ** 30);
  assert.is(parseSize('4096'), 4096);
  // compose's lower-case units are powers of 1024, as Docker reads them.
  assert.is(parseSize('64m'), 64 * 2 ** 20);
  assert.is(parseSize('5mb'), 5 * 2 ** 20);
  assert.is(parseSize('1g'), 2 ** 30);
  for (const bad of ['', 'Mi', '12 Mi', '5mB', '-1Gi', '1constructor', '1Gib']) assert.is(parseSize(bad), undefined, bad);
  assert.is(parseDuration('500ms'), 500);
  assert.is(parseDuration('1h2m3s'), 3_723_000);
  assert.is(parseDuration('30'), undefined);
});

test('editDistance', () => {
  assert.is(editDistance('listners', 'listeners'), 1);
  assert.is(editDistance('kitten', 'sitting'), 3);
  assert.is(editDistance('', 'abc'), 3);
});

test('a billion-laughs document is refused in under 100 ms', () => {
  const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  const names = 'abcdefghij';
  for (let i = 1; i < names.length; i++) lines.push(`${names[i]}: &${names[i]} [${Array(9).fill(`*${names[i - 1]}`).join(',')}]`);
  const started = performance.now();
  const problems = problemsOf(lines.join('\n'));
  const elapsed = performance.now() - started;
  assert.equal(problems, ['document: aliases expand too much (more than 100); this looks like a YAML bomb']);
  assert.ok(elapsed < 100, `took ${elapsed.toFixed(1)} ms`);
});

test('a document over 64 KiB is refused before parsing', () => {
  const text = `name: blog\nimage: ghost:5\nlisteners: [{ name: web, guest_port: 80 }]\n# ${'x'.repeat(MAX_YAML_BYTES)}\n`;
  assert.equal(problemsOf(text), [`document: is ${Buffer.byteLength(text)} bytes; the limit is ${MAX_YAML_BYTES}`]);
});

test('a __proto__ key cannot reach Object.prototype', () => {
  const spec = parseAppSpec('name: blog\nimage: ghost:5\nlisteners: [{ name: web, guest_port: 80 }]\nenvironment:\n  __proto__: polluted\n');
  assert.equal(Object.keys(spec.environment), ['__proto__']);
  assert.is(Object.getPrototypeOf(spec.environment), Object.prototype);
});

test.run();
