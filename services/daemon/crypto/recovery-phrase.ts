// The recovery key as 24 BIP39 words: 256 bits of entropy plus an 8-bit checksum, so a typo is
// caught here, with a precise message, before any key is derived from it.
import { entropyToMnemonic, mnemonicToEntropy } from '@scure/bip39';
// The package's exports map names the file with its extension; the bare path does not resolve.
import { wordlist } from '@scure/bip39/wordlists/english.js';
import { InvalidRecoveryPhraseError } from './errors.js';

export const RECOVERY_ENTROPY_BYTES = 32;
export const RECOVERY_WORD_COUNT = 24;

const WORDS = new Set(wordlist);

/** The entropy comes from the caller (node:crypto); @scure's own generator needs WebCrypto, absent on Node 18. */
export function recoveryPhraseFromEntropy(entropy: Uint8Array): string {
  if (entropy.length !== RECOVERY_ENTROPY_BYTES) throw new Error(`recovery entropy has ${RECOVERY_ENTROPY_BYTES} bytes`);
  return entropyToMnemonic(entropy, wordlist);
}

/** Accepts any spacing and letter case; throws InvalidRecoveryPhraseError naming what is wrong. */
export function entropyFromRecoveryPhrase(phrase: string): Buffer {
  const words = phrase.normalize('NFKD').toLowerCase().trim().split(/\s+/).filter(Boolean);
  if (words.length !== RECOVERY_WORD_COUNT) {
    throw new InvalidRecoveryPhraseError({ reason: 'word_count', expected: RECOVERY_WORD_COUNT, got: words.length });
  }
  const unknownWords = words.flatMap((word, index) => (WORDS.has(word) ? [] : [{ position: index + 1, word }]));
  if (unknownWords.length) throw new InvalidRecoveryPhraseError({ reason: 'unknown_word', unknownWords });
  try {
    return Buffer.from(mnemonicToEntropy(words.join(' '), wordlist));
  } catch {
    // Every word is in the list, so the only thing left to fail is the checksum.
    throw new InvalidRecoveryPhraseError({ reason: 'checksum' });
  }
}
