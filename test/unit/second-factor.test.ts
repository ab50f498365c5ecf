// The second factor's parts: TOTP with its replay guard, recovery codes, sign-in tickets, the
// WebAuthn relying party of a request, and the SecondFactor service over a real control store
// (a temp folder), passkeys included through a software authenticator.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TOTP, Secret } from 'otpauth';
import { BadRequestError, ConflictError, UnauthorizedError } from '../../services/common/errors.js';
import { createLogger } from '../../services/common/logger.js';
import { CONTROL_MIGRATIONS, CONTROL_SCHEMA_VERSION, initialControlDocument, type ControlDocument } from '../../services/daemon/control-document.js';
import { relyingPartyOf } from '../../services/daemon/auth/second-factor/passkeys.js';
import { findRecoveryCode, newRecoveryCodes, RECOVERY_CODE_COUNT } from '../../services/daemon/auth/second-factor/recovery-codes.js';
import { SecondFactor } from '../../services/daemon/auth/second-factor/second-factor.js';
import { SecondFactorExpiredError, SignInTickets } from '../../services/daemon/auth/second-factor/tickets.js';
import { acceptTotp, newTotpSecret, totpUri } from '../../services/daemon/auth/second-factor/totp.js';
import { ControlStore } from '../../services/daemon/store/store.js';
import { SoftAuthenticator } from '../support/soft-authenticator.js';

const logger = createLogger({ service: 'test', write: () => {} });
const T0 = Date.UTC(2026, 11, 1, 10, 0, 0);
const codeAt = (secret: string, ms: number) => new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: ms });

async function rejects(promise: Promise<unknown>, type: new (...args: any[]) => Error, pattern?: RegExp): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    assert.instance(err, type);
    if (pattern) assert.match((err as Error).message, pattern);
    return err as Error;
  }
  throw new Error('expected a rejection');
}

test('totp: the current code and one step either side pass; two steps away does not', () => {
  const secret = newTotpSecret();
  assert.match(secret, /^[A-Z2-7]{32}$/);
  const step = Math.floor(T0 / 30_000);
  assert.is(acceptTotp(secret, codeAt(secret, T0), T0, 0), step);
  assert.is(acceptTotp(secret, codeAt(secret, T0 - 30_000), T0, 0), step - 1);
  assert.is(acceptTotp(secret, codeAt(secret, T0 + 30_000), T0, 0), step + 1);
  assert.is(acceptTotp(secret, codeAt(secret, T0 - 60_000), T0, 0), undefined);
  assert.is(acceptTotp(newTotpSecret(), codeAt(secret, T0), T0, 0), undefined);
  assert.is(acceptTotp(secret, 'abcdef', T0, 0), undefined);
});

test('totp: a code of the last accepted step or older is refused (replay), a newer one passes', () => {
  const secret = newTotpSecret();
  const step = acceptTotp(secret, codeAt(secret, T0), T0, 0)!;
  assert.is(acceptTotp(secret, codeAt(secret, T0), T0 + 10_000, step), undefined);
  assert.is(acceptTotp(secret, codeAt(secret, T0 - 30_000), T0, step), undefined);
  assert.is(acceptTotp(secret, codeAt(secret, T0 + 30_000), T0 + 30_000, step), step + 1);
});

test('totp: the URI names the device and carries the secret', () => {
  const secret = newTotpSecret();
  const uri = new URL(totpUri(secret, 'kitchen'));
  assert.is(uri.protocol, 'otpauth:');
  assert.is(uri.searchParams.get('secret'), secret);
  assert.is(uri.searchParams.get('issuer'), 'Piccolo kitchen');
});

test('recovery codes: ten distinct codes, only hashes kept, case and dashes ignored', () => {
  const { codes, hashes } = newRecoveryCodes();
  assert.is(codes.length, RECOVERY_CODE_COUNT);
  assert.is(new Set(codes).size, RECOVERY_CODE_COUNT);
  for (const code of codes) assert.match(code, /^[A-HJKMNP-Z2-9]{5}-[A-HJKMNP-Z2-9]{5}$/);
  assert.not.ok(hashes.some((hash) => codes.some((code) => hash.includes(code.replace('-', '')))));
  assert.is(findRecoveryCode(hashes, codes[3]!), 3);
  assert.is(findRecoveryCode(hashes, ` ${codes[7]!.toLowerCase().replace('-', ' ')} `), 7);
  assert.is(findRecoveryCode(hashes, 'ABCDE-FGH23'), -1);
  assert.is(findRecoveryCode(hashes, '123456'), -1);
});

