// The OpenAPI document and the daemon's router list the same routes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { daemonRoutes, type ApiDeps } from '../../services/daemon/api/routes.js';
import { readOpenApiDocument } from '../../services/daemon/api/openapi-document.js';
import { ApiSchema } from '../../services/daemon/api/schema.js';
import { addAppRoutes, type AppRoutesDeps } from '../../services/daemon/api/app-routes.js';
import { addRemoteRoutes, type RemoteRoutesDeps } from '../../services/daemon/remote/api.js';
import { addSystemRoutes, type SystemRoutesDeps } from '../../services/daemon/system/api.js';
import { addOsUpdateRoutes, type OsUpdateRoutesDeps } from '../../services/daemon/updates/routes.js';
import { addDiskRoutes } from '../../services/daemon/system/disk-api.js';
import { addStorageRoutes } from '../../services/daemon/api/storage-routes.js';
import { Ajv } from 'ajv';
import { createLogger } from '../../services/common/logger.js';

const document = readOpenApiDocument();
const schema = new ApiSchema(document);
const logger = createLogger({ service: 'test', write: () => {} });

test('every served route is documented, and every documented route is served', () => {
  // Handlers are not called here: only the route table is read.
  const router = addRemoteRoutes(addAppRoutes(daemonRoutes({ schema, logger } as ApiDeps), { schema } as AppRoutesDeps), { schema } as RemoteRoutesDeps);
  addSystemRoutes(router, { schema } as SystemRoutesDeps);
  addOsUpdateRoutes(router, { schema } as OsUpdateRoutesDeps);
  addDiskRoutes(router, {} as Parameters<typeof addDiskRoutes>[1]);
  addStorageRoutes(router, {} as Parameters<typeof addStorageRoutes>[1]);
  const served = router.list().map((route) => route.replace(/:([a-zA-Z]+)/g, '{$1}')).sort();
  const documented = schema.operations.map((op) => `${op.method} ${op.path}`).sort();
  assert.equal(served, documented);
});

test('operation ids are unique', () => {
  const ids = schema.operations.map((op) => op.operationId);
  assert.equal(ids.length, new Set(ids).size);
});

// The daemon compiles each body validator on first use and skips the meta-schema check at start,
// so the proof that the document is valid JSON Schema and that every validator compiles is here.
test('the document is valid JSON Schema, and every request body validator compiles', () => {
  const ajv = new Ajv({ strict: false });
  assert.ok(ajv.validateSchema(document), ajv.errorsText());
  const jsonBodies = Object.values(document.paths).flatMap((methods) => Object.values(methods)).filter((op) => (op.requestBody as { content?: Record<string, unknown> } | undefined)?.content?.['application/json']);
  assert.is(schema.compileAll(), jsonBodies.length);
});

test.run();
