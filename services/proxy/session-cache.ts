// Session verdicts from the daemon, remembered briefly: the auth gate would otherwise ask the
// daemon on every request. A signed-out session keeps working for at most VALID_MS. Concurrent
// checks of one session share a single call.
import type { Logger } from '../common/logger.js';
import type { DaemonClient, SessionVerdict } from './daemon-client.js';

const VALID_MS = 5000;
const INVALID_MS = 1000;
const MAX_ENTRIES = 10_000;

export class SessionCache {
  private readonly verdicts = new Map<string, { verdict: SessionVerdict; until: number }>();
  private readonly inFlight = new Map<string, Promise<SessionVerdict | 'unavailable'>>();

  constructor(private readonly deps: { daemon: Pick<DaemonClient, 'checkSession'>; logger: Logger; now?: () => number }) {}

  check(sessionId: string): Promise<SessionVerdict | 'unavailable'> | SessionVerdict {
    const now = (this.deps.now ?? Date.now)();
    const cached = this.verdicts.get(sessionId);
    if (cached && cached.until > now) return cached.verdict;
    const pending = this.inFlight.get(sessionId);
    if (pending) return pending;
    const call = this.deps.daemon
      .checkSession(sessionId)
      .then((verdict) => {
        if (this.verdicts.size >= MAX_ENTRIES) this.verdicts.clear();
        this.verdicts.set(sessionId, { verdict, until: now + (verdict.valid ? VALID_MS : INVALID_MS) });
        return verdict;
      })
      .catch((err) => {
        this.deps.logger.warn('session check failed', { err });
        return 'unavailable' as const;
      })
      .finally(() => this.inFlight.delete(sessionId));
    this.inFlight.set(sessionId, call);
    return call;
  }
}
