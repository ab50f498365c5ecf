// Passkeys (WebAuthn) through @simplewebauthn/server. The relying party is the host name the
// portal is reached by, read from the browser's Origin: a passkey made at piccolo.local works
// only there, one made at the remote name only there. Browsers refuse WebAuthn on an IP address
// and outside a secure context (https, or http://localhost), so those are refused up front with
// a sentence a person can act on.
import { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { BadRequestError, UnauthorizedError } from '../../../common/errors.js';
import type { PasskeyRecord } from '../../control-document.js';

let loading: Promise<typeof import('@simplewebauthn/server')> | undefined;
/**
 * The library, loaded on the first passkey operation: evaluating it (and the ASN.1 schemas it
 * brings) took ~27 ms of every daemon start here, a sixth of its CPU to READY, for a sign-in
 * option most starts never see.
 */
const webauthn = () => (loading ??= import('@simplewebauthn/server'));

export type RelyingParty = { ok: true; rpId: string; origin: string } | { ok: false; problem: string };

const NEEDS_A_NAME = 'passkeys need the portal to be opened by a name (https://piccolo.local, the remote name, or http://localhost), not by an IP address';

/**
 * simplewebauthn finds WebCrypto at globalThis.crypto, which Node 18 (the image's) only has
 * behind a flag. Called once at startup; harmless where it exists.
 */
export function ensureWebCrypto(): void {
  if (!globalThis.crypto) Object.defineProperty(globalThis, 'crypto', { value: webcrypto, configurable: true, writable: true });
}

/** The relying party of a request, from its Origin (the browser sets it) checked against its Host. */
export function relyingPartyOf(origin: string | undefined, host: string | undefined): RelyingParty {
  if (!origin) return { ok: false, problem: 'the request has no Origin header; passkeys work only from the portal in a browser' };
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return { ok: false, problem: 'the Origin header is not a URL' };
  }
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(hostname)) return { ok: false, problem: NEEDS_A_NAME };
  const local = hostname === 'localhost' || hostname.endsWith('.localhost');
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && local)) {
    return { ok: false, problem: `passkeys need a secure connection: open the portal at https://${url.host} (or http://localhost)` };
  }
  // The proxy keeps Host as the browser sent it; a mismatch is not the portal's own page asking.
  if (host !== undefined && host.toLowerCase() !== url.host) return { ok: false, problem: `the Origin (${url.host}) is not the host this request was sent to (${host})` };
  return { ok: true, rpId: hostname, origin: url.origin };
}

export function assertUsable(rp: RelyingParty): asserts rp is Extract<RelyingParty, { ok: true }> {
  if (!rp.ok) throw new BadRequestError(`host: ${rp.problem}`);
}

const forHost = (passkeys: readonly PasskeyRecord[], rpId: string) => passkeys.filter((p) => p.rpId === rpId);

export async function registrationOptions(rp: { rpId: string }, existing: readonly PasskeyRecord[], deviceName: string): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const { generateRegistrationOptions } = await webauthn();
  return generateRegistrationOptions({
    rpName: `Piccolo ${deviceName}`,
    rpID: rp.rpId,
    userName: 'admin',
    userDisplayName: `admin (${deviceName})`,
    attestationType: 'none',
    // The same authenticator twice would be one factor counted as two.
    excludeCredentials: forHost(existing, rp.rpId).map((p) => ({ id: p.id, transports: p.transports })),
    // A second factor after the password: user verification (PIN, fingerprint) is welcome, not required.
    authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
  });
}

export type NewPasskey = Pick<PasskeyRecord, 'id' | 'publicKey' | 'counter' | 'transports'>;

export async function verifyRegistration(rp: { rpId: string; origin: string }, challenge: string, response: RegistrationResponseJSON): Promise<NewPasskey> {
  const { verifyRegistrationResponse } = await webauthn();
  let result;
  try {
    result = await verifyRegistrationResponse({ response, expectedChallenge: challenge, expectedOrigin: rp.origin, expectedRPID: rp.rpId, requireUserVerification: false });
  } catch (err) {
    throw new BadRequestError(`response: the passkey could not be registered (${(err as Error).message})`);
  }
  if (!result.verified) throw new BadRequestError('response: the passkey could not be verified');
  const { credential } = result.registrationInfo;
  return {
    id: credential.id,
    publicKey: Buffer.from(credential.publicKey).toString('base64url'),
    counter: credential.counter,
    transports: credential.transports ?? response.response.transports ?? [],
  };
}

export async function authenticationOptions(rp: { rpId: string }, passkeys: readonly PasskeyRecord[]): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const { generateAuthenticationOptions } = await webauthn();
  return generateAuthenticationOptions({
    rpID: rp.rpId,
    allowCredentials: forHost(passkeys, rp.rpId).map((p) => ({ id: p.id, transports: p.transports })),
    userVerification: 'preferred',
  });
}

/** The passkey's new signature counter; a 401 when the response is not a valid assertion of a known passkey. */
export async function verifyAuthentication(
  rp: { rpId: string; origin: string },
  challenge: string,
  passkeys: readonly PasskeyRecord[],
  response: AuthenticationResponseJSON,
): Promise<{ id: string; counter: number }> {
  const passkey = forHost(passkeys, rp.rpId).find((p) => p.id === response.id);
  if (!passkey) throw new UnauthorizedError('response: this passkey is not registered on this device for this host name');
  const { verifyAuthenticationResponse } = await webauthn();
  let result;
  try {
    result = await verifyAuthenticationResponse({
      response,
      expectedChallenge: challenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.rpId,
      credential: { id: passkey.id, publicKey: Buffer.from(passkey.publicKey, 'base64url'), counter: passkey.counter, transports: passkey.transports },
      requireUserVerification: false,
    });
  } catch (err) {
    throw new UnauthorizedError(`response: the passkey was not accepted (${(err as Error).message})`);
  }
  if (!result.verified) throw new UnauthorizedError('response: the passkey was not accepted');
  return { id: passkey.id, counter: result.authenticationInfo.newCounter };
}
