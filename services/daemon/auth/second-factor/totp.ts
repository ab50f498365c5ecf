// Time-based one-time codes (RFC 6238: SHA-1, 6 digits, 30 s), the kind every authenticator app
// reads from a QR code. Pure apart from otpauth's HMAC: the caller passes the time and the last
// step accepted, and stores the step this returns, so a code is never accepted twice.
import { Secret, TOTP } from 'otpauth';

const PERIOD_S = 30;
/** One step either side: a phone clock a little off, or a code typed as it turned over. */
const WINDOW = 1;

export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

function totpFor(secret: string, label = 'admin', issuer = 'Piccolo'): TOTP {
  return new TOTP({ issuer, label, algorithm: 'SHA1', digits: 6, period: PERIOD_S, secret: Secret.fromBase32(secret) });
}

/** The otpauth:// URI the QR code holds; the issuer names the device so that several can coexist in one app. */
export function totpUri(secret: string, deviceName: string): string {
  return totpFor(secret, 'admin', `Piccolo ${deviceName}`).toString();
}

export function isTotpCode(code: string): boolean {
  return /^\d{6}$/.test(code);
}

/**
 * The time step of `code` if it is right at `nowMs` and newer than `lastStep`; undefined
 * otherwise (wrong, too old, or already used: a code seen once is refused for its whole window).
 */
export function acceptTotp(secret: string, code: string, nowMs: number, lastStep: number): number | undefined {
  if (!isTotpCode(code)) return undefined;
  const delta = totpFor(secret).validate({ token: code, timestamp: nowMs, window: WINDOW });
  if (delta === null) return undefined;
  const step = Math.floor(nowMs / 1000 / PERIOD_S) + delta;
  return step > lastStep ? step : undefined;
}
