// Server-side sessions. The cookie carries only a random id; the CSRF token lives with the session
// and must come back in a header on every state-changing request. Sessions live in memory: a
// daemon restart signs everyone out, which is the safe direction.
import { randomBytes } from 'node:crypto';
import { equalSecrets } from '../../common/secrets.js';

export interface Session {
  id: string;
  user: string;
  csrfToken: string;
  createdAt: number;
  lastSeen: number;
}

/** Why a session ended: signed out, all sessions ended (lock, password change), or timed out. */
export type SessionEndReason = 'logout' | 'all' | 'expired';

export type SessionEndListener = (session: Session, reason: SessionEndReason) => void;

export interface SessionStoreOptions {
  now: () => number;
  /** A session ends this long after sign-in, however active. */
  maxAgeMs?: number;
  /** ...or after this long without a request. */
  idleMs?: number;
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  /** Told when a session ends, so what it opened (terminals, event streams) closes with it. */
  private readonly endListeners = new Set<SessionEndListener>();
  readonly maxAgeMs: number;
  private readonly idleMs: number;

  constructor(private readonly options: SessionStoreOptions) {
    this.maxAgeMs = options.maxAgeMs ?? 12 * 60 * 60_000;
    this.idleMs = options.idleMs ?? 60 * 60_000;
  }

  create(user: string): Session {
    const now = this.options.now();
    const session = { id: token(), user, csrfToken: token(), createdAt: now, lastSeen: now };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session for this id, refreshed; undefined when unknown or expired. */
  get(id: string | undefined): Session | undefined {
    const session = this.peek(id);
    if (session) session.lastSeen = this.options.now();
    return session;
  }

  /** The live session for this id, without counting as activity (for periodic checks). */
  peek(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const session = this.sessions.get(id);
    if (!session) return undefined;
    const now = this.options.now();
    if (now - session.createdAt > this.maxAgeMs || now - session.lastSeen > this.idleMs) {
      this.end(session, 'expired');
      return undefined;
    }
    return session;
  }

  destroy(id: string): void {
    const session = this.sessions.get(id);
    if (session) this.end(session, 'logout');
  }

  /** After a password change or a lock, every session ends. */
  destroyAll(): void {
    for (const session of [...this.sessions.values()]) this.end(session, 'all');
  }

  onEnd(listener: SessionEndListener): () => void {
    this.endListeners.add(listener);
    return () => void this.endListeners.delete(listener);
  }

  private end(session: Session, reason: SessionEndReason): void {
    this.sessions.delete(session.id);
    for (const listener of [...this.endListeners]) listener(session, reason);
  }
}

export function csrfMatches(session: Session, presented: string | undefined): boolean {
  return presented !== undefined && equalSecrets(session.csrfToken, presented);
}

function token(): string {
  return randomBytes(32).toString('base64url');
}
