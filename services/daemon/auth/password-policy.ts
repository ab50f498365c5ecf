// Rules for the admin password, which also protects the data key: shown by the wizard and
// enforced here. Long passphrases pass on length alone; shorter ones need variety.
import { BadRequestError } from '../../common/errors.js';

export const PASSWORD_RULES = {
  minLength: 12,
  maxLength: 1024,
  /** At this length any characters will do (a passphrase of several words). */
  passphraseLength: 20,
  /** Below it, at least this many of: lower case, upper case, digits, other characters. */
  minCharacterClasses: 3,
} as const;

const COMMON = ['password', 'piccolo', 'qwerty', 'letmein', 'welcome', 'admin', '123456', 'iloveyou', 'changeme'];

/** Every rule the password breaks; empty when it is acceptable. */
export function passwordProblems(password: string): string[] {
  const problems: string[] = [];
  const { minLength, maxLength, passphraseLength, minCharacterClasses } = PASSWORD_RULES;
  if (password.length < minLength) problems.push(`password: must be at least ${minLength} characters`);
  if (password.length > maxLength) problems.push(`password: must be at most ${maxLength} characters`);
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9]/].filter((re) => re.test(password)).length;
  if (password.length < passphraseLength && classes < minCharacterClasses) {
    problems.push(`password: under ${passphraseLength} characters it needs ${minCharacterClasses} of lower case, upper case, digits, symbols`);
  }
  const lower = password.toLowerCase();
  const common = COMMON.find((word) => lower.includes(word));
  if (common) problems.push(`password: must not contain a common word such as "${common}"`);
  if (/^(.)\1+$/.test(password)) problems.push('password: must not repeat one character');
  return problems;
}

export function assertStrongPassword(password: string): void {
  const problems = passwordProblems(password);
  if (problems.length) throw new BadRequestError('the password is too weak', problems);
}
