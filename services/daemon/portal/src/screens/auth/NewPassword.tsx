// A new admin password with its rules shown live, for the wizard and the reset. The rules come from
// the daemon's own passwordProblems, so what turns green here is exactly what the daemon accepts;
// the form's submit stays disabled until newPasswordReady() (every rule met, both fields equal).
import { useState } from 'preact/hooks';
import { PASSWORD_RULES, passwordProblems } from '../../../../auth/password-policy.js';
import { Checkbox, Field } from '../../ui/Field.js';

const { minLength, passphraseLength, minCharacterClasses } = PASSWORD_RULES;

/** Each rule shown, and the words by which passwordProblems names it when it is broken. */
const RULES = [
  { text: `At least ${minLength} characters`, broken: 'at least' },
  { text: `${passphraseLength} characters or more, or ${minCharacterClasses} of: lower case, upper case, digits, symbols`, broken: 'needs' },
  { text: 'No common word such as "password" or "admin"', broken: 'common word' },
  { text: 'Not one character repeated', broken: 'repeat one character' },
] as const;

export function newPasswordReady(password: string, repeat: string): boolean {
  return passwordProblems(password).length === 0 && password === repeat;
}

export interface NewPasswordProps {
  password: string;
  repeat: string;
  onPassword: (value: string) => void;
  onRepeat: (value: string) => void;
  /** What the daemon said about the password after a submit (cleared by the parent on input). */
  error?: string;
  label?: string;
}

export function NewPasswordFields({ password, repeat, onPassword, onRepeat, error, label = 'Admin password' }: NewPasswordProps) {
  const [shown, setShown] = useState(false);
  const [repeatTouched, setRepeatTouched] = useState(false);
  const problems = passwordProblems(password);
  // Broken rules that are not in the list above (too long, say) still show, as broken ones.
  const others = problems.filter((p) => !RULES.some((rule) => p.includes(rule.broken))).map((p) => p.replace(/^password: /, ''));
  const mismatch = repeat !== '' && repeat !== password && (repeatTouched || repeat.length >= password.length);
  const type = shown ? 'text' : 'password';
  return (
    <>
      <Field label={label} type={type} value={password} autocomplete="new-password" error={error} onInput={(e) => onPassword(e.currentTarget.value)} />
      <div>
        <p class="rules-title" id="password-rules-title">
          The password needs:
        </p>
        <ul class="rules" id="password-rules" aria-labelledby="password-rules-title">
          {RULES.map((rule) => {
            const ok = password !== '' && !problems.some((p) => p.includes(rule.broken));
            return (
              <li key={rule.text} class={ok ? 'ok' : undefined}>
                {rule.text}
                <span class="offscreen">{ok ? ' (met)' : ' (not met yet)'}</span>
              </li>
            );
          })}
          {others.map((text) => (
            <li key={text}>
              {text}
              <span class="offscreen"> (not met yet)</span>
            </li>
          ))}
        </ul>
      </div>
      <Field
        label="Repeat the password"
        type={type}
        value={repeat}
        autocomplete="new-password"
        error={mismatch ? 'The two passwords are not the same yet.' : undefined}
        onInput={(e) => onRepeat(e.currentTarget.value)}
        onChange={() => setRepeatTouched(true)}
      />
      <Checkbox label="Show the passwords" checked={shown} onChange={(e) => setShown(e.currentTarget.checked)} />
    </>
  );
}
