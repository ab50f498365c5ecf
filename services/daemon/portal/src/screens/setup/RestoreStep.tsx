// Restore from a backup, on a fresh device after the claim code: the backup file, the recovery key
// that opens it, and a new admin password. The file goes up as it is (the browser streams it); the
// device checks every chunk and keeps nothing of a file that fails. A fresh device has no session
// yet, so no events stream: the progress is asked of GET /api/v1/restore/status while it runs.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type ApiError } from '../../api/client.js';
import { refreshDevice, type SessionReply, type VaultState } from '../../api/session.js';
import { formatBytes } from '../../format.js';
import { Alert } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import { Field } from '../../ui/Field.js';
import { Page } from '../../ui/Page.js';
import { ProgressBar } from '../../ui/ProgressBar.js';
import type { BackupProgress } from '../../../../backup/progress.js';
import { NewPasswordFields, newPasswordReady } from '../auth/NewPassword.js';
import { RECOVERY_WORDS, RecoveryKeyField, recoveryWords } from '../auth/RecoveryKeyField.js';
import { useAttempt, useFocusOnError } from '../auth/use-attempt.js';

export type RestoreReply = SessionReply & { state?: VaultState; apps: string[] };

const POLL_MS = 500;

/** What the person can do about each way a file is refused. */
function fileError(error: ApiError | undefined): string | undefined {
  if (!error || error.code !== 'backup_invalid') return undefined;
  const problem = (error.details as { problem?: string } | undefined)?.problem;
  switch (problem) {
    case 'truncated':
      return 'This backup file is incomplete: it ends before the backup does. Download or copy it again. Nothing was restored.';
    case 'tampered':
      return 'This backup file has been changed or damaged since it was made, so it cannot be trusted. Use another copy. Nothing was restored.';
    case 'not_a_backup':
      return 'This is not a Piccolo OS backup file. Choose the file the device saved (its name ends in .piccolo-backup).';
    case 'unsupported_format':
      return 'This backup was made by a newer version of Piccolo OS. Update this device first, then restore.';
    default:
      return `${error.message.replace(/^archive: /, '')}. Nothing was restored.`;
  }
}

function keyError(error: ApiError | undefined): string | undefined {
  if (!error) return undefined;
  if (error.code === 'invalid_recovery_phrase') return `${error.message}.`;
  if (error.code === 'wrong_recovery_key') return 'This recovery key does not open this backup. It may belong to another device, or it was rotated after the backup was made: use the key that was current then.';
  return error.field('recoveryKey');
}

function stepText(progress: BackupProgress | undefined): string {
  const step = progress?.step;
  if (!step || step === 'reading') return 'Checking the backup';
  if (step === 'finishing') return 'Checking the restored data';
  if (step === 'done') return 'Starting the device';
  if (step === 'bootstrap') return 'Restoring the device settings';
  return step.startsWith('app-') ? `Restoring the app ${step.slice(4)}` : 'Restoring';
}

export function RestoreStep({ setupToken, onRestored, onExpired, onBack }: { setupToken: string; onRestored: (reply: RestoreReply) => void; onExpired: () => void; onBack: () => void }) {
  const [file, setFile] = useState<File | undefined>();
  const [fileMissing, setFileMissing] = useState(false);
  const [key, setKey] = useState('');
  const [password, setPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const [progress, setProgress] = useState<BackupProgress | undefined>();
  const attempt = useAttempt();
  const form = useRef<HTMLFormElement>(null);
  useFocusOnError(attempt.error, attempt.attempt, form);
  const words = recoveryWords(key);
  const ready = words.length === RECOVERY_WORDS && newPasswordReady(password, repeat);
  const archiveError = fileError(attempt.error) ?? (fileMissing ? 'Choose the backup file.' : undefined);
  const recoveryError = keyError(attempt.error);
  const passwordError = attempt.error?.field('password');

  // Polled, not pushed: the events stream needs a session, which only the restore's answer brings.
  useEffect(() => {
    if (!attempt.busy) return;
    let stopped = false;
    const poll = async () => {
      const status = await api.get<BackupProgress | { state: 'idle' }>('/api/v1/restore/status').catch(() => undefined);
      if (!stopped && status && status.state !== 'idle') setProgress(status as BackupProgress);
    };
    const timer = setInterval(() => void poll(), POLL_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [attempt.busy]);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!file) return setFileMissing(true);
    if (!ready) return;
    setProgress(undefined);
    const credentials = base64url(JSON.stringify({ setupToken, recoveryKey: words.join(' '), password }));
    const { value, error } = await attempt.run(() => api.post<RestoreReply>('/api/v1/restore', file, { headers: { 'x-restore-credentials': credentials } }));
    if (value) return onRestored(value);
    if (error?.status === 403) return onExpired();
    if (error?.status === 409) void refreshDevice().catch(() => undefined);
  };

  return (
    <Page title="Restore from a backup" wide={false}>
      <p>This device takes over everything the backup holds: its apps with their data, the device name and its settings. You need:</p>
      <ul>
        <li>the backup file, saved from System on the old device;</li>
        <li>the recovery key of the old device, which opens the backup;</li>
        <li>a new admin password for this device.</li>
      </ul>
      <form ref={form} onSubmit={submit} noValidate>
        <Field
          label="Backup file"
          type="file"
          hint={file ? `${file.name}, ${formatBytes(file.size)}` : 'A file whose name ends in .piccolo-backup.'}
          error={archiveError}
          onChange={(e) => {
            setFile(e.currentTarget.files?.[0]);
            setFileMissing(false);
            attempt.clearError();
          }}
        />
        <RecoveryKeyField
          value={key}
          hint="The old device's 24 words, in order"
          error={recoveryError}
          onInput={(text) => {
            setKey(text);
            attempt.clearError();
          }}
        />
        <NewPasswordFields label="New admin password" password={password} repeat={repeat} error={passwordError} onPassword={(value) => (setPassword(value), attempt.clearError())} onRepeat={setRepeat} />
        {!archiveError && !recoveryError && !passwordError && <Alert key={attempt.attempt} error={attempt.error} onRetryAllowed={attempt.retryAllowed} />}
        {attempt.busy && (
          <ProgressBar
            label={stepText(progress)}
            value={progress?.bytes}
            max={progress?.totalBytes ?? file?.size}
            detail={progress ? `${formatBytes(progress.bytes)} of ${formatBytes(progress.totalBytes ?? file?.size ?? 0)}` : undefined}
          />
        )}
        <div class="actions">
          <Button type="submit" busy={attempt.busy} disabled={!ready || attempt.waiting}>
            Restore this device
          </Button>
          <Button variant="secondary" onClick={onBack} disabled={attempt.busy}>
            Back
          </Button>
        </div>
        {!ready && !attempt.busy && <p class="hint">The button turns on once the key has 24 words, every password rule is met and both passwords match.</p>}
      </form>
    </Page>
  );
}

/** The credentials header: JSON, base64url (a header holds only Latin-1; a password may hold any character). */
function base64url(text: string): string {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
