// Single-use recovery codes: the way in when the phone or the passkey is lost, short of the
// 24-word recovery key (which resets everything). Shown once; only their hashes are kept. A plain
// sha-256 is enough here: each code is ~50 random bits, guessing is throttled, and the hashes
// live in the encrypted control volume (a slow KDF would protect nothing more).
import { createHash, randomInt } from 'node:crypto';

export const RECOVERY_CODE_COUNT = 10;
// As the claim code: no 0/O, 1/I/L, since a person copies these from paper.
const ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
const LENGTH = 10;

export function newRecoveryCodes(count = RECOVERY_CODE_COUNT): { codes: string[]; hashes: string[] } {
  const codes = Array.from({ length: count }, () => {
    const raw = Array.from({ length: LENGTH }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
    return `${raw.slice(0, 5)}-${raw.slice(5)}`;
  });
  return { codes, hashes: codes.map(hashRecoveryCode) };
}

/** Case, spaces and dashes do not matter: people retype these. */
export function normalizeRecoveryCode(input: string): string {
  return input.toUpperCase().replace(/[\s-]/g, '');
}

export function looksLikeRecoveryCode(input: string): boolean {
  const code = normalizeRecoveryCode(input);
  return code.length === LENGTH && [...code].every((c) => ALPHABET.includes(c));
}

export function hashRecoveryCode(input: string): string {
  return createHash('sha256').update(normalizeRecoveryCode(input)).digest('hex');
}

/** Where `input` is among `hashes`, or -1. Comparing hashes leaks nothing about the codes. */
export function findRecoveryCode(hashes: readonly string[], input: string): number {
  return looksLikeRecoveryCode(input) ? hashes.indexOf(hashRecoveryCode(input)) : -1;
}
