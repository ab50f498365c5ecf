// Back up the whole device: the admin password, then the device streams one encrypted file (its
// apps stopped in turn while their data is copied). The recovery key alone opens the file, so it
// can be kept anywhere; restoring is the setup wizard's "Restore from backup" on a fresh device.
// Progress comes over the events stream (backup.progress) while the file arrives.
import { useState } from 'preact/hooks';
import { api, type ApiError } from '../../api/client.js';
import { useEvent } from '../../api/events.js';
import { asApiError } from '../../api/use-resource.js';
import { formatBytes } from '../../format.js';
import { Notice } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import { downloadText } from '../../ui/CopyButton.js';
import { Card } from '../../ui/Page.js';
import { ProgressBar } from '../../ui/ProgressBar.js';
import type { BackupProgress } from '../../../../backup/progress.js';
import { ConfirmPassword } from './ConfirmPassword.js';

function stepText(step: string | undefined): string {
  if (!step || step === 'control') return 'Saving the settings';
  if (step === 'bootstrap') return 'Saving the device secrets';
  if (step.startsWith('app-')) return `Saving the app ${step.slice(4)} (stopped meanwhile)`;
  return 'Finishing the file';
}

export function Backup() {
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError>();
  const [progress, setProgress] = useState<BackupProgress>();
  const [saved, setSaved] = useState<{ bytes: number }>();
  useEvent<BackupProgress>('backup.progress', (event) => busy && setProgress(event.data));

  async function backUp() {
    setBusy(true);
    setError(undefined);
    setSaved(undefined);
    setProgress(undefined);
    try {
      const file = await api.post<Blob>('/api/v1/backup', { password });
      setPassword('');
      downloadText(`piccolo-${new Date().toISOString().slice(0, 10)}.piccolo-backup`, file, 'application/octet-stream');
      setSaved({ bytes: file.size });
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Card title="Backup and restore" id="backup">
      <p>
        A backup is one encrypted file with everything on this device: settings, apps and their data. Only the recovery key opens it, so you can keep it anywhere. Each app
        stops for a moment while its data is copied. To restore, start a fresh device and choose Restore from backup in its setup.
      </p>
      {saved && <Notice tone="ok">The backup is saved ({formatBytes(saved.bytes)}). Keep it with the recovery key that was current today.</Notice>}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (password && !busy) void backUp();
        }}
      >
        <ConfirmPassword password={password} onPassword={setPassword} error={error} />
        {busy && <ProgressBar label={stepText(progress?.step)} detail={progress ? `${formatBytes(progress.bytes)} so far` : undefined} />}
        <div class="actions">
          <Button type="submit" busy={busy} disabled={!password}>
            Download a backup
          </Button>
        </div>
      </form>
    </Card>
  );
}
