// The daemon's HTTP surface: the portal page and the API under /api/v1. Every body is checked
// against the OpenAPI document (api/schema.ts) before a handler sees it.
import type http from 'node:http';
import { randomBytes } from 'node:crypto';
import { serialize as serializeCookie } from 'cookie';
import { BadRequestError, ConflictError, ForbiddenError, NotFoundError, PiccoloError, UnauthorizedError, UnsupportedMediaTypeError } from '../../common/errors.js';
import { Router, type Reply } from '../../common/http.js';
import type { Logger } from '../../common/logger.js';
import { equalSecrets } from '../../common/secrets.js';
import { VERSION } from '../../common/version.js';
import type { AuditLog } from '../auth/audit.js';
import type { ClaimCode } from '../auth/claim.js';
import { PASSWORD_RULES, assertStrongPassword } from '../auth/password-policy.js';
import { csrfMatches, type Session, type SessionStore } from '../auth/sessions.js';
import type { AttemptThrottle } from '../auth/throttle.js';
import { addSecondFactorRoutes, relyingPartyOfRequest, type Guarded } from '../auth/second-factor/routes.js';
import type { SecondFactor } from '../auth/second-factor/second-factor.js';
import { recordPasswordChange } from '../cluster/password-change.js';
import type { Vault } from '../vault.js';
import type { BackupService } from '../backup/backup-service.js';
import type { PortalAssets } from './portal-assets.js';
import type { ApiSchema } from './schema.js';
import { SESSION_COOKIE } from '../../common/route-table.js';
import { clientAddress, headerOf, isHttps, sessionIdOf } from './request.js';

const SETUP_TOKEN_TTL_MS = 30 * 60_000;

export interface ApiDeps {
  schema: ApiSchema;
  vault: Vault;
  /** Stopped before a lock: running containers hold the encrypted volumes open. */
  apps: { suspend(): Promise<void> };
  sessions: SessionStore;
  throttle: AttemptThrottle;
  claim: ClaimCode;
  audit: AuditLog;
  /** TOTP and passkeys: when enrolled, login and unlock answer with a ticket for a second step. */
  secondFactor: SecondFactor;
  logger: Logger;
  now: () => number;
  /** The device's current name (a person may change it): apps answer at <listener>-<app>.<name>.local. */
  deviceName: () => string;
  /** The portal's shell page and hashed assets (embedded in the bundle). */
  portal: PortalAssets;
  /** Backup of the whole device, and restore onto a fresh one. */
  backup: BackupService;
}

interface PendingSetup {
  token: string;
  recoveryPhrase: string;
  expiresAt: number;
}

