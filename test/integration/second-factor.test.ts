// Two-factor sign-in through the real daemon bundle (real gocryptfs volumes, no TPM): TOTP
// enrolment with codes made by otpauth from the secret the API returns, sign-in and unlock that
// need the second step, replay and single-use recovery codes refused, the throttle's 429 with
// Retry-After (a right password does not reset it), the ticket bound to the client address,
// passkeys through a software authenticator, new recovery codes (the old set stops working),
// TOTP turned off (confirm and password), the audit log, and the recovery key's reset that
// turns every factor off. Chromium's virtual authenticator is the browser test's part.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Secret, TOTP } from 'otpauth';
import { TEST_BUNDLE_DIR, bundleServices } from '../../image/bundle.js';
import { ApiSession } from '../support/api-session.js';
import { removeTestDir, startTestDaemon, type ServiceProcess } from '../support/processes.js';
import { SoftAuthenticator } from '../support/soft-authenticator.js';

const dir = mkdtempSync(path.join(tmpdir(), 'piccolo-second-factor-'));
const stateDir = path.join(dir, 'state');
const PASSWORD = 'Correct-Horse-42x';
const NEW_PASSWORD = 'Battery-Staple-97q';
let daemon: ServiceProcess;
let port = 0;
let origin = '';
let admin: ApiSession;
let recoveryKey = '';
let secret = '';
let recoveryCodes: string[] = [];
const authenticator = new SoftAuthenticator();

/** A browser at http://localhost:<port>: passkeys accept localhost over plain http. */
const browser = () => new ApiSession(origin, { origin });
/** A code the app would show `aheadMs` from now; the server accepts one step either side. */
const codeIn = (aheadMs: number) => new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: Date.now() + aheadMs });

