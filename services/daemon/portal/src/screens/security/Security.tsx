// System → Security: two-factor sign-in. Each factor is optional: an authenticator app (TOTP),
// passkeys, and the recovery codes that come with the first of them. New recovery codes are shown
// once, at the top, until the person says they saved them.
import { useState } from 'preact/hooks';
import type { SecondFactorStatus } from '../../../../auth/second-factor/second-factor.js';
import { api } from '../../api/client.js';
import { useResource } from '../../api/use-resource.js';
import { Alert, Notice } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import { Field } from '../../ui/Field.js';
import { Loaded } from '../../ui/Loading.js';
import { Card, Page } from '../../ui/Page.js';
import { PasskeysCard } from './PasskeysCard.js';
import { NewRecoveryCodes } from './RecoveryCodes.js';
import { TotpCard, type EnrolResult } from './TotpCard.js';
import { useAttempt } from '../auth/use-attempt.js';
import { sentence } from './messages.js';

export default function Security() {
  const status = useResource((signal) => api.get<SecondFactorStatus>('/api/v1/auth/second-factor', { signal }));
  const [codes, setCodes] = useState<string[]>();
  const changed = ({ status: next, recoveryCodes }: EnrolResult) => {
    status.set(() => next);
    if (recoveryCodes) setCodes(recoveryCodes);
  };
  return (
    <Page title="Two-factor sign-in" intro="After the password, sign-in can ask for a second step that a guessed or leaked password cannot pass. Each method is optional; the recovery key still resets everything.">
      {codes && <NewRecoveryCodes codes={codes} deviceName={location.hostname} onSaved={() => setCodes(undefined)} />}
      <Loaded resource={status} what="the sign-in settings">
        {(s) => (
          <>
            <Notice tone={s.enabled ? 'ok' : 'info'}>
              <p>{s.enabled ? 'Sign-in asks for a second step after the password.' : 'Sign-in asks only for the password. Add an authenticator app or a passkey below.'}</p>
            </Notice>
            <TotpCard status={s} onChange={changed} />
            <PasskeysCard status={s} onChange={changed} />
            {s.enabled && <RecoveryCodesCard left={s.recoveryCodesLeft} onNew={(next) => (setCodes(next), status.set((c) => c && { ...c, recoveryCodesLeft: next.length }))} />}
          </>
        )}
      </Loaded>
    </Page>
  );
}

function RecoveryCodesCard({ left, onNew }: { left: number; onNew: (codes: string[]) => void }) {
  const [password, setPassword] = useState('');
  const action = useAttempt();
  const renew = async (e: Event) => {
    e.preventDefault();
    const { value: result } = await action.run(() => api.post<{ recoveryCodes: string[] }>('/api/v1/auth/recovery-codes', { password }));
    if (result) (setPassword(''), onNew(result.recoveryCodes));
  };
  return (
    <Card title="Recovery codes" id="recovery-codes">
      <p>
        {left} of 10 unused. Each signs in once when the phone or the passkey is not at hand.{left <= 3 ? ' Make new ones soon.' : ''}
      </p>
      <form onSubmit={renew} noValidate>
        <Field label="Admin password" type="password" autocomplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} hint="New codes replace all the old ones." error={sentence(action.error?.field('password'))} />
        <Alert key={action.attempt} error={action.error?.field('password') ? undefined : action.error} onRetryAllowed={action.retryAllowed} />
        <div class="actions">
          <Button type="submit" variant="secondary" busy={action.busy} disabled={!password || action.waiting}>
            Make new recovery codes
          </Button>
        </div>
      </form>
    </Card>
  );
}