export function daemonRoutes(deps: ApiDeps): Router {
  const { schema, vault, sessions, throttle, claim, audit, now } = deps;
  let pendingSetup: PendingSetup | undefined;

  /** Runs an attempt at a secret (claim code, password, recovery key) under the throttle, audited. */
  // throttleKey: second-factor attempts count apart, so that a right password does not reset them.
  const guarded: Guarded = async (req, event, attempt, options = {}) => {
    const client = clientAddress(req);
    const key = options.throttleKey?.(client) ?? client;
    throttle.check(key);
    try {
      const result = await attempt();
      throttle.success(key);
      await audit.record({ event, outcome: 'ok', client, detail: options.detail?.(result) });
      return result;
    } catch (err) {
      const wrongSecret = err instanceof PiccoloError && [400, 401, 403].includes(err.status);
      if (wrongSecret) throttle.failure(key);
      await audit.record({ event, outcome: wrongSecret ? 'denied' : 'error', client, detail: err instanceof PiccoloError ? err.code : undefined });
      throw err;
    }
  };

  const requireSession = sessionGuard(sessions);

  function signIn(req: http.IncomingMessage, status = 200, extra: Record<string, unknown> = {}): Reply {
    const session = sessions.create('admin');
    const cookie = serializeCookie(SESSION_COOKIE, session.id, {
      httpOnly: true,
      sameSite: 'strict',
      secure: isHttps(req),
      path: '/',
      maxAge: Math.floor(sessions.maxAgeMs / 1000),
      domain: cookieDomain(req, deps.deviceName()),
    });
    return { status, headers: { 'set-cookie': cookie }, body: { authenticated: true, user: session.user, csrfToken: session.csrfToken, ...extra } };
  }

  /** After a right password: the session, or with a second factor enrolled a ticket for the second step (no cookie). */
  function signInOrChallenge(req: http.IncomingMessage, extra: Record<string, unknown> = {}): Reply {
    const challenge = deps.secondFactor.challenge(clientAddress(req), relyingPartyOfRequest(req));
    return challenge ? { body: { authenticated: false, ...extra, secondFactor: challenge } } : signIn(req, 200, extra);
  }
  const challengeDetail = { detail: (reply: Reply) => ((reply.body as { secondFactor?: unknown }).secondFactor ? 'second factor required' : undefined) };

  const router = new Router(deps.logger)
    .on('GET', '/', (req) => deps.portal.shell(req))
    .on('GET', '/assets/:file', (req) => {
      const reply = deps.portal.asset(req, new URL(req.url ?? '/', 'http://x').pathname);
      if (!reply) throw new NotFoundError('no such portal file; reload the page to get the current portal');
      return reply;
    })
    // Every other page path is the portal's own route (/apps, /system...): the shell draws it.
    .fallback((req, pathname) => (isPortalPath(pathname) ? deps.portal.shell(req) : undefined))
    .on('GET', '/health/live', () => ({ body: { live: true } }))
    .on('GET', '/api/v1/version', () => ({ body: { name: 'piccolod', version: VERSION, api: 'v1', node: process.version } }))

    .on('GET', '/api/v1/events', () => ({ status: 426, headers: { upgrade: 'websocket' }, body: { error: { code: 'upgrade_required', message: 'connect with a WebSocket' } } }))

    .on('GET', '/api/v1/setup/status', () => ({
      body: { state: vault.state, reason: vault.reason, tpm: vault.tpmAvailable, passwordRules: PASSWORD_RULES },
    }))
    .on('POST', '/api/v1/setup/claim', async (req) => {
      const { claimCode } = await schema.body<{ claimCode: string }>(req, 'setupClaim');
      if (vault.state !== 'unclaimed') throw new ConflictError('this device is already set up');
      return guarded(req, 'setup.claim', async () => {
        if (!claim.matches(claimCode)) throw new ForbiddenError('wrong claim code; it is shown on the device console');
        pendingSetup = { token: randomBytes(32).toString('base64url'), recoveryPhrase: vault.newRecoveryPhrase(), expiresAt: now() + SETUP_TOKEN_TTL_MS };
        return { body: { setupToken: pendingSetup.token, recoveryKey: pendingSetup.recoveryPhrase, expiresInSeconds: SETUP_TOKEN_TTL_MS / 1000 } };
      });
    })
    .on('POST', '/api/v1/setup', async (req) => {
      const body = await schema.body<{ setupToken: string; password: string }>(req, 'setup');
      if (vault.state !== 'unclaimed') throw new ConflictError('this device is already set up');
      return guarded(req, 'setup', async () => {
        const pending = pendingSetup;
        if (!pending || pending.expiresAt < now() || !equalSecrets(pending.token, body.setupToken)) {
          throw new ForbiddenError('unknown or expired setup token; enter the claim code again');
        }
        assertStrongPassword(body.password);
        await vault.setup(body.password, pending.recoveryPhrase);
        pendingSetup = undefined;
        await claim.consume();
        return signIn(req, 201, { state: vault.state });
      });
    })

    .on('POST', '/api/v1/backup', async (req) => {
      requireSession(req);
      const { password } = await schema.body<{ password: string }>(req, 'createBackup');
      const backup = await guarded(req, 'backup', () => deps.backup.backup(password), { detail: (made) => `apps: ${made.apps.join(', ') || 'none'}` });
      return {
        headers: { 'content-type': 'application/octet-stream', 'content-disposition': `attachment; filename="${backup.filename}"` },
        body: backup.stream,
      };
    })
    // A fresh device only, after the claim code (its setup token), like setup itself.
    .on('POST', '/api/v1/restore', async (req) => {
      if (vault.state !== 'unclaimed') throw new ConflictError('this device is already set up; restore onto a fresh device');
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      if (type !== 'application/octet-stream') throw new UnsupportedMediaTypeError('application/octet-stream (the backup file)');
      const credentials = schema.value<{ setupToken: string; recoveryKey: string; password: string }>('RestoreCredentials', decodeCredentials(headerOf(req, 'x-restore-credentials')), 'X-Restore-Credentials');
      return guarded(req, 'restore', async () => {
        const pending = pendingSetup;
        if (!pending || pending.expiresAt < now() || !equalSecrets(pending.token, credentials.setupToken)) {
          throw new ForbiddenError('unknown or expired setup token; enter the claim code again');
        }
        assertStrongPassword(credentials.password);
        const totalBytes = Number(req.headers['content-length']) || undefined;
        const manifest = await deps.backup.restore(req, { recoveryKey: credentials.recoveryKey, password: credentials.password, totalBytes });
        pendingSetup = undefined;
        await claim.consume();
        await recordPasswordChange(vault.controlStore, now());
        return signIn(req, 201, { state: vault.state, apps: manifest.apps });
      }, { detail: () => 'restored from a backup' });
    })
    .on('GET', '/api/v1/restore/status', () => ({ body: deps.backup.restoreStatus }))

    .on('GET', '/api/v1/auth/session', (req) => {
      const session = sessions.get(sessionIdOf(req));
      return { body: session ? { authenticated: true, user: session.user, csrfToken: session.csrfToken } : { authenticated: false } };
    })
    .on('POST', '/api/v1/auth/login', async (req) => {
      const { password } = await schema.body<{ password: string }>(req, 'login');
      vault.assertUnlocked();
      return guarded(req, 'auth.login', async () => {
        await vault.verifyPassword(password);
        return signInOrChallenge(req);
      }, challengeDetail);
    })
    .on('POST', '/api/v1/auth/logout', async (req) => {
      const session = requireSession(req);
      sessions.destroy(session.id);
      await audit.record({ event: 'auth.logout', outcome: 'ok', client: clientAddress(req) });
      return { status: 204, headers: { 'set-cookie': serializeCookie(SESSION_COOKIE, '', { path: '/', maxAge: 0 }) } };
    })
    .on('POST', '/api/v1/auth/password', async (req) => {
      requireSession(req);
      const body = await schema.body<{ currentPassword: string; newPassword: string }>(req, 'changePassword');
      assertStrongPassword(body.newPassword);
      return guarded(req, 'auth.password-change', async () => {
        // Recorded inside the change (all or nothing): a full disk leaves the old password working.
        await vault.changePassword(body.currentPassword, body.newPassword, () => recordPasswordChange(vault.controlStore, now()));
        sessions.destroyAll();
        return signIn(req);
      });
    })

    .on('POST', '/api/v1/crypto/unlock', async (req) => {
      const { password } = await schema.body<{ password: string }>(req, 'unlock');
      if (vault.state !== 'locked') throw new ConflictError(`nothing to unlock: the device is ${vault.state}`);
      return guarded(req, 'crypto.unlock', async () => {
        // The volumes open with the password alone; the session still needs the second factor.
        await vault.unlock(password);
        return signInOrChallenge(req, { state: vault.state });
      }, challengeDetail);
    })
    .on('POST', '/api/v1/crypto/lock', async (req) => {
      requireSession(req);
      await schema.body(req, 'lock');
      vault.assertUnlocked();
      await deps.apps.suspend();
      await vault.lock();
      sessions.destroyAll();
      deps.secondFactor.forgetPending();
      await audit.record({ event: 'crypto.lock', outcome: 'ok', client: clientAddress(req) });
      return { body: { state: vault.state } };
    })
    .on('POST', '/api/v1/crypto/recovery-key/rotate', async (req) => {
      requireSession(req);
      const { password } = await schema.body<{ password: string }>(req, 'rotateRecoveryKey');
      return guarded(req, 'crypto.recovery-rotate', async () => ({ body: { recoveryKey: await vault.rotateRecovery(password) } }));
    })
    .on('POST', '/api/v1/crypto/reset-password', async (req) => {
      const body = await schema.body<{ recoveryKey: string; newPassword: string }>(req, 'resetPassword');
      assertStrongPassword(body.newPassword);
      if (vault.state === 'unclaimed') throw new ConflictError('this device is not set up yet');
      return guarded(req, 'crypto.password-reset', async () => {
        await vault.resetPassword(body.recoveryKey, body.newPassword, () => recordPasswordChange(vault.controlStore, now()));
        sessions.destroyAll();
        // The recovery key resets everything: whoever holds it is the owner, lost phone or not.
        if (await deps.secondFactor.clearAll()) {
          await audit.record({ event: 'auth.second-factor.clear', outcome: 'ok', client: clientAddress(req), detail: 'password reset with the recovery key' });
        }
        return signIn(req, 200, { state: vault.state });
      });
    });

  return addSecondFactorRoutes(router, {
    schema,
    secondFactor: () => deps.secondFactor,
    audit,
    requireSession,
    verifyPassword: (password) => vault.verifyPassword(password),
    assertUnlocked: () => vault.assertUnlocked(),
    guarded,
    // With the state, as unlock answers: the portal learns the vault opened at the password step.
    signIn: (req) => signIn(req, 200, { state: vault.state }),
    clientAddress,
    isHttps,
  });
}

