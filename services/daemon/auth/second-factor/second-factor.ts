// The second factor: enrolment of TOTP and passkeys, the recovery codes, and the second step of a
// sign-in. What is enrolled lives in the control store's auth section (encrypted control
// volume); what is half done (a TOTP secret not confirmed yet, a WebAuthn challenge, a sign-in
// ticket) lives in memory only. Checks that consume something (a TOTP step, a recovery code, a
// passkey's counter) run inside the store's commit, which runs one at a time: two requests with
// the same code cannot both pass.
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { BadRequestError, ConflictError, NotFoundError, UnauthorizedError } from '../../../common/errors.js';
import type { AuthSettings, ControlDocument, PasskeyRecord } from '../../control-document.js';
import type { ControlStore } from '../../store/store.js';
import * as webauthn from './passkeys.js';
import { assertUsable, type RelyingParty } from './passkeys.js';
import { findRecoveryCode, looksLikeRecoveryCode, newRecoveryCodes } from './recovery-codes.js';
import { SignInTickets } from './tickets.js';
import { acceptTotp, isTotpCode, newTotpSecret, totpUri } from './totp.js';

export type SecondFactorMethod = 'totp' | 'passkey' | 'recovery';

export interface SecondFactorChallenge {
  ticket: string;
  methods: SecondFactorMethod[];
  expiresInSeconds: number;
}

export interface PasskeyView {
  id: string;
  name: string;
  rpId: string;
  transports: string[];
  createdAt: string;
  lastUsedAt: string | null;
}

export interface SecondFactorStatus {
  enabled: boolean;
  totp: { enabled: boolean; enabledAt: string | null };
  passkeys: PasskeyView[];
  recoveryCodesLeft: number;
  passkeyHost: { ok: true; rpId: string } | { ok: false; problem: string };
}

export interface SecondFactorOptions {
  /** The control store; throws a LockedError while the device is locked (vault.controlStore). */
  store: () => ControlStore<ControlDocument>;
  now: () => number;
  /** A getter: the device can be renamed; it names the TOTP entry and the passkeys' relying party. */
  deviceName: () => string;
  tickets?: SignInTickets;
}

/** An enrolment begun and not finished: per session, dropped after this long. */
const PENDING_TTL_MS = 10 * 60_000;

interface Pending<T> {
  value: T;
  expiresAt: number;
}

const CODE_HELP = 'code: enter the 6 digits the authenticator app shows, or a recovery code such as ABCDE-FGH23';

export class SecondFactor {
  readonly tickets: SignInTickets;
  private readonly pendingTotp = new Map<string, Pending<string>>();
  private readonly pendingPasskey = new Map<string, Pending<{ challenge: string; rpId: string; origin: string }>>();

  constructor(private readonly options: SecondFactorOptions) {
    this.tickets = options.tickets ?? new SignInTickets({ now: options.now });
  }

  private get auth(): AuthSettings {
    return this.options.store().data.auth as AuthSettings;
  }

  private commit(mutate: (auth: AuthSettings) => void): Promise<number> {
    return this.options.store().commit((draft) => mutate(draft.auth));
  }

  private iso(): string {
    return new Date(this.options.now()).toISOString();
  }

  /** Whether a sign-in needs a second step. */
  enrolled(): boolean {
    return hasFactor(this.auth);
  }

  status(rp: RelyingParty): SecondFactorStatus {
    const auth = this.auth;
    return {
      enabled: hasFactor(auth),
      totp: { enabled: auth.totp !== undefined, enabledAt: auth.totp?.enabledAt ?? null },
      passkeys: (auth.passkeys ?? []).map(({ id, name, rpId, transports, createdAt, lastUsedAt }) => ({ id, name, rpId, transports: [...transports], createdAt, lastUsedAt })),
      recoveryCodesLeft: auth.recoveryCodes?.length ?? 0,
      passkeyHost: rp.ok ? { ok: true, rpId: rp.rpId } : { ok: false, problem: rp.problem },
    };
  }

  // --- TOTP enrolment -------------------------------------------------------------------------

  /** A new secret for this session to confirm; nothing changes until it is confirmed. */
  startTotp(sessionId: string): { secret: string; uri: string } {
    if (this.auth.totp) throw new ConflictError('an authenticator app is already set up; turn it off first to set up another');
    const secret = newTotpSecret();
    this.pendingTotp.set(sessionId, { value: secret, expiresAt: this.options.now() + PENDING_TTL_MS });
    return { secret, uri: totpUri(secret, this.options.deviceName()) };
  }

