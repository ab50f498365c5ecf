// The second factor's API: enrolment (signed in, CSRF) and the second step of a sign-in. The
// sign-in steps reuse the daemon's own pieces, passed in by api/routes.ts: `guarded` (throttle
// and audit) and `signIn` (the session cookie), so a second-factor sign-in ends exactly as a
// password one does.
import type http from 'node:http';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { ForbiddenError, PiccoloError } from '../../../common/errors.js';
import type { Reply, Router } from '../../../common/http.js';
import type { ApiSchema } from '../../api/schema.js';
import type { AuditLog } from '../audit.js';
import type { Session } from '../sessions.js';
import { relyingPartyOf, type RelyingParty } from './passkeys.js';
import type { SecondFactor } from './second-factor.js';

/** The throttle key of second-factor attempts: a right password must not reset their count. */
export const secondFactorThrottleKey = (client: string) => `second-factor:${client}`;

export type Guarded = <T>(
  req: http.IncomingMessage,
  event: string,
  attempt: () => Promise<T>,
  options?: { throttleKey?: (client: string) => string; detail?: (result: T) => string | undefined },
) => Promise<T>;

export interface SecondFactorRoutesDeps {
  schema: ApiSchema;
  /** A getter: the contract test builds the routes without one. */
  secondFactor: () => SecondFactor;
  audit: AuditLog;
  requireSession: (req: http.IncomingMessage) => Session;
  /** Checks the admin password (a wrong one is a 401), as vault.verifyPassword. */
  verifyPassword: (password: string) => Promise<void>;
  assertUnlocked: () => void;
  guarded: Guarded;
  signIn: (req: http.IncomingMessage) => Reply;
  clientAddress: (req: http.IncomingMessage) => string;
  /** Whether the browser reached the portal over https (directly or through the proxy). */
  isHttps: (req: http.IncomingMessage) => boolean;
}

export function relyingPartyOfRequest(req: http.IncomingMessage): RelyingParty {
  return relyingPartyOf(header(req, 'origin'), header(req, 'host'));
}

