// The published JSON Schema stays in step with the TypeScript types and the validator.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { FLOWS, MIDDLEWARE_NAMES, PROTOCOLS } from '../../services/common/route-table.js';
import schema from '../../services/daemon/apps/spec/app-spec.schema.json' with { type: 'json' };
import type { AppSpecInput, ListenerInput, Permissions, ServiceFieldsInput, ServiceInput } from '../../services/daemon/apps/spec/types.js';
import { SHORT_FORM_SERVICE_KEYS } from '../../services/daemon/apps/spec/normalize.js';
import { parseSize } from '../../services/daemon/apps/spec/units.js';

// A Record over keyof fails to compile when the types gain or lose a field these lists lack. The
// schema describes what app.yaml holds (the input types); normalize turns that into AppSpec.
/** The container fields: a service's, and the short form's at the top level. */
const CONTAINER_FIELDS: Record<keyof ServiceFieldsInput, true> = {
  image: true,
  command: true,
  entrypoint: true,
  user: true,
  working_dir: true,
  restart: true,
  stop_grace_period: true,
  cap_drop: true,
  cap_add: true,
  read_only: true,
  tmpfs: true,
  shm_size: true,
  devices: true,
  privileged: true,
  network_mode: true,
  engine_socket: true,
};
const APP_SPEC_FIELDS: Record<keyof AppSpecInput, true> = {
  ...CONTAINER_FIELDS,
  name: true,
  type: true,
  services: true,
  listeners: true,
  storage: true,
  environment: true,
  resources: true,
  healthcheck: true,
  depends_on: true,
  permissions: true,
};
const SERVICE_FIELDS: Record<keyof ServiceInput, true> = { ...CONTAINER_FIELDS, environment: true, healthcheck: true, depends_on: true, mounts: true };
const LISTENER_FIELDS: Record<keyof ListenerInput, true> = {
  name: true,
  guest_port: true,
  flow: true,
  protocol: true,
  public: true,
  protocol_middleware: true,
  remote_ports: true,
  service: true,
  public_port: true,
};
const PERMISSION_FIELDS: Record<keyof Permissions, true> = {
  network: true,
  host_network: true,
  privileged: true,
  engine_socket: true,
  devices: true,
  capabilities: true,
  media: true,
};

const sorted = (keys: Iterable<string>) => [...keys].sort();

test('the schema knows exactly the fields of the TypeScript types (the source of "did you mean")', () => {
  assert.equal(sorted(Object.keys(schema.properties)), sorted(Object.keys(APP_SPEC_FIELDS)));
  assert.equal(sorted(Object.keys(schema.definitions.listener.properties)), sorted(Object.keys(LISTENER_FIELDS)));
  assert.equal(sorted(Object.keys(schema.definitions.service.properties)), sorted(Object.keys(SERVICE_FIELDS)));
  assert.equal(sorted(Object.keys(schema.properties.permissions.properties)), sorted(Object.keys(PERMISSION_FIELDS)));
  // The short form takes the container fields at the top level, in the same schema as a service's.
  assert.equal(sorted(SHORT_FORM_SERVICE_KEYS), sorted(Object.keys(CONTAINER_FIELDS)));
  for (const key of SHORT_FORM_SERVICE_KEYS) assert.equal(schema.properties[key], schema.definitions.service.properties[key], key);
});

test('the schema enums are the route table constants', () => {
  const listener = schema.definitions.listener.properties;
  assert.equal(sorted(listener.flow.enum), sorted(FLOWS));
  assert.equal(sorted(listener.protocol.enum), sorted(PROTOCOLS));
  assert.equal(sorted(listener.protocol_middleware.items.properties.name.enum), sorted(MIDDLEWARE_NAMES));
});

test('every good fixture passes the raw JSON Schema', () => {
  // A plain Ajv, as an editor or another tool would use it; the x- annotations are ignored.
  const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);
  const dir = new URL('../fixtures/apps/good/', import.meta.url);
  for (const file of readdirSync(dir)) {
    const valid = validate(parse(readFileSync(new URL(file, dir), 'utf8'), { merge: true }));
    assert.ok(valid, `${file}: ${JSON.stringify(validate.errors)}`);
  }
});

test('the schema quantity pattern accepts what parseSize reads, and only that', () => {
  const pattern = new RegExp(schema.definitions.quantity.pattern);
  for (const text of ['256Mi', '1Gi', '512M', '50GB', '1.5TiB', '4096', '10K', '1KiB', '', 'Mi', '5mb', '64m', '1g', '5mB', '1 Gi', '1Gib', '-1', '2Ei']) {
    assert.is(pattern.test(text), parseSize(text) !== undefined, text);
  }
});

test.run();
