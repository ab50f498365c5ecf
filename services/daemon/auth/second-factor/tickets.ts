// Sign-in tickets: the password was right, the second factor is still to come. A ticket is a
// random id, held in memory only (a restart means entering the password again), bound to the
// client address that gave the password, short-lived, one use, and good for a few attempts.
import { randomBytes } from 'node:crypto';
import { PiccoloError } from '../../../common/errors.js';
import { equalSecrets } from '../../../common/secrets.js';

export const TICKET_TTL_MS = 5 * 60_000;
export const TICKET_ATTEMPTS = 5;

/** The portal answers it by showing the password step again. */
export class SecondFactorExpiredError extends PiccoloError {
  constructor() {
    super(401, 'second_factor_expired', 'this sign-in has expired or was used up; enter the password again');
  }
}

export interface Ticket {
  id: string;
  client: string;
  expiresAt: number;
  attemptsLeft: number;
  /** The WebAuthn challenge last handed out for this ticket, if any. */
  passkeyChallenge?: string;
}

export class SignInTickets {
  private readonly tickets = new Map<string, Ticket>();

  constructor(private readonly options: { now: () => number; ttlMs?: number; attempts?: number }) {}

  get ttlMs(): number {
    return this.options.ttlMs ?? TICKET_TTL_MS;
  }

  issue(client: string): Ticket {
    this.prune();
    const ticket = { id: randomBytes(32).toString('base64url'), client, expiresAt: this.options.now() + this.ttlMs, attemptsLeft: this.options.attempts ?? TICKET_ATTEMPTS };
    this.tickets.set(ticket.id, ticket);
    return ticket;
  }

  /** The live ticket, or a SecondFactorExpiredError when it is unknown, expired, used up or another client's. */
  get(id: string, client: string): Ticket {
    const ticket = this.tickets.get(id);
    if (!ticket || ticket.expiresAt <= this.options.now() || ticket.attemptsLeft <= 0) {
      this.tickets.delete(id);
      throw new SecondFactorExpiredError();
    }
    // Another address holding the id learnt it from somewhere it should not have: the ticket is spent.
    if (!equalSecrets(ticket.client, client)) {
      this.tickets.delete(id);
      throw new SecondFactorExpiredError();
    }
    return ticket;
  }

  /** A wrong code or passkey: one attempt fewer; the last one ends the ticket. */
  failed(ticket: Ticket): void {
    ticket.attemptsLeft--;
    if (ticket.attemptsLeft <= 0) this.tickets.delete(ticket.id);
  }

  /** Signed in: the ticket never works again. */
  consume(ticket: Ticket): void {
    this.tickets.delete(ticket.id);
  }

  /** Lock, password reset: sign-ins half done end too. */
  clear(): void {
    this.tickets.clear();
  }

  get size(): number {
    return this.tickets.size;
  }

  private prune(): void {
    const now = this.options.now();
    for (const [id, ticket] of this.tickets) if (ticket.expiresAt <= now) this.tickets.delete(id);
  }
}