export function addSecondFactorRoutes(router: Router, deps: SecondFactorRoutesDeps): Router {
  const { schema, audit, requireSession, guarded, clientAddress } = deps;
  const sf = () => deps.secondFactor();

  /** An enrolment change: signed in, recorded in the audit log whatever the outcome. */
  async function change<T>(req: http.IncomingMessage, event: string, work: () => Promise<T>, detail?: string): Promise<T> {
    try {
      const result = await work();
      await audit.record({ event, outcome: 'ok', client: clientAddress(req), detail });
      return result;
    } catch (err) {
      await audit.record({ event, outcome: 'error', client: clientAddress(req), detail: (err as Error).message });
      throw err;
    }
  }

  /**
   * A password re-entered for a sensitive change: throttled like any password attempt. A wrong one
   * is a 403 naming the field, not a 401: the caller is signed in, and the portal ends its session
   * on any 401.
   */
  const withPassword = <T>(req: http.IncomingMessage, event: string, password: string, work: () => Promise<T>) =>
    guarded(req, event, async () => {
      await deps.verifyPassword(password).catch((err) => {
        throw err instanceof PiccoloError && err.status === 401 ? new ForbiddenError('password: the password is not right') : err;
      });
      return work();
    });

  // A browser sends no Origin on a same-origin GET: the status (which only informs) reads the
  // host and scheme the request came by instead. Registration and sign-in, POSTs, use Origin.
  const status = (req: http.IncomingMessage) => {
    const origin = header(req, 'origin') ?? (header(req, 'host') ? `${deps.isHttps(req) ? 'https' : 'http'}://${header(req, 'host')}` : undefined);
    return sf().status(relyingPartyOf(origin, header(req, 'host')));
  };

  /**
   * The ticket is checked first, outside the throttle: it is 256 random bits, not a secret anyone
   * guesses, and one that merely expired must not cost a person an attempt. Still audited.
   */
  const secondStep = async <T>(req: http.IncomingMessage, ticket: string, attempt: () => Promise<T>) => {
    deps.assertUnlocked();
    try {
      sf().tickets.get(ticket, clientAddress(req));
    } catch (err) {
      await audit.record({ event: 'auth.login.second-factor', outcome: 'denied', client: clientAddress(req), detail: (err as PiccoloError).code });
      throw err;
    }
    return guarded(req, 'auth.login.second-factor', attempt, { throttleKey: secondFactorThrottleKey, detail: (method) => String(method) });
  };

  return router
    .on('GET', '/api/v1/auth/second-factor', (req) => {
      requireSession(req);
      return { body: status(req) };
    })
    .on('POST', '/api/v1/auth/totp/setup', async (req) => {
      const session = requireSession(req);
      const { password } = await schema.body<{ password: string }>(req, 'totpSetup');
      return { body: await withPassword(req, 'auth.totp.setup', password, async () => sf().startTotp(session.id)) };
    })
    .on('POST', '/api/v1/auth/totp/confirm', async (req) => {
      const session = requireSession(req);
      const { code } = await schema.body<{ code: string }>(req, 'totpConfirm');
      const result = await change(req, 'auth.totp.enable', () => sf().confirmTotp(session.id, code.replace(/\s/g, '')));
      return { body: { status: status(req), ...result } };
    })
    .on('POST', '/api/v1/auth/totp/disable', async (req) => {
      requireSession(req);
      const { password } = await schema.body<{ password: string; confirm: true }>(req, 'totpDisable');
      await withPassword(req, 'auth.totp.disable', password, () => sf().disableTotp());
      return { body: status(req) };
    })
    .on('POST', '/api/v1/auth/recovery-codes', async (req) => {
      requireSession(req);
      const { password } = await schema.body<{ password: string }>(req, 'regenerateRecoveryCodes');
      return { body: { recoveryCodes: await withPassword(req, 'auth.recovery-codes.regenerate', password, () => sf().regenerateRecoveryCodes()) } };
    })
    .on('POST', '/api/v1/auth/passkeys/register/options', async (req) => {
      const session = requireSession(req);
      return { body: await sf().passkeyRegistrationOptions(session.id, relyingPartyOfRequest(req)) };
    })
    .on('POST', '/api/v1/auth/passkeys/register', async (req) => {
      const session = requireSession(req);
      const body = await schema.body<{ response: RegistrationResponseJSON; name: string }>(req, 'registerPasskey');
      const result = await change(req, 'auth.passkey.add', () => sf().registerPasskey(session.id, relyingPartyOfRequest(req), body.response, body.name), body.name);
      return { status: 201, body: { status: status(req), ...result } };
    })
    .on('DELETE', '/api/v1/auth/passkeys/:id', async (req, { id }) => {
      requireSession(req);
      const { password } = await schema.body<{ password: string; confirm: true }>(req, 'removePasskey');
      await withPassword(req, 'auth.passkey.remove', password, () => sf().removePasskey(id!));
      return { body: status(req) };
    })

    .on('POST', '/api/v1/auth/login/second-factor', async (req) => {
      const { ticket, code } = await schema.body<{ ticket: string; code: string }>(req, 'loginSecondFactor');
      await secondStep(req, ticket, () => sf().signInWithCode(ticket, clientAddress(req), code));
      return deps.signIn(req);
    })
    .on('POST', '/api/v1/auth/login/passkey/options', async (req) => {
      const { ticket } = await schema.body<{ ticket: string }>(req, 'loginPasskeyOptions');
      deps.assertUnlocked();
      return { body: await sf().passkeySignInOptions(ticket, clientAddress(req), relyingPartyOfRequest(req)) };
    })
    .on('POST', '/api/v1/auth/login/passkey', async (req) => {
      const { ticket, response } = await schema.body<{ ticket: string; response: AuthenticationResponseJSON }>(req, 'loginPasskey');
      await secondStep(req, ticket, async () => {
        await sf().signInWithPasskey(ticket, clientAddress(req), relyingPartyOfRequest(req), response);
        return 'passkey';
      });
      return deps.signIn(req);
    });
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