function audit(): { event: string; outcome: string; client?: string; detail?: string }[] {
  return readFileSync(path.join(stateDir, 'audit.log'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
}

/** Password step: the answer must be a second-factor ticket, with no cookie. */
async function passwordStep(client: ApiSession, password = PASSWORD, route = '/api/v1/auth/login') {
  const answer = await client.call('POST', route, { password });
  assert.is(answer.status, 200, JSON.stringify(answer.body));
  assert.is(answer.body.authenticated, false);
  assert.is(answer.headers.get('set-cookie'), null, 'no session before the second factor');
  return answer.body as { state?: string; secondFactor: { ticket: string; methods: string[]; expiresInSeconds: number } };
}

/** The same call from another loopback address (fetch cannot choose its source). */
function postFrom(from: string, route: string, body: unknown): Promise<{ status: number; body: any }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: route, localAddress: from, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test.before(async () => {
  await bundleServices({ outDir: TEST_BUNDLE_DIR, testHooks: true });
  let api: string;
  ({ proc: daemon, api } = await startTestDaemon(stateDir));
  port = Number(api.split(':').pop());
  origin = `http://localhost:${port}`;
  admin = browser();
  const claimCode = readFileSync(path.join(stateDir, 'claim-code'), 'utf8').trim();
  const claim = await admin.call('POST', '/api/v1/setup/claim', { claimCode });
  recoveryKey = claim.body.recoveryKey;
  assert.is((await admin.call('POST', '/api/v1/setup', { setupToken: claim.body.setupToken, password: PASSWORD, recoveryKeySaved: true })).status, 201);
});

test.after(async () => {
  await daemon?.kill();
  removeTestDir(dir);
});

test('status: nothing enrolled; passkeys possible at localhost, not at an IP address', async () => {
  const status = await admin.call('GET', '/api/v1/auth/second-factor');
  assert.is(status.status, 200);
  assert.equal(status.body, { enabled: false, totp: { enabled: false, enabledAt: null }, passkeys: [], recoveryCodesLeft: 0, passkeyHost: { ok: true, rpId: 'localhost' } });
  const byIp = Object.assign(new ApiSession(`http://127.0.0.1:${port}`, { origin: `http://127.0.0.1:${port}` }), { cookie: admin.cookie, csrf: admin.csrf });
  const ipStatus = await byIp.call('GET', '/api/v1/auth/second-factor');
  assert.is(ipStatus.body.passkeyHost.ok, false);
  assert.match(ipStatus.body.passkeyHost.problem, /not by an IP address/);
  const options = await byIp.call('POST', '/api/v1/auth/passkeys/register/options');
  assert.is(options.status, 400);
  assert.match(options.body.error.message, /^host: .*IP address/);
  // A browser sends no Origin on a same-origin GET: the status reads the Host instead.
  const noOrigin = Object.assign(new ApiSession(origin), { cookie: admin.cookie, csrf: admin.csrf });
  assert.equal((await noOrigin.call('GET', '/api/v1/auth/second-factor')).body.passkeyHost, { ok: true, rpId: 'localhost' });
  assert.is((await new ApiSession(origin).call('GET', '/api/v1/auth/second-factor')).status, 401, 'signed in only');
});

test('before any second factor: new recovery codes and turning TOTP off are 409s; signed out, 401', async () => {
  const codes = await admin.call('POST', '/api/v1/auth/recovery-codes', { password: PASSWORD });
  assert.is(codes.status, 409, JSON.stringify(codes.body));
  assert.match(codes.body.error.message, /set up an authenticator app or a passkey first/);
  const off = await admin.call('POST', '/api/v1/auth/totp/disable', { password: PASSWORD, confirm: true });
  assert.is(off.status, 409, JSON.stringify(off.body));
  assert.match(off.body.error.message, /no authenticator app is set up/);
  assert.is((await admin.call('GET', '/api/v1/auth/second-factor')).body.recoveryCodesLeft, 0, 'no codes were made');
  const stranger = new ApiSession(origin, { origin });
  assert.is((await stranger.call('POST', '/api/v1/auth/recovery-codes', { password: PASSWORD })).status, 401);
  assert.is((await stranger.call('POST', '/api/v1/auth/totp/disable', { password: PASSWORD, confirm: true })).status, 401);
});

test('TOTP setup: the password again, then a code from the app turns it on with 10 recovery codes', async () => {
  const missing = await admin.call('POST', '/api/v1/auth/totp/setup', {});
  assert.is(missing.status, 400);
  assert.match(JSON.stringify(missing.body.error.details), /missing field password/);
  const wrongPassword = await admin.call('POST', '/api/v1/auth/totp/setup', { password: 'Wrong-Horse-42x' });
  assert.is(wrongPassword.status, 403, 'not 401: the portal would take that for the end of the session');
  assert.match(wrongPassword.body.error.message, /^password: /);
  assert.is((await admin.call('GET', '/api/v1/auth/session')).body.authenticated, true);
  const setup = await admin.call('POST', '/api/v1/auth/totp/setup', { password: PASSWORD });
  assert.is(setup.status, 200);
  secret = setup.body.secret;
  assert.match(setup.body.uri, new RegExp(`^otpauth://totp/.*secret=${secret}`));
  assert.is((await admin.call('GET', '/api/v1/auth/second-factor')).body.enabled, false, 'pending until confirmed');

  const wrong = await admin.call('POST', '/api/v1/auth/totp/confirm', { code: '000000' === codeIn(0) ? '111111' : '000000' });
  assert.is(wrong.status, 400);
  assert.match(wrong.body.error.message, /^code: /);
  const confirmed = await admin.call('POST', '/api/v1/auth/totp/confirm', { code: codeIn(0) });
  assert.is(confirmed.status, 200, JSON.stringify(confirmed.body));
  recoveryCodes = confirmed.body.recoveryCodes;
  assert.is(recoveryCodes.length, 10);
  assert.is(confirmed.body.status.totp.enabled, true);
  assert.is(confirmed.body.status.recoveryCodesLeft, 10);
  assert.ok(audit().some((e) => e.event === 'auth.totp.enable' && e.outcome === 'ok'));
  assert.ok(audit().some((e) => e.event === 'auth.totp.setup' && e.outcome === 'denied'), 'the wrong password is in the audit log');
});

test('login needs the code; a code is not accepted twice', async () => {
  const client = browser();
  const { secondFactor } = await passwordStep(client);
  assert.equal(secondFactor.methods, ['totp', 'recovery']);
  assert.is(secondFactor.expiresInSeconds, 300);
  assert.is((await client.call('GET', '/api/v1/auth/session')).body.authenticated, false);
  // The step after the one used to confirm: the server takes one step either side of its clock.
  const code = codeIn(30_000);
  const signedIn = await client.call('POST', '/api/v1/auth/login/second-factor', { ticket: secondFactor.ticket, code });
  assert.is(signedIn.status, 200, JSON.stringify(signedIn.body));
  assert.is(signedIn.body.authenticated, true);
  assert.match(signedIn.headers.get('set-cookie') ?? '', /piccolo_session=/);
  assert.is((await client.call('GET', '/api/v1/auth/session')).body.authenticated, true);

  const reused = await client.call('POST', '/api/v1/auth/login/second-factor', { ticket: secondFactor.ticket, code });
  assert.is(reused.status, 401);
  assert.is(reused.body.error.code, 'second_factor_expired', 'a ticket signs in once');
  const replay = browser();
  const next = await passwordStep(replay);
  const refused = await replay.call('POST', '/api/v1/auth/login/second-factor', { ticket: next.secondFactor.ticket, code });
  assert.is(refused.status, 401);
  assert.is(refused.body.error.code, 'unauthorized');
  assert.match(refused.body.error.message, /already used/);
  const bad = await replay.call('POST', '/api/v1/auth/login/second-factor', { ticket: next.secondFactor.ticket, code: 'twelve' });
  assert.is(bad.status, 400);
  assert.match(bad.body.error.message, /^code: /);
});

test('a ticket is bound to the address that gave the password', async () => {
  const { secondFactor } = await passwordStep(browser());
  const elsewhere = await postFrom('127.0.0.2', '/api/v1/auth/login/second-factor', { ticket: secondFactor.ticket, code: recoveryCodes[9] });
  assert.is(elsewhere.status, 401);
  assert.is(elsewhere.body.error.code, 'second_factor_expired');
  const owner = await browser().call('POST', '/api/v1/auth/login/second-factor', { ticket: secondFactor.ticket, code: recoveryCodes[9] });
  assert.is(owner.body.error?.code, 'second_factor_expired', 'once tried from elsewhere, the ticket is spent');
  assert.ok(audit().some((e) => e.event === 'auth.login.second-factor' && e.outcome === 'denied' && e.client === '127.0.0.2' && e.detail === 'second_factor_expired'));
});

test('a recovery code signs in once', async () => {
  const client = browser();
  const first = await passwordStep(client);
  const signedIn = await client.call('POST', '/api/v1/auth/login/second-factor', { ticket: first.secondFactor.ticket, code: recoveryCodes[0]!.toLowerCase() });
  assert.is(signedIn.status, 200);
  assert.is(signedIn.body.authenticated, true);
  const again = await passwordStep(browser());
  const refused = await browser().call('POST', '/api/v1/auth/login/second-factor', { ticket: again.secondFactor.ticket, code: recoveryCodes[0] });
  assert.is(refused.status, 401);
  assert.match(refused.body.error.message, /recovery code/);
  assert.is((await admin.call('GET', '/api/v1/auth/second-factor')).body.recoveryCodesLeft, 9);
});

test('wrong codes are throttled with Retry-After, and a right password does not reset that', async () => {
  const client = browser();
  // A success first: it clears what earlier tests left in the count.
  const start = await passwordStep(client);
  assert.is((await client.call('POST', '/api/v1/auth/login/second-factor', { ticket: start.secondFactor.ticket, code: recoveryCodes[3] })).status, 200);
  const { secondFactor } = await passwordStep(client);
  const statuses: number[] = [];
  let throttled: Awaited<ReturnType<ApiSession['call']>> | undefined;
  for (let i = 0; i < 5 && !throttled; i++) {
    const answer = await client.call('POST', '/api/v1/auth/login/second-factor', { ticket: secondFactor.ticket, code: 'ZZZZZ-ZZZZZ' });
    statuses.push(answer.status);
    if (answer.status === 429) throttled = answer;
  }
  assert.equal(statuses, [401, 401, 401, 401, 429]);
  const retryAfter = Number(throttled!.headers.get('retry-after'));
  assert.ok(retryAfter >= 1, `Retry-After ${retryAfter}`);
  const fresh = await passwordStep(client);
  const still = await client.call('POST', '/api/v1/auth/login/second-factor', { ticket: fresh.secondFactor.ticket, code: recoveryCodes[1] });
  assert.is(still.status, 429, 'the second-factor count survives a right password');
  await sleep(retryAfter * 1000 + 100);
  const through = await client.call('POST', '/api/v1/auth/login/second-factor', { ticket: fresh.secondFactor.ticket, code: recoveryCodes[1] });
  assert.is(through.status, 200, JSON.stringify(through.body));
  const denied = audit().filter((e) => e.event === 'auth.login.second-factor' && e.outcome === 'denied' && e.detail === 'unauthorized');
  assert.ok(denied.length >= 4, `${denied.length} wrong codes in the audit log`);
});

test('passkeys: register at localhost, then sign in with it; removing needs the password', async () => {
  const options = await admin.call('POST', '/api/v1/auth/passkeys/register/options');
  assert.is(options.status, 200, JSON.stringify(options.body));
  assert.is(options.body.rp.id, 'localhost');
  const noName = await admin.call('POST', '/api/v1/auth/passkeys/register', { response: authenticator.create(options.body, origin) });
  assert.is(noName.status, 400);
  assert.match(JSON.stringify(noName.body.error.details), /missing field name/);
  const again = await admin.call('POST', '/api/v1/auth/passkeys/register/options');
  const registered = await admin.call('POST', '/api/v1/auth/passkeys/register', { response: authenticator.create(again.body, origin), name: 'Laptop' });
  assert.is(registered.status, 201, JSON.stringify(registered.body));
  assert.is(registered.body.recoveryCodes, undefined, 'TOTP brought the recovery codes already');
  assert.is(registered.body.status.passkeys.length, 1);
  const id = registered.body.passkey.id;

  const client = browser();
  const { secondFactor } = await passwordStep(client);
  assert.equal(secondFactor.methods, ['totp', 'passkey', 'recovery']);
  const login = await client.call('POST', '/api/v1/auth/login/passkey/options', { ticket: secondFactor.ticket });
  assert.is(login.status, 200);
  const forged = await client.call('POST', '/api/v1/auth/login/passkey', { ticket: secondFactor.ticket, response: authenticator.get(login.body, 'http://localhost:1') });
  assert.is(forged.status, 401, 'a response for another origin is refused');
  const retry = await client.call('POST', '/api/v1/auth/login/passkey/options', { ticket: secondFactor.ticket });
  const signedIn = await client.call('POST', '/api/v1/auth/login/passkey', { ticket: secondFactor.ticket, response: authenticator.get(retry.body, origin) });
  assert.is(signedIn.status, 200, JSON.stringify(signedIn.body));
  assert.is(signedIn.body.authenticated, true);
  assert.ok((await admin.call('GET', '/api/v1/auth/second-factor')).body.passkeys[0].lastUsedAt);
  assert.ok(audit().some((e) => e.event === 'auth.login.second-factor' && e.outcome === 'ok' && e.detail === 'passkey'));

  assert.is((await admin.call('DELETE', `/api/v1/auth/passkeys/${id}`, { password: PASSWORD })).status, 400, 'confirm is required');
  assert.is((await admin.call('DELETE', `/api/v1/auth/passkeys/${id}`, { password: 'Wrong-Horse-42x', confirm: true })).status, 403);
  assert.is((await admin.call('DELETE', '/api/v1/auth/passkeys/unknown', { password: PASSWORD, confirm: true })).status, 404);
  const removed = await admin.call('DELETE', `/api/v1/auth/passkeys/${id}`, { password: PASSWORD, confirm: true });
  assert.is(removed.status, 200);
  assert.equal(removed.body.passkeys, []);
  assert.ok(audit().some((e) => e.event === 'auth.passkey.remove' && e.outcome === 'ok'));
  // Put it back for the reset test.
  const third = await admin.call('POST', '/api/v1/auth/passkeys/register/options');
  assert.is((await admin.call('POST', '/api/v1/auth/passkeys/register', { response: authenticator.create(third.body, origin), name: 'Laptop' })).status, 201);
});

test('new recovery codes: the password again; the old codes stop working, the new ones sign in once each', async () => {
  const missing = await admin.call('POST', '/api/v1/auth/recovery-codes', {});
  assert.is(missing.status, 400);
  assert.match(JSON.stringify(missing.body.error.details), /missing field password/);
  const wrong = await admin.call('POST', '/api/v1/auth/recovery-codes', { password: 'Wrong-Horse-42x' });
  assert.is(wrong.status, 403);
  assert.match(wrong.body.error.message, /^password: /);
  const before = (await admin.call('GET', '/api/v1/auth/second-factor')).body.recoveryCodesLeft;
  assert.ok(before < 10, `some codes were used: ${before} left`);
  const made = await admin.call('POST', '/api/v1/auth/recovery-codes', { password: PASSWORD });
  assert.is(made.status, 200, JSON.stringify(made.body));
  const fresh: string[] = made.body.recoveryCodes;
  assert.is(fresh.length, 10);
  assert.is(new Set(fresh).size, 10);
  assert.equal(fresh.filter((code) => recoveryCodes.includes(code)), [], 'all new');
  assert.is((await admin.call('GET', '/api/v1/auth/second-factor')).body.recoveryCodesLeft, 10);
  const client = browser();
  const old = await passwordStep(client);
  const refused = await client.call('POST', '/api/v1/auth/login/second-factor', { ticket: old.secondFactor.ticket, code: recoveryCodes[5] });
  assert.is(refused.status, 401, 'an unused code of the old set no longer signs in');
  const next = await passwordStep(client);
  assert.is((await client.call('POST', '/api/v1/auth/login/second-factor', { ticket: next.secondFactor.ticket, code: fresh[0] })).status, 200);
  recoveryCodes = fresh;
  assert.ok(audit().some((e) => e.event === 'auth.recovery-codes.regenerate' && e.outcome === 'ok'));
  assert.ok(audit().some((e) => e.event === 'auth.recovery-codes.regenerate' && e.outcome === 'denied'), 'the wrong password is in the audit log');
});

test('TOTP off: needs confirm and the password; sign-in then offers the passkey and the codes, which stay', async () => {
  const unconfirmed = await admin.call('POST', '/api/v1/auth/totp/disable', { password: PASSWORD });
  assert.is(unconfirmed.status, 400);
  assert.match(JSON.stringify(unconfirmed.body.error.details), /confirm/);
  assert.is((await admin.call('POST', '/api/v1/auth/totp/disable', { password: PASSWORD, confirm: false })).status, 400);
  const wrong = await admin.call('POST', '/api/v1/auth/totp/disable', { password: 'Wrong-Horse-42x', confirm: true });
  assert.is(wrong.status, 403);
  assert.match(wrong.body.error.message, /^password: /);
  assert.is((await admin.call('GET', '/api/v1/auth/second-factor')).body.totp.enabled, true, 'still on after the refusals');
  const off = await admin.call('POST', '/api/v1/auth/totp/disable', { password: PASSWORD, confirm: true });
  assert.is(off.status, 200, JSON.stringify(off.body));
  assert.equal([off.body.enabled, off.body.totp.enabled, off.body.passkeys.length, off.body.recoveryCodesLeft], [true, false, 1, 9]);
  const client = browser();
  const { secondFactor } = await passwordStep(client);
  assert.equal(secondFactor.methods, ['passkey', 'recovery']);
  const code = await client.call('POST', '/api/v1/auth/login/second-factor', { ticket: secondFactor.ticket, code: codeIn(0) });
  assert.is(code.status, 401, 'an authenticator code no longer signs in');
  assert.is((await admin.call('POST', '/api/v1/auth/totp/disable', { password: PASSWORD, confirm: true })).status, 409, 'nothing left to turn off');
  assert.ok(audit().some((e) => e.event === 'auth.totp.disable' && e.outcome === 'ok'));
});

test('unlock: the password opens the volumes, the session still needs the second factor', async () => {
  assert.is((await admin.call('POST', '/api/v1/crypto/lock', { confirm: true })).status, 200);
  const client = browser();
  const unlocked = await passwordStep(client, PASSWORD, '/api/v1/crypto/unlock');
  assert.is(unlocked.state, 'unlocked');
  assert.is((await client.call('GET', '/api/v1/setup/status')).body.state, 'unlocked');
  const signedIn = await client.call('POST', '/api/v1/auth/login/second-factor', { ticket: unlocked.secondFactor.ticket, code: recoveryCodes[2] });
  assert.is(signedIn.status, 200, JSON.stringify(signedIn.body));
  admin = client;
});

test('the recovery key resets everything: password, TOTP, recovery codes, passkeys', async () => {
  const reset = await browser().call('POST', '/api/v1/crypto/reset-password', { recoveryKey, newPassword: NEW_PASSWORD });
  assert.is(reset.status, 200, JSON.stringify(reset.body));
  assert.is(reset.body.authenticated, true);
  const client = browser();
  const login = await client.call('POST', '/api/v1/auth/login', { password: NEW_PASSWORD });
  assert.is(login.body.authenticated, true, 'no second step any more');
  const status = await client.call('GET', '/api/v1/auth/second-factor');
  assert.equal([status.body.enabled, status.body.totp.enabled, status.body.passkeys, status.body.recoveryCodesLeft], [false, false, [], 0]);
  assert.ok(audit().some((e) => e.event === 'auth.second-factor.clear' && e.outcome === 'ok'));
});

test.run();
