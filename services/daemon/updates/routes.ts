// The OS updates API: status, apply, reboot and rollback. Reboot and rollback change what runs,
// so both are confirmed in the body (rollback by typing the snapshot's number) and audited.
import type http from 'node:http';
import { BadRequestError } from '../../common/errors.js';
import type { Router } from '../../common/http.js';
import type { ApiSchema } from '../api/schema.js';
import { clientAddress } from '../api/request.js';
import type { AuditLog } from '../auth/audit.js';
import type { OsUpdateManager } from './manager.js';

export interface OsUpdateRoutesDeps {
  schema: ApiSchema;
  requireSession: (req: http.IncomingMessage) => void;
  audit: Pick<AuditLog, 'record'>;
  updates: OsUpdateManager;
}

export function addOsUpdateRoutes(router: Router, { schema, requireSession, audit, updates }: OsUpdateRoutesDeps): Router {
  /** Records the attempt whatever its outcome, so a refused reboot is on the record too. */
  const audited = async <T>(req: http.IncomingMessage, event: string, detail: string, action: () => Promise<T>): Promise<T> => {
    try {
      const result = await action();
      await audit.record({ event, outcome: 'ok', client: clientAddress(req), detail });
      return result;
    } catch (err) {
      await audit.record({ event, outcome: 'error', client: clientAddress(req), detail: `${detail}: ${(err as Error).message}`.slice(0, 300) });
      throw err;
    }
  };

  return router
    .on('GET', '/api/v1/updates/os', async (req) => {
      requireSession(req);
      return { body: await updates.status() };
    })
    .on('POST', '/api/v1/updates/os/apply', async (req) => {
      requireSession(req);
      await schema.body(req, 'applyOsUpdate');
      const run = await audited(req, 'os.update.apply', 'transactional-update dup', () => updates.apply());
      return { status: 202, body: { run } };
    })
    .on('POST', '/api/v1/updates/os/reboot', async (req) => {
      requireSession(req);
      await schema.body(req, 'rebootDevice');
      await audited(req, 'os.reboot', 'reboot requested', () => updates.reboot());
      return { status: 202, body: { rebooting: true } };
    })
    .on('POST', '/api/v1/updates/os/rollback', async (req) => {
      requireSession(req);
      const { snapshot, confirm } = await schema.body<{ snapshot: number; confirm: string }>(req, 'rollbackOs');
      // Destructive for the pending update: the caller types the number, as a person does in the portal.
      if (confirm.trim() !== String(snapshot)) throw new BadRequestError(`confirm: type the snapshot's number (${snapshot}) to roll back to it`);
      const rollback = await audited(req, 'os.rollback', `to snapshot ${snapshot}`, () => updates.rollback(snapshot));
      return { body: { rollback, status: await updates.status() } };
    });
}
