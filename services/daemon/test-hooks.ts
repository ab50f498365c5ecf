// Hooks that exist only in test builds (image/bundle.ts with testHooks: true); in the production
// bundle TEST_HOOKS is the constant false and esbuild drops this code.
import { readJson, type Router } from '../common/http.js';
import { BadRequestError } from '../common/errors.js';

declare const __PICCOLO_TEST_HOOKS__: boolean | undefined;
export const TEST_HOOKS = typeof __PICCOLO_TEST_HOOKS__ === 'boolean' && __PICCOLO_TEST_HOOKS__;

/** A persistence fault that a test switches on and off over HTTP. */
export class FaultSwitch {
  private fault: string | undefined;

  readonly current = (): string | undefined => this.fault;

  addRoutes(router: Router): Router {
    return router.on('POST', '/api/v1/test/persistence-fault', async (req) => {
      const body = (await readJson(req)) as { fault?: unknown };
      if (body.fault !== null && typeof body.fault !== 'string') throw new BadRequestError('fault: a string, or null to clear');
      this.fault = body.fault ?? undefined;
      return { body: { fault: this.fault ?? null } };
    });
  }
}