test('tickets: bound to the client, a few attempts, short-lived, one use', () => {
  let now = T0;
  const tickets = new SignInTickets({ now: () => now, ttlMs: 60_000, attempts: 2 });
  const a = tickets.issue('10.0.0.1');
  assert.is(tickets.get(a.id, '10.0.0.1'), a);
  assert.throws(() => tickets.get(a.id, '10.0.0.2'), (err: unknown) => err instanceof SecondFactorExpiredError);
  // Used from elsewhere once, it is gone for its owner too.
  assert.throws(() => tickets.get(a.id, '10.0.0.1'), (err: unknown) => err instanceof SecondFactorExpiredError);

  const b = tickets.issue('10.0.0.1');
  tickets.failed(b);
  assert.ok(tickets.get(b.id, '10.0.0.1'));
  tickets.failed(b);
  assert.throws(() => tickets.get(b.id, '10.0.0.1'), (err: unknown) => err instanceof SecondFactorExpiredError);

  const c = tickets.issue('10.0.0.1');
  now += 60_000;
  assert.throws(() => tickets.get(c.id, '10.0.0.1'), (err: unknown) => err instanceof SecondFactorExpiredError);
  const d = tickets.issue('10.0.0.1');
  assert.is(tickets.size, 1, 'expired tickets are pruned');
  tickets.consume(d);
  assert.throws(() => tickets.get(d.id, '10.0.0.1'), (err: unknown) => err instanceof SecondFactorExpiredError);
});

test('relying party: a name over https or localhost over http; never an IP address', () => {
  assert.equal(relyingPartyOf('https://piccolo.local', 'piccolo.local'), { ok: true, rpId: 'piccolo.local', origin: 'https://piccolo.local' });
  assert.equal(relyingPartyOf('http://localhost:8000', 'localhost:8000'), { ok: true, rpId: 'localhost', origin: 'http://localhost:8000' });
  assert.equal(relyingPartyOf('https://portal.example.com:8443', undefined), { ok: true, rpId: 'portal.example.com', origin: 'https://portal.example.com:8443' });
  for (const [origin, host, problem] of [
    ['http://192.168.1.20', '192.168.1.20', /not by an IP address/],
    ['https://[::1]:8443', '[::1]:8443', /not by an IP address/],
    ['http://piccolo.local', 'piccolo.local', /secure connection.*https:\/\/piccolo\.local/],
    ['https://evil.example', 'piccolo.local', /not the host/],
    [undefined, 'piccolo.local', /no Origin/],
    ['null', 'piccolo.local', /not a URL/],
  ] as const) {
    const rp = relyingPartyOf(origin, host);
    assert.is(rp.ok, false, String(origin));
    assert.match((rp as { problem: string }).problem, problem);
  }
});

async function service() {
  let now = T0;
  const store = await ControlStore.open<ControlDocument>({
    dir: path.join(mkdtempSync(path.join(tmpdir(), 'piccolo-2fa-')), 'store'),
    logger,
    schemaVersion: CONTROL_SCHEMA_VERSION,
    migrations: CONTROL_MIGRATIONS,
    initial: initialControlDocument,
  });
  const sf = new SecondFactor({ store: () => store, now: () => now, deviceName: () => 'piccolo' });
  return { sf, store, clock: { advance: (ms: number) => (now += ms), get now() { return now; } } };
}

const CLIENT = '192.0.2.7';
const LOCAL = relyingPartyOf('http://localhost:8000', 'localhost:8000');

async function enrolTotp(sf: SecondFactor, now: number) {
  const { secret } = sf.startTotp('session-1');
  const { recoveryCodes } = await sf.confirmTotp('session-1', codeAt(secret, now));
  return { secret, recoveryCodes: recoveryCodes! };
}

