// Lock the device: the apps stop, the encrypted volumes close and the key is forgotten; every
// session ends. The password unlocks it again. Asks first.
import { useState } from 'preact/hooks';
import { api, type ApiError } from '../../api/client.js';
import { onVaultState } from '../../api/session.js';
import { asApiError } from '../../api/use-resource.js';
import { Button } from '../../ui/Button.js';
import { ConfirmDialog } from '../../ui/ConfirmDialog.js';
import { Card } from '../../ui/Page.js';

export function LockDevice() {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError>();
  async function lock() {
    setBusy(true);
    setError(undefined);
    try {
      await api.post('/api/v1/crypto/lock', { confirm: true });
      // The shell then shows the unlock screen (the daemon ended this session too).
      onVaultState('locked');
    } catch (err) {
      setError(asApiError(err));
      setBusy(false);
    }
  }
  return (
    <Card title="Lock" id="lock">
      <p>Locking stops every app and closes the encrypted storage until someone unlocks it with the password. Use it before moving the device, or when it may be in the wrong hands.</p>
      <div class="actions">
        <Button variant="danger" onClick={() => (setError(undefined), setOpen(true))}>
          Lock device…
        </Button>
      </div>
      {open && (
        <ConfirmDialog title="Lock the device?" actionLabel="Lock device" busy={busy} error={error} onConfirm={lock} onCancel={() => setOpen(false)}>
          <p>Every app stops and everyone is signed out, here and on other devices. The apps start again once the device is unlocked with the password.</p>
        </ConfirmDialog>
      )}
    </Card>
  );
}
