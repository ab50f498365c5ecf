// The authenticator app: set up (password, then the QR code or the key typed by hand, then a code
// to prove the app has it), or turn off with the password.
import { useState } from 'preact/hooks';
import type { SecondFactorStatus } from '../../../../auth/second-factor/second-factor.js';
import { api } from '../../api/client.js';
import { Alert } from '../../ui/Alert.js';
import { Badge } from '../../ui/Badge.js';
import { Button } from '../../ui/Button.js';
import { CopyButton } from '../../ui/CopyButton.js';
import { Field } from '../../ui/Field.js';
import { Card } from '../../ui/Page.js';
import { formatTime } from '../../format.js';
import { PasswordDialog } from './PasswordDialog.js';
import { QrCode } from './QrCode.js';
import { useAttempt } from '../auth/use-attempt.js';
import { sentence } from './messages.js';

export interface EnrolResult {
  status: SecondFactorStatus;
  recoveryCodes?: string[];
}

export function TotpCard({ status, onChange }: { status: SecondFactorStatus; onChange: (result: EnrolResult) => void }) {
  const [setup, setSetup] = useState<{ secret: string; uri: string }>();
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [turningOff, setTurningOff] = useState(false);
  const action = useAttempt();

  const start = async (e: Event) => {
    e.preventDefault();
    const { value: started } = await action.run(() => api.post<{ secret: string; uri: string }>('/api/v1/auth/totp/setup', { password }));
    if (started) (setSetup(started), setPassword(''));
  };
  const confirm = async (e: Event) => {
    e.preventDefault();
    const { value: result } = await action.run(() => api.post<EnrolResult>('/api/v1/auth/totp/confirm', { code: code.trim() }));
    if (result) (setSetup(undefined), setCode(''), onChange(result));
  };
  const turnOff = async (pw: string) => {
    const { value: next } = await action.run(() => api.post<SecondFactorStatus>('/api/v1/auth/totp/disable', { password: pw, confirm: true }));
    if (next) (setTurningOff(false), onChange({ status: next }));
  };

  const badge = status.totp.enabled ? <Badge state="active" label="On" /> : <Badge state="off" label="Off" />;
  return (
    <Card title="Authenticator app" id="totp" actions={badge}>
      {status.totp.enabled ? (
        <>
          <p>Sign-in asks for the 6-digit code your authenticator app shows. Turned on {formatTime(status.totp.enabledAt!)}.</p>
          <Button variant="danger" onClick={() => (action.setError(undefined), setTurningOff(true))}>
            Turn off the authenticator app
          </Button>
          {turningOff && (
            <PasswordDialog title="Turn off the authenticator app?" actionLabel="Turn off" busy={action.busy} error={action.error} onConfirm={turnOff} onCancel={() => setTurningOff(false)}>
              <p>Sign-in will no longer ask for its codes{status.passkeys.length ? '; your passkeys still work' : ', and the recovery codes stop working'}.</p>
            </PasswordDialog>
          )}
        </>
      ) : setup ? (
        <form onSubmit={confirm} noValidate>
          <p>Scan this code with an authenticator app (Aegis, Google Authenticator, 1Password, Bitwarden…), or type the key into it.</p>
          <div class="totp-setup">
            <QrCode text={setup.uri} label="QR code for the authenticator app" />
            <div class="totp-key">
              <p class="muted">Key to type by hand</p>
              <p class="mono" data-testid="totp-secret">
                {setup.secret.match(/.{1,4}/g)!.join(' ')}
              </p>
              <CopyButton text={setup.secret} what="key" />
            </div>
          </div>
          <Field
            label="Code from the app"
            inputMode="numeric"
            autocomplete="one-time-code"
            maxLength={6}
            value={code}
            onInput={(e) => setCode(e.currentTarget.value)}
            hint="The 6 digits it shows now: this proves the app has the key."
            error={sentence(action.error?.field('code'))}
          />
          <Alert key={action.attempt} error={action.error?.field('code') ? undefined : action.error} onRetryAllowed={action.retryAllowed} />
          <div class="actions">
            <Button type="submit" busy={action.busy} disabled={!code.trim()}>
              Turn on
            </Button>
            <Button variant="secondary" onClick={() => (setSetup(undefined), action.setError(undefined))}>
              Cancel
            </Button>
          </div>
        </form>
      ) : (
        <form onSubmit={start} noValidate>
          <p>An app on your phone shows a new 6-digit code every 30 seconds; sign-in then asks for it after the password.</p>
          <Field label="Admin password" type="password" autocomplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} hint="Asked again before any change to the sign-in." error={sentence(action.error?.field('password'))} />
          <Alert key={action.attempt} error={action.error?.field('password') ? undefined : action.error} onRetryAllowed={action.retryAllowed} />
          <div class="actions">
            <Button type="submit" busy={action.busy} disabled={!password || action.waiting}>
              Set up the authenticator app
            </Button>
          </div>
        </form>
      )}
    </Card>
  );
}
