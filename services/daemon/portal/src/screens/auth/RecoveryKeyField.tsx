// The 24-word recovery key typed or pasted, for the password reset and the restore from a backup:
// the words are counted as they come, and too many are said before the daemon is asked.
import { Field } from '../../ui/Field.js';

export const RECOVERY_WORDS = 24;

/** People paste the key with line breaks, numbers ("1. word"), capitals and double spaces. */
export function recoveryWords(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/\b\d+[.)]?(?=\s|$)/g, ' ')
    .split(/[\s,;]+/)
    .filter(Boolean);
}

/** `hint` starts the hint ("The 24 words, in order"); the count so far follows it. */
export function RecoveryKeyField({ value, onInput, error, hint }: { value: string; onInput: (text: string) => void; error?: string; hint: string }) {
  const count = recoveryWords(value).length;
  return (
    <Field
      label="Recovery key"
      multiline
      rows={4}
      value={value}
      autocomplete="off"
      autocapitalize="off"
      spellcheck={false}
      hint={`${hint}. ${count} of ${RECOVERY_WORDS} words so far.`}
      error={error ?? (count > RECOVERY_WORDS ? `That is ${count} words: the key has ${RECOVERY_WORDS}.` : undefined)}
      onInput={(e) => onInput(e.currentTarget.value)}
    />
  );
}
