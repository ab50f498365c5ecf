// Errors of the key hierarchy. Messages and details never hold a key or a whole secret.
import { PiccoloError } from '../../common/errors.js';

export class WrongPassphraseError extends PiccoloError {
  constructor() {
    super(401, 'wrong_passphrase', 'the admin password is not correct');
  }
}

/** A well-formed recovery phrase that does not open this key ring (another device's, an old one). */
export class WrongRecoveryPhraseError extends PiccoloError {
  constructor() {
    super(401, 'wrong_recovery_phrase', 'this recovery phrase does not unlock this device (it may be an older one)');
  }
}

export type RecoveryPhraseProblem =
  | { reason: 'word_count'; expected: number; got: number }
  | { reason: 'unknown_word'; unknownWords: { position: number; word: string }[] }
  | { reason: 'checksum' };

/** A recovery phrase with a typo: caught by the word list or the BIP39 checksum before any key is tried. */
export class InvalidRecoveryPhraseError extends PiccoloError {
  constructor(readonly problem: RecoveryPhraseProblem) {
    super(400, 'invalid_recovery_phrase', describeProblem(problem), problem);
  }
}

function describeProblem(problem: RecoveryPhraseProblem): string {
  switch (problem.reason) {
    case 'word_count':
      return `a recovery phrase has ${problem.expected} words; got ${problem.got}`;
    case 'unknown_word':
      return problem.unknownWords.map(({ position, word }) => `word ${position} "${word}" is not in the BIP39 English word list`).join('; ');
    case 'checksum':
      return 'the recovery phrase checksum does not match: a word is mistyped (as another valid word) or words are out of order';
  }
}

export class KeyRingExistsError extends PiccoloError {
  constructor(file: string) {
    super(409, 'key_ring_exists', `a key ring already exists (${file}); it is never replaced`);
  }
}

export class KeyRingMissingError extends PiccoloError {
  constructor(file: string) {
    super(409, 'key_ring_missing', `no key ring yet (${file}): the device has not been set up`);
  }
}

/**
 * The key file does not parse, has an unknown format, or a wrap whose key is right fails its
 * authentication tag. Fatal: the caller reports "broken key file" to health. Nothing overwrites it.
 */
export class KeyFileBrokenError extends PiccoloError {
  readonly fatal = true;
  constructor(file: string, problem: string) {
    super(500, 'key_file_broken', `broken key file ${file}: ${problem}`, { file, problem });
  }
}

/** A DataKey that does not belong to this key ring was handed to a method that writes with it. */
export class ForeignDataKeyError extends PiccoloError {
  constructor() {
    super(500, 'foreign_data_key', 'the data key does not belong to this key ring');
  }
}

/** A TPM tool failed for another reason than a changed PCR (which is not an error). */
export class TpmError extends PiccoloError {
  constructor(step: string, detail: string) {
    super(503, 'tpm_failed', `TPM ${step} failed: ${detail}`, { step, detail });
  }
}
