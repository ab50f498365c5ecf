// A new admin password with the 24-word recovery key: for a forgotten password, on a locked or an
// unlocked device. Whoever holds the key is the owner, so the reset also removes the two-factor
// enrolment (the daemon clears TOTP, recovery codes and passkeys) and ends every other session.
import { useRef, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso/router';
import { api, type ApiError } from '../../api/client.js';
import { device, startSession, type SessionReply, type VaultState } from '../../api/session.js';
import { Alert } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import { Page } from '../../ui/Page.js';
import { NewPasswordFields, newPasswordReady } from './NewPassword.js';
import { RECOVERY_WORDS, RecoveryKeyField, recoveryWords } from './RecoveryKeyField.js';
import { useAttempt, useFocusOnError } from './use-attempt.js';

function recoveryError(error: ApiError | undefined): string | undefined {
  if (!error) return undefined;
  if (error.code === 'invalid_recovery_phrase') return `${error.message}.`;
  if (error.code === 'wrong_recovery_phrase') return 'This recovery key does not open this device. It may be an older key, replaced when the key was rotated.';
  return error.field('recoveryKey');
}

export default function ResetPassword() {
  const { route } = useLocation();
  const [key, setKey] = useState('');
  const [password, setPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const attempt = useAttempt();
  const form = useRef<HTMLFormElement>(null);
  useFocusOnError(attempt.error, attempt.attempt, form);
  const words = recoveryWords(key);
  const locked = device.value?.state === 'locked';
  const ready = words.length === RECOVERY_WORDS && newPasswordReady(password, repeat);
  const keyError = recoveryError(attempt.error);
  const passwordError = attempt.error?.field('password') ?? attempt.error?.field('newPassword');

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!ready) return;
    const { value } = await attempt.run(() => api.post<SessionReply & { state?: VaultState }>('/api/v1/crypto/reset-password', { recoveryKey: words.join(' '), newPassword: password }));
    if (!value) return;
    startSession(value);
    route('/', true);
  };

  return (
    <Page title="Reset the admin password" wide={false}>
      <p>Enter the 24-word recovery key you saved at setup, and choose a new admin password. The reset:</p>
      <ul>
        <li>sets the new password{locked ? ' and unlocks the device' : ''};</li>
        <li>signs out every other browser;</li>
        <li>removes two-factor sign-in (authenticator app, passkeys and recovery codes), since the recovery key proves you own the device. Set it up again afterwards in System, Security.</li>
      </ul>
      <p>Your apps and their data are kept.</p>
      <form ref={form} onSubmit={submit} noValidate>
        <RecoveryKeyField
          value={key}
          hint="The 24 words, in order, separated by spaces or line breaks"
          error={keyError}
          onInput={(text) => {
            setKey(text);
            attempt.clearError();
          }}
        />
        <NewPasswordFields
          label="New admin password"
          password={password}
          repeat={repeat}
          error={passwordError}
          onPassword={(value) => (setPassword(value), attempt.clearError())}
          onRepeat={setRepeat}
        />
        {!keyError && !passwordError && <Alert key={attempt.attempt} error={attempt.error} onRetryAllowed={attempt.retryAllowed} />}
        <div class="actions">
          <Button type="submit" busy={attempt.busy} disabled={!ready || attempt.waiting}>
            Reset the password
          </Button>
          {attempt.busy && (
            <span class="muted" role="status">
              Checking the recovery key…
            </span>
          )}
        </div>
        {!ready && !attempt.busy && <p class="hint">The button turns on once the key has 24 words, every password rule is met and both passwords match.</p>}
      </form>
      <p>
        <a href={locked ? '/unlock' : '/login'}>Back to {locked ? 'unlock' : 'sign-in'}</a>
      </p>
    </Page>
  );
}
