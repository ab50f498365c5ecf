// The remote access API: configure, status, disable, preflight, and the certificates. Bodies are
// checked against openapi.yaml; the meaning (URL form, host names) by remote/settings.ts.
import type http from 'node:http';
import { BadRequestError, ConflictError, UnavailableError } from '../../common/errors.js';
import type { Handler, Router } from '../../common/http.js';
import type { ApiSchema } from '../api/schema.js';
import type { AuditLog } from '../auth/audit.js';
import { preflight, type Lookup } from './preflight.js';
import type { RemoteAccess } from './remote-access.js';
import type { RemoteConfigInput } from './settings.js';

export interface RemoteRoutesDeps {
  schema: ApiSchema;
  remote: RemoteAccess;
  audit: AuditLog;
  /** How the preflight resolves names (the system's resolver in production). */
  lookup: Lookup;
  /** Checks the session (and the CSRF token on state-changing requests). */
  requireSession: (req: http.IncomingMessage) => void;
}

type PreflightBody = Partial<RemoteConfigInput>;

export function addRemoteRoutes(router: Router, deps: RemoteRoutesDeps): Router {
  const { schema, remote, audit, requireSession } = deps;
  const signedIn =
    (handler: Handler): Handler =>
    async (req, params) => {
      requireSession(req);
      await remote.opened();
      return handler(req, params);
    };

  /** Records the outcome of a change in the audit log, failures included. */
  async function audited<T>(event: string, detail: string | undefined, work: () => Promise<T>): Promise<T> {
    try {
      const result = await work();
      await audit.record({ event, outcome: 'ok', detail });
      return result;
    } catch (err) {
      await audit.record({ event, outcome: 'error', detail: `${detail ? `${detail}: ` : ''}${(err as Error).message}` });
      throw err;
    }
  }

  return router
    .on('GET', '/api/v1/remote/status', signedIn(() => ({ body: remote.status() })))
    .on('POST', '/api/v1/remote/configure', signedIn(async (req) => {
      const body = await schema.body<RemoteConfigInput>(req, 'configureRemote');
      return { body: await audited('remote.configure', body.relayUrl, () => remote.configure(body)) };
    }))
    .on('POST', '/api/v1/remote/disable', signedIn(async (req) => {
      await schema.body(req, 'disableRemote');
      return { body: await audited('remote.disable', undefined, () => remote.disable()) };
    }))
    .on('POST', '/api/v1/remote/preflight', signedIn(async (req) => {
      // What the body gives is checked, the stored configuration fills in the rest.
      const body = hasBody(req) ? await schema.body<PreflightBody>(req, 'remotePreflight') : {};
      const stored = remote.settings;
      const relayUrl = body.relayUrl ?? stored?.relayUrl;
      const portalHostname = body.portalHostname ?? stored?.portalHostname;
      if (relayUrl === undefined && portalHostname === undefined) throw new ConflictError('remote access is not configured: give relayUrl and portalHostname to check them');
      if (relayUrl === undefined || portalHostname === undefined) {
        throw new BadRequestError('nothing is stored to fill in the missing field', [relayUrl === undefined ? 'relayUrl: missing' : 'portalHostname: missing']);
      }
      return { body: await preflight({ relayUrl, portalHostname }, { lookup: deps.lookup }) };
    }))
    .on('GET', '/api/v1/remote/certificates', signedIn(() => ({ body: { certificates: remote.status().certificates } })))
    .on('POST', '/api/v1/remote/certificates/renew', signedIn(async (req) => {
      const { name } = await schema.body<{ name?: string }>(req, 'renewCertificates');
      const certificates = remote.certificates;
      if (!certificates) throw new UnavailableError('certificates are not managed on this device');
      // Answers once the new certificates are stored (seconds), or with why not: 404, 429, 502.
      await audited('remote.certificates.renew', name ?? 'all', () => certificates.renew(name));
      return { body: { certificates: certificates.inventory() } };
    }));
}

function hasBody(req: http.IncomingMessage): boolean {
  return Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
}