/** X-Restore-Credentials: base64url of a JSON object (a header holds no line breaks, and the password may be any text). */
function decodeCredentials(header: string | undefined): unknown {
  if (!header) throw new BadRequestError('X-Restore-Credentials: missing header (base64url JSON with setupToken, recoveryKey, password)');
  try {
    return JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
  } catch {
    throw new BadRequestError('X-Restore-Credentials: not base64url-encoded JSON');
  }
}

/** A path the portal routes in the browser: not the API, not an asset, not a health probe. */
function isPortalPath(pathname: string): boolean {
  return !/^\/(api|assets|health)(\/|$)/.test(pathname) && !pathname.includes('.');
}

/** Checks the caller's session; for state-changing requests also its CSRF token. */
export function sessionGuard(sessions: SessionStore): (req: http.IncomingMessage) => Session {
  return (req) => {
    const session = sessions.get(sessionIdOf(req));
    if (!session) throw new UnauthorizedError('sign in first');
    if (req.method !== 'GET' && !csrfMatches(session, headerOf(req, 'x-csrf-token'))) {
      throw new ForbiddenError('missing or invalid X-CSRF-Token header');
    }
    return session;
  };
}

/**
 * Signed in at <device>.local, the session must also reach <listener>-<app>.<device>.local, where
 * the proxy's auth gate checks it. On any other host (an IP address) the cookie stays host-only.
 */
function cookieDomain(req: http.IncomingMessage, deviceName: string): string | undefined {
  const host = (headerOf(req, 'host') ?? '').replace(/:\d+$/, '').toLowerCase();
  const domain = `${deviceName}.local`;
  return host === domain || host.endsWith(`.${domain}`) ? domain : undefined;
}
