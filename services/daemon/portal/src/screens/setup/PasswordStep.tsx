// Step 4: the admin password, with the daemon's own rules shown live; the submit stays disabled
// until every rule is met and both fields match. Setting up creates the encrypted volumes (a few
// seconds), then the browser is signed in.
import { useState } from 'preact/hooks';
import { api } from '../../api/client.js';
import { refreshDevice, type SessionReply, type VaultState } from '../../api/session.js';
import { Alert } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import { Page } from '../../ui/Page.js';
import { NewPasswordFields, newPasswordReady } from '../auth/NewPassword.js';
import { useAttempt } from '../auth/use-attempt.js';

export function PasswordStep({ setupToken, onSetUp, onExpired, onBack }: { setupToken: string; onSetUp: (reply: SessionReply & { state?: VaultState }) => void; onExpired: () => void; onBack: () => void }) {
  const [password, setPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const attempt = useAttempt();
  const ready = newPasswordReady(password, repeat);
  const passwordError = attempt.error?.field('password');

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!ready) return;
    const { value, error } = await attempt.run(() => api.post<SessionReply & { state?: VaultState }>('/api/v1/setup', { setupToken, password, recoveryKeySaved: true }));
    if (value) return onSetUp(value);
    if (error?.status === 403) return onExpired();
    if (error?.status === 409) void refreshDevice().catch(() => undefined);
  };

  return (
    <Page title="Choose the admin password" wide={false}>
      <p>You sign in with it, and it unlocks the encrypted storage. There is no way to read it back: if you forget it, the recovery key sets a new one.</p>
      <form onSubmit={submit} noValidate>
        <NewPasswordFields password={password} repeat={repeat} error={passwordError} onPassword={(value) => (setPassword(value), attempt.clearError())} onRepeat={setRepeat} />
        {!passwordError && <Alert key={attempt.attempt} error={attempt.error} onRetryAllowed={attempt.retryAllowed} />}
        <div class="actions">
          <Button type="submit" busy={attempt.busy} disabled={!ready || attempt.waiting}>
            Set up this device
          </Button>
          <Button variant="secondary" onClick={onBack} disabled={attempt.busy}>
            Back to the recovery key
          </Button>
        </div>
        {attempt.busy ? (
          <p class="muted" role="status">
            Creating the encrypted storage. This takes a few seconds…
          </p>
        ) : (
          !ready && <p class="hint">The button turns on once every rule is met and both passwords match.</p>
        )}
      </form>
    </Page>
  );
}
