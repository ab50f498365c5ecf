// The vault failed: the encrypted storage cannot be opened or kept open. There is no shell on the
// device, so this screen must say what happened in words and what a person can still do.
import { useState } from 'preact/hooks';
import { device, refreshDevice } from '../../api/session.js';
import { asApiError } from '../../api/use-resource.js';
import type { ApiError } from '../../api/client.js';
import { Alert, Notice } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import { Page } from '../../ui/Page.js';

/** What helps, by the part that failed (the vault's reason starts with it). */
function advice(reason: string): string {
  if (reason.startsWith('broken key file')) return 'The file that holds the wrapped keys cannot be read. If the storage card or disk was moved or copied, put the original back. A restart will not repair this file; your data stays encrypted and untouched.';
  if (reason.startsWith('volume failed to mount')) return 'An encrypted volume could not be opened. This often passes after a restart; if it keeps happening, the storage card or disk may be failing.';
  if (reason.startsWith('control store unusable')) return "The device's settings could not be read. A restart may help; if not, the storage card or disk may be damaged.";
  return 'A restart may help. If this keeps happening, the storage card or disk may be failing.';
}

export default function StorageFault() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError>();
  const reason = device.value?.reason ?? 'no reason given';
  const check = async () => {
    setBusy(true);
    setError(undefined);
    await refreshDevice().catch((err) => setError(asApiError(err)));
    setBusy(false);
  };
  return (
    <Page title="The device's storage has a problem" wide={false}>
      <Notice tone="warn" title="What happened">
        <p class="mono" data-testid="fault-reason">
          {reason}
        </p>
      </Notice>
      <p>{advice(reason)}</p>
      <h2>What you can do</h2>
      <ol>
        <li>Restart the device: unplug its power, wait ten seconds and plug it back in. Then reload this page.</li>
        <li>Check that its storage card or disk is seated firmly and that the power supply is strong enough.</li>
        <li>If it still fails, your data stays encrypted on the disk, untouched. Keep your recovery key safe: it opens the data again once the fault is fixed.</li>
      </ol>
      <Alert error={error} />
      <div class="actions">
        <Button onClick={check} busy={busy}>
          Check again
        </Button>
        {busy && (
          <span class="muted" role="status">
            Asking the device…
          </span>
        )}
      </div>
    </Page>
  );
}
