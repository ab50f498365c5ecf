// Passkeys: a fingerprint, face, PIN or security key as the second step. A passkey belongs to the
// host name the portal was opened by; browsers allow none on an IP address or on plain http (but
// localhost), which the daemon tells in passkeyHost and this card repeats before anyone tries.
import type { PublicKeyCredentialCreationOptionsJSON } from '@simplewebauthn/browser';
import { useState } from 'preact/hooks';
import type { PasskeyView, SecondFactorStatus } from '../../../../auth/second-factor/second-factor.js';
import { api, ApiError, seg } from '../../api/client.js';
import { Alert, Notice } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import { Field } from '../../ui/Field.js';
import { Card } from '../../ui/Page.js';
import { formatTime } from '../../format.js';
import { passkeyProblem, sentence } from './messages.js';
import { PasswordDialog } from './PasswordDialog.js';
import type { EnrolResult } from './TotpCard.js';
import { useAttempt } from '../auth/use-attempt.js';

export function PasskeysCard({ status, onChange }: { status: SecondFactorStatus; onChange: (result: EnrolResult) => void }) {
  const [name, setName] = useState('');
  const [removing, setRemoving] = useState<PasskeyView>();
  const add = useAttempt();
  const remove = useAttempt();
  const host = status.passkeyHost;

  const register = async (e: Event) => {
    e.preventDefault();
    const { value: result } = await add.run(async () => {
      const optionsJSON = await api.post<PublicKeyCredentialCreationOptionsJSON>('/api/v1/auth/passkeys/register/options');
      const { startRegistration } = await import('@simplewebauthn/browser');
      let response;
      try {
        response = await startRegistration({ optionsJSON });
      } catch (err) {
        throw new ApiError(0, 'passkey', passkeyProblem(err) ?? `The passkey could not be made: ${(err as Error).message}`);
      }
      return api.post<EnrolResult>('/api/v1/auth/passkeys/register', { response, name: name.trim() });
    });
    if (result) (setName(''), onChange(result));
  };
  const confirmRemove = async (password: string) => {
    const { value: next } = await remove.run(() => api.del<SecondFactorStatus>(`/api/v1/auth/passkeys/${seg(removing!.id)}`, { password, confirm: true }));
    if (next) (setRemoving(undefined), onChange({ status: next }));
  };

  return (
    <Card title="Passkeys" id="passkeys">
      <p>A passkey signs in with this device's fingerprint or face unlock, a PIN, or a security key, instead of typing a code.</p>
      {status.passkeys.length > 0 ? (
        <ul class="list passkey-list" aria-label="Registered passkeys">
          {status.passkeys.map((p) => (
            <li key={p.id} class="passkey">
              <div>
                <strong>{p.name}</strong>
                <p class="muted">
                  Works at {p.rpId} · added {formatTime(p.createdAt)} · {p.lastUsedAt ? `last used ${formatTime(p.lastUsedAt)}` : 'not used yet'}
                </p>
              </div>
              <Button variant="secondary" onClick={() => (remove.setError(undefined), setRemoving(p))}>
                Remove {p.name}
              </Button>
            </li>
          ))}
        </ul>
      ) : (
        <p class="muted">No passkey yet.</p>
      )}
      {host.ok ? (
        <form onSubmit={register} noValidate>
          <Field label="Name of the new passkey" value={name} onInput={(e) => setName(e.currentTarget.value)} maxLength={64} hint={`Such as "Phone" or "Laptop". It will work at ${host.rpId}.`} error={sentence(add.error?.field('name'))} />
          <Alert key={add.attempt} error={add.error?.field('name') ? undefined : add.error} onRetryAllowed={add.retryAllowed} />
          <div class="actions">
            <Button type="submit" busy={add.busy} disabled={!name.trim()}>
              Add a passkey
            </Button>
          </div>
        </form>
      ) : (
        <Notice tone="warn" title="Passkeys cannot be added from this address">
          <p>{sentence(host.problem)}.</p>
        </Notice>
      )}
      {removing && (
        <PasswordDialog title={`Remove the passkey "${removing.name}"?`} actionLabel="Remove" busy={remove.busy} error={remove.error} onConfirm={confirmRemove} onCancel={() => setRemoving(undefined)}>
          <p>It will no longer sign in to this device. Remove it from the authenticator too, in its own settings.</p>
        </PasswordDialog>
      )}
    </Card>
  );
}
