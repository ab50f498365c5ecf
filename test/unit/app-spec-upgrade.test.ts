// The v3 → v4 control store migration: a spec stored before multi-container apps becomes exactly
// what normalize makes of the same app.yaml today, so an upgraded device recreates nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CONTROL_MIGRATIONS, CONTROL_SCHEMA_VERSION } from '../../services/daemon/control-document.js';
import { upgradeAppRecords, upgradeStoredSpec } from '../../services/daemon/apps/spec/upgrade.js';
import { parseAppSpec } from '../../services/daemon/apps/spec/validate.js';

const APP_YAML = [
  'name: notes',
  'image: localhost/notes:1',
  'environment: { TZ: Europe/Paris }',
  'permissions: { network: { internet: allow } }',
  'listeners:',
  '  - { name: web, guest_port: 8080, protocol: http }',
  'storage:',
  '  persistent: { data: { container: /data, size_limit: 1GiB } }',
  '  temporary: { cache: { container: /cache } }',
].join('\n');

/** What v3's normalize stored for APP_YAML. */
const STORED_V3 = {
  name: 'notes',
  image: 'localhost/notes:1',
  type: 'user',
  listeners: [{ name: 'web', guest_port: 8080, flow: 'tcp', protocol: 'http', public: false, protocol_middleware: [], remote_ports: [80, 443] }],
  storage: { persistent: { data: { container: '/data', size_limit: '1GiB', size_limit_bytes: 2 ** 30 } }, temporary: { cache: { container: '/cache' } } },
  environment: { TZ: 'Europe/Paris' },
  resources: { limits: {} },
  depends_on: [],
  permissions: { network: { internet: 'allow' } },
};

test('a stored v3 spec upgrades to what normalize makes of the same app.yaml', () => {
  assert.equal(upgradeStoredSpec(structuredClone(STORED_V3)), parseAppSpec(APP_YAML));
});

test('a spec that has services already is left as it is', () => {
  const today = parseAppSpec(APP_YAML);
  assert.equal(upgradeStoredSpec(structuredClone(today)), today);
});

test('the migration upgrades each record and its history, grants none, and keeps what is not a record', () => {
  assert.is(CONTROL_SCHEMA_VERSION, 4);
  const doc = {
    apps: { notes: { spec: STORED_V3, revision: 2, history: [{ revision: 1, spec: STORED_V3, at: 'then' }], ports: {}, subnet: '10.0.0.0/29' }, odd: { kept: true } },
    jobs: [],
  };
  const migrated = CONTROL_MIGRATIONS[2]!(structuredClone(doc)) as any;
  const expected = parseAppSpec(APP_YAML);
  assert.equal(migrated.apps.notes.spec, expected);
  assert.equal(migrated.apps.notes.history[0].spec, expected);
  assert.equal(migrated.apps.notes.granted, []);
  assert.equal(migrated.apps.odd, { kept: true });
  assert.equal(upgradeAppRecords(undefined), undefined);
});

test.run();
