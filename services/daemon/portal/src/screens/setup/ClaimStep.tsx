// Step 2: the claim code. A wrong code is named beside the field; too many wrong codes start a
// countdown with the button disabled until it ends.
import { useRef, useState } from 'preact/hooks';
import { api, type ApiError } from '../../api/client.js';
import { refreshDevice } from '../../api/session.js';
import { Alert, Notice } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import { Field } from '../../ui/Field.js';
import { Page } from '../../ui/Page.js';
import { useAttempt, useFocusOnError } from '../auth/use-attempt.js';

export interface ClaimReply {
  setupToken: string;
  recoveryKey: string;
  expiresInSeconds: number;
}

function claimError(error: ApiError | undefined): string | undefined {
  if (!error) return undefined;
  if (error.status === 403) return "That is not this device's claim code. Check it on the device's screen or console: it never uses the letters O, I or L.";
  return error.field('claimCode');
}

export function ClaimStep({ notice, onClaimed, onBack }: { notice?: string; onClaimed: (reply: ClaimReply) => void; onBack: () => void }) {
  const [code, setCode] = useState('');
  const [empty, setEmpty] = useState(false);
  const attempt = useAttempt();
  const form = useRef<HTMLFormElement>(null);
  useFocusOnError(attempt.error, attempt.attempt, form);
  const fieldError = claimError(attempt.error) ?? (empty ? 'Enter the claim code.' : undefined);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!code.trim()) return setEmpty(true);
    const { value, error } = await attempt.run(() => api.post<ClaimReply>('/api/v1/setup/claim', { claimCode: code.trim() }));
    if (value) return onClaimed(value);
    if (error?.status === 409) void refreshDevice().catch(() => undefined);
  };

  return (
    <Page title="Enter the claim code" wide={false}>
      {notice && <Notice tone="warn">{notice}</Notice>}
      <form ref={form} onSubmit={submit} noValidate>
        <Field
          label="Claim code"
          value={code}
          autocomplete="off"
          autocapitalize="characters"
          spellcheck={false}
          hint="10 letters and digits, shown as ABCDE-23456. Dashes, spaces and lower case do not matter."
          error={fieldError}
          onInput={(e) => {
            setCode(e.currentTarget.value);
            setEmpty(false);
            attempt.clearError();
          }}
        />
        {!fieldError && <Alert key={attempt.attempt} error={attempt.error} onRetryAllowed={attempt.retryAllowed} />}
        <div class="actions">
          <Button type="submit" busy={attempt.busy} disabled={attempt.waiting}>
            Continue
          </Button>
          <Button variant="secondary" onClick={onBack}>
            Back
          </Button>
        </div>
      </form>
    </Page>
  );
}