test('service: TOTP is on only once a code confirms it; the first factor brings recovery codes', async () => {
  const { sf, store, clock } = await service();
  assert.is(sf.challenge(CLIENT, LOCAL), undefined, 'no factor: no second step');
  const { secret, uri } = sf.startTotp('session-1');
  assert.match(uri, new RegExp(`secret=${secret}`));
  assert.not.ok(sf.enrolled(), 'pending until confirmed');
  await rejects(sf.confirmTotp('session-2', codeAt(secret, clock.now)), ConflictError, /no authenticator setup/);
  await rejects(sf.confirmTotp('session-1', codeAt(newTotpSecret(), clock.now)), BadRequestError, /^code: /);
  await rejects(sf.confirmTotp('session-1', '12345'), BadRequestError, /^code: /);
  const { recoveryCodes } = await sf.confirmTotp('session-1', codeAt(secret, clock.now));
  assert.is(recoveryCodes!.length, 10);
  assert.ok(sf.enrolled());
  assert.is(store.data.auth.totp!.secret, secret);
  assert.is(store.data.auth.recoveryCodes!.length, 10);
  assert.not.ok(JSON.stringify(store.data).includes(recoveryCodes![0]!.replace('-', '')), 'codes are stored hashed');
  assert.throws(() => sf.startTotp('session-1'), (err: unknown) => err instanceof ConflictError);
  const status = sf.status(LOCAL);
  assert.equal({ enabled: status.enabled, totp: status.totp.enabled, left: status.recoveryCodesLeft, host: status.passkeyHost }, { enabled: true, totp: true, left: 10, host: { ok: true, rpId: 'localhost' } });
});

test('service: a TOTP sign-in spends its ticket, and the same code is refused on the next', async () => {
  const { sf, clock } = await service();
  const { secret } = await enrolTotp(sf, clock.now);
  clock.advance(30_000);
  const first = sf.challenge(CLIENT, LOCAL)!;
  assert.equal(first.methods, ['totp', 'recovery']);
  assert.is(first.expiresInSeconds, 300);
  const code = codeAt(secret, clock.now);
  assert.is(await sf.signInWithCode(first.ticket, CLIENT, code), 'totp');
  await rejects(sf.signInWithCode(first.ticket, CLIENT, code), SecondFactorExpiredError);
  const second = sf.challenge(CLIENT, LOCAL)!;
  await rejects(sf.signInWithCode(second.ticket, CLIENT, code), UnauthorizedError, /already used/);
  clock.advance(30_000);
  assert.is(await sf.signInWithCode(second.ticket, CLIENT, codeAt(secret, clock.now)), 'totp');
});

test('service: wrong codes use up the ticket; malformed input is a 400 that does not', async () => {
  const { sf, clock } = await service();
  await enrolTotp(sf, clock.now);
  const { ticket } = sf.challenge(CLIENT, LOCAL)!;
  await rejects(sf.signInWithCode(ticket, CLIENT, 'hello'), BadRequestError, /^code: /);
  for (let i = 0; i < 5; i++) await rejects(sf.signInWithCode(ticket, CLIENT, '000000'), UnauthorizedError);
  await rejects(sf.signInWithCode(ticket, CLIENT, '000000'), SecondFactorExpiredError);
  const other = sf.challenge(CLIENT, LOCAL)!;
  await rejects(sf.signInWithCode(other.ticket, '198.51.100.1', '000000'), SecondFactorExpiredError);
});

test('service: a recovery code works once; disabling the last factor drops the rest', async () => {
  const { sf, store, clock } = await service();
  const { recoveryCodes } = await enrolTotp(sf, clock.now);
  const { ticket } = sf.challenge(CLIENT, LOCAL)!;
  assert.is(await sf.signInWithCode(ticket, CLIENT, recoveryCodes[0]!.toLowerCase()), 'recovery');
  assert.is(store.data.auth.recoveryCodes!.length, 9);
  const again = sf.challenge(CLIENT, LOCAL)!;
  await rejects(sf.signInWithCode(again.ticket, CLIENT, recoveryCodes[0]!), UnauthorizedError, /recovery code/);
  const fresh = await sf.regenerateRecoveryCodes();
  await rejects(sf.signInWithCode(again.ticket, CLIENT, recoveryCodes[1]!), UnauthorizedError, /recovery code/);
  assert.is(await sf.signInWithCode(again.ticket, CLIENT, fresh[1]!), 'recovery');
  await sf.disableTotp();
  assert.not.ok(sf.enrolled());
  assert.is(store.data.auth.recoveryCodes, undefined);
  await rejects(sf.regenerateRecoveryCodes(), ConflictError);
});

