// The published JSON Schema stays in step with the TypeScript types and the validator.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { FLOWS, MIDDLEWARE_NAMES, PROTOCOLS } from '../../services/common/route-table.js';
import schema from '../../services/daemon/apps/spec/app-spec.schema.json' with { type: 'json' };
import type { AppSpec, Listener } from '../../services/daemon/apps/spec/types.js';
import { parseSize } from '../../services/daemon/apps/spec/units.js';

// A Record over keyof fails to compile when the types gain or lose a field these lists lack.
const APP_SPEC_FIELDS: Record<keyof AppSpec, true> = {
  name: true,
  image: true,
  type: true,
  listeners: true,
  storage: true,
  environment: true,
  resources: true,
  healthcheck: true,
  depends_on: true,
  permissions: true,
};
const LISTENER_FIELDS: Record<keyof Listener, true> = {
  name: true,
  guest_port: true,
  flow: true,
  protocol: true,
  public: true,
  protocol_middleware: true,
  remote_ports: true,
};

const sorted = (keys: Iterable<string>) => [...keys].sort();

test('the schema knows exactly the fields of the TypeScript types (the source of "did you mean")', () => {
  assert.equal(sorted(Object.keys(schema.properties)), sorted(Object.keys(APP_SPEC_FIELDS)));
  assert.equal(sorted(Object.keys(schema.definitions.listener.properties)), sorted(Object.keys(LISTENER_FIELDS)));
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
  for (const text of ['256Mi', '1Gi', '512M', '50GB', '1.5TiB', '4096', '10K', '1KiB', '', 'Mi', '5mb', '1 Gi', '1Gib', '-1', '2Ei']) {
    assert.is(pattern.test(text), parseSize(text) !== undefined, text);
  }
});

test.run();
