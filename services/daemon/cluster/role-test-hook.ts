// Test builds only (wired under TEST_HOOKS, so esbuild drops it from production bundles): lets an
// end-to-end test play the cluster engine, e.g. "this node now follows for app:web".
import { BadRequestError } from '../../common/errors.js';
import { readJson, type Router } from '../../common/http.js';
import type { AppLeadership } from './app-leadership.js';
import { appOfResource, KERNEL, type ScriptedRoles } from './roles.js';

export function addRoleTestRoutes(router: Router, roles: ScriptedRoles, leadership: AppLeadership): Router {
  const describe = (resource: string) => {
    const app = appOfResource(resource);
    return { resource, role: roles.role(resource), leader: roles.leader(resource) ?? null, ...(app ? { mode: leadership.modeFor(app) } : {}) };
  };
  return router
    .on('GET', '/api/v1/test/role', (req) => ({ body: describe(resourceOf(new URL(req.url ?? '/', 'http://x').searchParams.get('resource'))) }))
    .on('POST', '/api/v1/test/role', async (req) => {
      const body = (await readJson(req)) as { resource?: unknown; role?: unknown; leader?: unknown };
      const resource = resourceOf(body.resource);
      if (body.role !== 'leader' && body.role !== 'follower') throw new BadRequestError('role: leader or follower');
      if (body.leader !== undefined && typeof body.leader !== 'string') throw new BadRequestError('leader: a host name');
      roles.set(resource, body.role, body.leader);
      return { body: describe(resource) };
    });
}

function resourceOf(value: unknown): string {
  if (value === KERNEL || (typeof value === 'string' && appOfResource(value) !== undefined)) return value;
  throw new BadRequestError('resource: "kernel" or "app:<name>"');
}
