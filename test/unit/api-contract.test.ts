// The OpenAPI document and the daemon's router list the same routes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { daemonRoutes, type ApiDeps } from '../../services/daemon/api/routes.js';
import { ApiSchema } from '../../services/daemon/api/schema.js';
import { addAppRoutes, type AppRoutesDeps } from '../../services/daemon/api/app-routes.js';
import { addRemoteRoutes, type RemoteRoutesDeps } from '../../services/daemon/remote/api.js';
import { addSystemRoutes, type SystemRoutesDeps } from '../../services/daemon/system/api.js';
import { addOsUpdateRoutes, type OsUpdateRoutesDeps } from '../../services/daemon/updates/routes.js';
import { addDiskRoutes } from '../../services/daemon/system/disk-api.js';
import { addStorageRoutes } from '../../services/daemon/api/storage-routes.js';
import { createLogger } from '../../services/common/logger.js';

const schema = new ApiSchema(readFileSync(new URL('../../services/daemon/api/openapi.yaml', import.meta.url), 'utf8'));
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

test.run();
