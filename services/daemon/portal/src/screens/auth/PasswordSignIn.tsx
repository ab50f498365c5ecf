// The password form that Login and Unlock share: one field, one button, the daemon's answer beside
// the field, and after too many failures the live countdown with the button disabled until it ends.
// With a second factor enrolled the daemon answers with a challenge instead of a session: the
// two-factor step (screens/security/SecondFactorStep.tsx) takes the form's place.
import { useRef, useState } from 'preact/hooks';
import { api, type ApiError } from '../../api/client.js';
import { nextOnDevice, refreshDevice, startSession, type SessionReply, type VaultState } from '../../api/session.js';
import { Alert, Notice } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import { Field } from '../../ui/Field.js';
import { SecondFactorStep, type SecondFactorChallenge } from '../security/SecondFactorStep.js';
import { useAttempt, useFocusOnError } from './use-attempt.js';

interface SignInReply extends SessionReply {
  state?: VaultState;
  secondFactor?: SecondFactorChallenge;
}

export interface PasswordSignInProps {
  endpoint: '/api/v1/auth/login' | '/api/v1/crypto/unlock';
  submitLabel: string;
  busyText: string;
  /** Where to go after sign-in: the ?next= app (full navigation) or, without one, this portal path. */
  route: (path: string) => void;
}

/** The daemon's answers that concern the password field itself. */
function passwordError(error: ApiError | undefined): string | undefined {
  if (!error) return undefined;
  if (error.code === 'wrong_passphrase' || error.status === 401) return 'The password is not correct. Check caps lock and try again.';
  return error.field('password');
}

export function PasswordSignIn({ endpoint, submitLabel, busyText, route }: PasswordSignInProps) {
  const [password, setPassword] = useState('');
  const [challenge, setChallenge] = useState<SecondFactorChallenge>();
  const [restartMessage, setRestartMessage] = useState<string>();
  const [empty, setEmpty] = useState(false);
  const attempt = useAttempt();
  const form = useRef<HTMLFormElement>(null);
  useFocusOnError(attempt.error, attempt.attempt, form);

  const signedIn = (reply: SignInReply) => {
    const next = nextOnDevice(location.search);
    // Leaving the portal: a full navigation, without first routing the shell to the dashboard.
    if (next) return location.assign(next);
    startSession(reply);
    route('/');
  };

  if (challenge) {
    return (
      <SecondFactorStep
        challenge={challenge}
        // After an unlock the second step's answer also carries the vault state.
        onSignedIn={(session) => signedIn(session as SignInReply)}
        onRestart={(message) => {
          setChallenge(undefined);
          setPassword('');
          setRestartMessage(message);
        }}
      />
    );
  }

  const fieldError = passwordError(attempt.error);
  const submit = async (e: Event) => {
    e.preventDefault();
    setRestartMessage(undefined);
    if (!password) return setEmpty(true);
    const { value: reply, error } = await attempt.run(() => api.post<SignInReply>(endpoint, { password }));
    // The device changed state under the form (locked meanwhile, or unlocked by someone else).
    if (!reply) return refreshDeviceIfStale(error);
    if (reply.secondFactor) return setChallenge(reply.secondFactor);
    signedIn(reply);
  };

  return (
    <form ref={form} onSubmit={submit} noValidate>
      {restartMessage && <Notice tone="warn">{restartMessage}</Notice>}
      <Field
        label="Admin password"
        type="password"
        autocomplete="current-password"
        value={password}
        error={fieldError ?? (empty ? 'Enter the admin password.' : undefined)}
        onInput={(e) => {
          setPassword(e.currentTarget.value);
          setEmpty(false);
          attempt.clearError();
        }}
      />
      {!fieldError && <Alert key={attempt.attempt} error={attempt.error} onRetryAllowed={attempt.retryAllowed} />}
      <div class="actions">
        <Button type="submit" busy={attempt.busy} disabled={attempt.waiting}>
          {submitLabel}
        </Button>
        {attempt.busy && (
          <span class="muted" role="status">
            {busyText}
          </span>
        )}
      </div>
    </form>
  );
}

function refreshDeviceIfStale(error: ApiError | undefined): void {
  if (error && (error.status === 409 || error.status === 423 || error.status === 503)) void refreshDevice().catch(() => undefined);
}