  /** Turns TOTP on once a code from the app proves it holds the secret. */
  async confirmTotp(sessionId: string, code: string): Promise<{ recoveryCodes?: string[] }> {
    const secret = this.takePending(this.pendingTotp, sessionId, 'no authenticator setup is in progress; start again');
    if (!isTotpCode(code)) throw new BadRequestError('code: enter the 6 digits the authenticator app shows');
    const step = acceptTotp(secret, code, this.options.now(), 0);
    // Enrolling one's own app is not a guess at a secret: a 400, so the portal keeps the session.
    if (step === undefined) throw new BadRequestError('code: that code is not right; check that the phone shows the time correctly and try the next code');
    let recoveryCodes: string[] | undefined;
    await this.commit((auth) => {
      if (auth.totp) throw new ConflictError('an authenticator app is already set up');
      auth.totp = { secret, enabledAt: this.iso(), lastStep: step };
      recoveryCodes = ensureRecoveryCodes(auth);
    });
    this.pendingTotp.delete(sessionId);
    return recoveryCodes ? { recoveryCodes } : {};
  }

  async disableTotp(): Promise<void> {
    await this.commit((auth) => {
      if (!auth.totp) throw new ConflictError('no authenticator app is set up');
      delete auth.totp;
      dropRecoveryCodesIfAlone(auth);
    });
  }

  /** A new set of recovery codes; the old ones stop working. */
  async regenerateRecoveryCodes(): Promise<string[]> {
    const { codes, hashes } = newRecoveryCodes();
    await this.commit((auth) => {
      if (!hasFactor(auth)) throw new ConflictError('recovery codes come with a second factor: set up an authenticator app or a passkey first');
      auth.recoveryCodes = hashes;
    });
    return codes;
  }

  // --- passkey enrolment ----------------------------------------------------------------------

  async passkeyRegistrationOptions(sessionId: string, rp: RelyingParty) {
    assertUsable(rp);
    const options = await webauthn.registrationOptions(rp, this.auth.passkeys ?? [], this.options.deviceName());
    this.pendingPasskey.set(sessionId, { value: { challenge: options.challenge, rpId: rp.rpId, origin: rp.origin }, expiresAt: this.options.now() + PENDING_TTL_MS });
    return options;
  }

  async registerPasskey(sessionId: string, rp: RelyingParty, response: RegistrationResponseJSON, name: string): Promise<{ passkey: PasskeyView; recoveryCodes?: string[] }> {
    assertUsable(rp);
    const label = name.trim();
    if (!label) throw new BadRequestError('name: give the passkey a name, such as "Phone" or "Laptop"');
    const pending = this.takePending(this.pendingPasskey, sessionId, 'no passkey registration is in progress; start again');
    if (pending.rpId !== rp.rpId || pending.origin !== rp.origin) throw new BadRequestError('host: the registration was started from another host name; start again');
    this.pendingPasskey.delete(sessionId);
    const verified = await webauthn.verifyRegistration(rp, pending.challenge, response);
    const record: PasskeyRecord = { ...verified, name: label, rpId: rp.rpId, createdAt: this.iso(), lastUsedAt: null };
    let recoveryCodes: string[] | undefined;
    await this.commit((auth) => {
      const passkeys = auth.passkeys ?? [];
      if (passkeys.some((p) => p.id === record.id)) throw new ConflictError('this passkey is already registered');
      auth.passkeys = [...passkeys, record];
      recoveryCodes = ensureRecoveryCodes(auth);
    });
    const { publicKey: _key, counter: _counter, ...view } = record;
    return recoveryCodes ? { passkey: view, recoveryCodes } : { passkey: view };
  }

  async removePasskey(id: string): Promise<void> {
    await this.commit((auth) => {
      const passkeys = auth.passkeys ?? [];
      if (!passkeys.some((p) => p.id === id)) throw new NotFoundError(`no passkey with id ${id}`);
      auth.passkeys = passkeys.filter((p) => p.id !== id);
      if (!auth.passkeys.length) delete auth.passkeys;
      dropRecoveryCodesIfAlone(auth);
    });
  }

  /** Password reset with the recovery key: every factor goes. Returns whether there was any. */
  async clearAll(): Promise<boolean> {
    const had = hasFactor(this.auth) || (this.auth.recoveryCodes?.length ?? 0) > 0;
    if (had) {
      await this.commit((auth) => {
        delete auth.totp;
        delete auth.passkeys;
        delete auth.recoveryCodes;
      });
    }
    this.forgetPending();
    return had;
  }

  /** Lock, reset: half-done enrolments and sign-ins end. */
  forgetPending(): void {
    this.pendingTotp.clear();
    this.pendingPasskey.clear();
    this.tickets.clear();
  }

  // --- sign-in --------------------------------------------------------------------------------

