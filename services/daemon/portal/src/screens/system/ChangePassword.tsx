// Change the admin password: the current one, then the new one twice with the rules ticked live
// (the same fields as the wizard's and the reset's); the button waits until every rule holds. The
// daemon ends every other session and hands this browser a new one.
import { useState } from 'preact/hooks';
import { api, type ApiError } from '../../api/client.js';
import { startSession, type SessionReply } from '../../api/session.js';
import { asApiError } from '../../api/use-resource.js';
import { Alert, Notice } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import { Field } from '../../ui/Field.js';
import { Card } from '../../ui/Page.js';
import { NewPasswordFields, newPasswordReady } from '../auth/NewPassword.js';

export function ChangePassword() {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [repeat, setRepeat] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError>();
  const [done, setDone] = useState(false);
  const ready = newPasswordReady(next, repeat);
  async function submit() {
    setBusy(true);
    setError(undefined);
    setDone(false);
    try {
      startSession(await api.post<SessionReply>('/api/v1/auth/password', { currentPassword: current, newPassword: next }));
      setCurrent('');
      setNext('');
      setRepeat('');
      setDone(true);
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  }
  // A wrong current password is a 401; the new one's rules come back as "password: ...".
  const currentError = error?.status === 401 ? 'This is not the current password.' : error?.field('currentPassword');
  const newError = error?.field('newPassword') ?? error?.field('password');
  const shown = error && !currentError && !newError;
  return (
    <Card title="Password" id="password">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (ready && current) void submit();
        }}
      >
        <Field label="Current password" type="password" name="currentPassword" autocomplete="current-password" value={current} onInput={(e) => setCurrent(e.currentTarget.value)} error={currentError} />
        <NewPasswordFields label="New password" password={next} repeat={repeat} onPassword={setNext} onRepeat={setRepeat} error={newError} />
        {shown && <Alert error={error} />}
        {done && <Notice tone="ok">Password changed. Every other browser has been signed out.</Notice>}
        <div class="actions">
          <Button type="submit" busy={busy} disabled={!ready || !current}>
            Change password
          </Button>
        </div>
      </form>
    </Card>
  );
}