test('service: passkeys register and sign in per host name; a replayed counter is refused; reset clears all', async () => {
  const { sf, store, clock } = await service();
  const authenticator = new SoftAuthenticator();
  const origin = 'http://localhost:8000';
  await rejects(sf.passkeyRegistrationOptions('s', relyingPartyOf('http://10.0.0.5', '10.0.0.5')), BadRequestError, /^host: .*IP address/);
  const options = await sf.passkeyRegistrationOptions('s', LOCAL);
  assert.is(options.rp.id, 'localhost');
  await rejects(sf.registerPasskey('s', LOCAL, authenticator.create(options, origin) as never, '  '), BadRequestError, /^name: /);
  // Wrong origin in the client data: refused (a fresh registration is needed after a failure).
  await sf.passkeyRegistrationOptions('s', LOCAL);
  await rejects(sf.registerPasskey('s', LOCAL, authenticator.create(options, 'http://localhost:9999') as never, 'Laptop'), BadRequestError, /^response: /);
  const again = await sf.passkeyRegistrationOptions('s', LOCAL);
  const added = await sf.registerPasskey('s', LOCAL, authenticator.create(again, origin) as never, 'Laptop');
  assert.is(added.recoveryCodes!.length, 10);
  assert.is(added.passkey.name, 'Laptop');
  assert.is(added.passkey.rpId, 'localhost');
  assert.is((added.passkey as unknown as Record<string, unknown>).publicKey, undefined, 'the view holds no key');

  const elsewhere = sf.challenge(CLIENT, relyingPartyOf('https://piccolo.local', 'piccolo.local'))!;
  assert.equal(elsewhere.methods, ['recovery'], 'a passkey of localhost is not offered at piccolo.local');
  const { ticket, methods } = sf.challenge(CLIENT, LOCAL)!;
  assert.equal(methods, ['passkey', 'recovery']);
  await rejects(sf.signInWithPasskey(ticket, CLIENT, LOCAL, {} as never), BadRequestError, /^ticket: /);
  const login = await sf.passkeySignInOptions(ticket, CLIENT, LOCAL);
  assert.equal(login.allowCredentials!.map((c) => c.id), [added.passkey.id]);
  clock.advance(1000);
  await sf.signInWithPasskey(ticket, CLIENT, LOCAL, authenticator.get(login, origin) as never);
  assert.is(store.data.auth.passkeys![0]!.counter, 2);
  assert.is(store.data.auth.passkeys![0]!.lastUsedAt, new Date(clock.now).toISOString());

  const cloned = sf.challenge(CLIENT, LOCAL)!;
  const cloneOptions = await sf.passkeySignInOptions(cloned.ticket, CLIENT, LOCAL);
  await rejects(sf.signInWithPasskey(cloned.ticket, CLIENT, LOCAL, authenticator.get(cloneOptions, origin, { counter: 2 }) as never), UnauthorizedError, /^response: /);
  // The challenge answered once: a second try needs new options.
  await rejects(sf.signInWithPasskey(cloned.ticket, CLIENT, LOCAL, authenticator.get(cloneOptions, origin) as never), BadRequestError, /^ticket: /);

  assert.ok(await sf.clearAll());
  assert.equal([store.data.auth.passkeys, store.data.auth.totp, store.data.auth.recoveryCodes], [undefined, undefined, undefined]);
  assert.not.ok(sf.enrolled());
  await rejects(sf.passkeySignInOptions(cloned.ticket, CLIENT, LOCAL), SecondFactorExpiredError);
  assert.not.ok(await sf.clearAll(), 'nothing left to clear');
});

test('service: removing the last passkey drops the recovery codes; an unknown id is a 404', async () => {
  const { sf, store } = await service();
  const authenticator = new SoftAuthenticator();
  const options = await sf.passkeyRegistrationOptions('s', LOCAL);
  const { passkey } = await sf.registerPasskey('s', LOCAL, authenticator.create(options, 'http://localhost:8000') as never, 'Key');
  await rejects(sf.removePasskey('nope'), Error, /no passkey/);
  await sf.removePasskey(passkey.id);
  assert.equal([store.data.auth.passkeys, store.data.auth.recoveryCodes], [undefined, undefined]);
});

test.run();