  /** After a right password: a ticket for the second step, or undefined when none is enrolled. */
  challenge(client: string, rp: RelyingParty): SecondFactorChallenge | undefined {
    const auth = this.auth;
    if (!hasFactor(auth)) return undefined;
    const methods: SecondFactorMethod[] = [];
    if (auth.totp) methods.push('totp');
    if (rp.ok && (auth.passkeys ?? []).some((p) => p.rpId === rp.rpId)) methods.push('passkey');
    if (auth.recoveryCodes?.length) methods.push('recovery');
    const ticket = this.tickets.issue(client);
    return { ticket: ticket.id, methods, expiresInSeconds: Math.floor(this.tickets.ttlMs / 1000) };
  }

  /** Checks a TOTP or recovery code against a ticket; on success the ticket is spent. */
  async signInWithCode(ticketId: string, client: string, code: string): Promise<'totp' | 'recovery'> {
    const ticket = this.tickets.get(ticketId, client);
    const trimmed = code.replace(/\s/g, '');
    const totp = isTotpCode(trimmed);
    if (!totp && !looksLikeRecoveryCode(code)) throw new BadRequestError(CODE_HELP);
    try {
      await this.commit((auth) => {
        if (totp) {
          const step = auth.totp ? acceptTotp(auth.totp.secret, trimmed, this.options.now(), auth.totp.lastStep) : undefined;
          if (step === undefined) throw new UnauthorizedError('code: wrong or already used code; wait for the next one');
          auth.totp!.lastStep = step;
        } else {
          const index = findRecoveryCode(auth.recoveryCodes ?? [], code);
          if (index < 0) throw new UnauthorizedError('code: this recovery code is wrong or was used already');
          auth.recoveryCodes = auth.recoveryCodes!.filter((_, i) => i !== index);
        }
      });
    } catch (err) {
      if (err instanceof UnauthorizedError) this.tickets.failed(ticket);
      throw err;
    }
    this.tickets.consume(ticket);
    return totp ? 'totp' : 'recovery';
  }

  async passkeySignInOptions(ticketId: string, client: string, rp: RelyingParty) {
    const ticket = this.tickets.get(ticketId, client);
    assertUsable(rp);
    const passkeys = this.auth.passkeys ?? [];
    if (!passkeys.some((p) => p.rpId === rp.rpId)) throw new BadRequestError(`host: no passkey is registered for ${rp.rpId}; use the code from the authenticator app or a recovery code`);
    const options = await webauthn.authenticationOptions(rp, passkeys);
    ticket.passkeyChallenge = options.challenge;
    return options;
  }

  async signInWithPasskey(ticketId: string, client: string, rp: RelyingParty, response: AuthenticationResponseJSON): Promise<void> {
    const ticket = this.tickets.get(ticketId, client);
    assertUsable(rp);
    const challenge = ticket.passkeyChallenge;
    if (!challenge) throw new BadRequestError('ticket: ask for the passkey options of this sign-in first');
    // A challenge answers once, right or wrong.
    ticket.passkeyChallenge = undefined;
    try {
      const used = await webauthn.verifyAuthentication(rp, challenge, this.auth.passkeys ?? [], response);
      await this.commit((auth) => {
        const passkey = auth.passkeys?.find((p) => p.id === used.id);
        if (!passkey) throw new UnauthorizedError('response: this passkey was removed meanwhile');
        // A counter that did not grow means a cloned authenticator (simplewebauthn checks it against
        // the stored one; this re-checks inside the commit against a concurrent sign-in).
        if (passkey.counter !== 0 && used.counter <= passkey.counter) throw new UnauthorizedError('response: the passkey signature counter went backwards');
        passkey.counter = used.counter;
        passkey.lastUsedAt = this.iso();
      });
    } catch (err) {
      if (err instanceof UnauthorizedError) this.tickets.failed(ticket);
      throw err;
    }
    this.tickets.consume(ticket);
  }

  private takePending<T>(map: Map<string, Pending<T>>, sessionId: string, missing: string): T {
    const pending = map.get(sessionId);
    if (!pending || pending.expiresAt <= this.options.now()) {
      map.delete(sessionId);
      throw new ConflictError(missing);
    }
    return pending.value;
  }
}

function hasFactor(auth: Readonly<AuthSettings>): boolean {
  return auth.totp !== undefined || (auth.passkeys?.length ?? 0) > 0;
}

/** The first factor enrolled brings the recovery codes; returns them when it made new ones. */
function ensureRecoveryCodes(auth: AuthSettings): string[] | undefined {
  if (auth.recoveryCodes?.length) return undefined;
  const { codes, hashes } = newRecoveryCodes();
  auth.recoveryCodes = hashes;
  return codes;
}

/** With no factor left, recovery codes would guard nothing: they go too. */
function dropRecoveryCodesIfAlone(auth: AuthSettings): void {
  if (!hasFactor(auth)) delete auth.recoveryCodes;
}
