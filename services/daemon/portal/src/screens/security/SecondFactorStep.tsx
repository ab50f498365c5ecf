// The second step of a sign-in, embedded by the login and unlock screens once the password was
// right and the answer carried a `secondFactor` challenge: a code from the authenticator app, a
// passkey, or a recovery code. A ticket that expired or was used up sends the person back to the
// password (onRestart); wrong codes show beside the field; a 429 counts down.
import type { PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/browser';
import { useRef, useState } from 'preact/hooks';
import type { SecondFactorChallenge } from '../../../../auth/second-factor/second-factor.js';
import { api, ApiError } from '../../api/client.js';
import type { SessionReply } from '../../api/session.js';
import { Alert } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import { Field, type InputAttributes } from '../../ui/Field.js';
import { useAttempt, useFocusOnError } from '../auth/use-attempt.js';
import { passkeyProblem, sentence } from './messages.js';

export type { SecondFactorChallenge };

export interface SecondFactorStepProps {
  challenge: SecondFactorChallenge;
  onSignedIn: (session: { authenticated: true; user: string; csrfToken: string }) => void;
  /** The ticket is no longer good: show the password step again with this message. */
  onRestart: (message: string) => void;
}

type Mode = 'totp' | 'recovery';

/** The code field as each kind of code wants it (keyed by mode: switching starts a fresh field). */
const FIELDS: Record<Mode, InputAttributes & { label: string; hint?: string }> = {
  totp: { label: 'Authentication code', inputMode: 'numeric', autocomplete: 'one-time-code', maxLength: 6, pattern: '[0-9]*' },
  recovery: { label: 'Recovery code', autocomplete: 'off', autocapitalize: 'characters', spellcheck: false, hint: 'Like ABCDE-FGH23; case and dashes do not matter.' },
};

export function SecondFactorStep({ challenge, onSignedIn, onRestart }: SecondFactorStepProps) {
  const has = (method: SecondFactorChallenge['methods'][number]) => challenge.methods.includes(method);
  const [mode, setMode] = useState<Mode>(has('totp') ? 'totp' : 'recovery');
  const [code, setCode] = useState('');
  const attempt = useAttempt();
  const form = useRef<HTMLFormElement>(null);
  useFocusOnError(attempt.error, attempt.attempt, form);

  async function finish(work: () => Promise<SessionReply>) {
    const { value: reply } = await attempt.run(async () => {
      try {
        return await work();
      } catch (err) {
        if (err instanceof ApiError && err.code === 'second_factor_expired') onRestart('The sign-in took too long or had too many wrong tries. Enter the password again.');
        throw err;
      }
    });
    if (reply?.authenticated) onSignedIn(reply as { authenticated: true; user: string; csrfToken: string });
  }

  const submitCode = (event: Event) => {
    event.preventDefault();
    void finish(() => api.post<SessionReply>('/api/v1/auth/login/second-factor', { ticket: challenge.ticket, code: code.trim() }));
  };

  const usePasskey = () =>
    finish(async () => {
      const optionsJSON = await api.post<PublicKeyCredentialRequestOptionsJSON>('/api/v1/auth/login/passkey/options', { ticket: challenge.ticket });
      // Loaded only when wanted: most sign-ins never need the WebAuthn helper.
      const { startAuthentication } = await import('@simplewebauthn/browser');
      let response;
      try {
        response = await startAuthentication({ optionsJSON });
      } catch (err) {
        throw new ApiError(0, 'passkey', passkeyProblem(err) ?? `The passkey could not be used: ${(err as Error).message}`);
      }
      return api.post<SessionReply>('/api/v1/auth/login/passkey', { ticket: challenge.ticket, response });
    });

  const switchTo = (next: Mode) => {
    setMode(next);
    setCode('');
    attempt.clearError();
  };

  const fieldError = sentence(attempt.error?.field('code'));
  return (
    <div class="second-factor">
      <p>{mode === 'totp' ? 'Enter the 6-digit code your authenticator app shows for this device.' : 'Enter one of the recovery codes you saved. Each works once.'}</p>
      <form ref={form} onSubmit={submitCode} noValidate>
        <Field key={mode} {...FIELDS[mode]} name="code" value={code} onInput={(e) => setCode(e.currentTarget.value)} autoFocus error={fieldError} />
        <Alert error={fieldError ? undefined : attempt.error} onRetryAllowed={attempt.retryAllowed} key={attempt.attempt} />
        <div class="actions">
          <Button type="submit" busy={attempt.busy} disabled={attempt.waiting || !code.trim()}>
            Sign in
          </Button>
          {has('passkey') && (
            <Button variant="secondary" onClick={usePasskey} disabled={attempt.busy || attempt.waiting}>
              Use a passkey
            </Button>
          )}
        </div>
      </form>
      <p>
        {mode === 'totp' && has('recovery') && (
          <Button variant="quiet" onClick={() => switchTo('recovery')}>
            Use a recovery code
          </Button>
        )}
        {mode === 'recovery' && has('totp') && (
          <Button variant="quiet" onClick={() => switchTo('totp')}>
            Use the authenticator app
          </Button>
        )}
      </p>
      {!has('passkey') && !has('totp') && (
        <p class="muted">Passkeys registered on this device work only at the address they were added on.</p>
      )}
    </div>
  );
}
