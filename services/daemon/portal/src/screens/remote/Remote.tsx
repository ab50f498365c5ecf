// Remote access: reach this device and its apps from the internet through a relay, over HTTPS
// with certificates the device obtains itself. The status follows `remote.status` live; the
// settings form checks (preflight) and saves; certificates can be renewed; disabling asks first.
import { useState } from 'preact/hooks';
import type { RemoteStatus } from '../../../../remote/remote-access.js';
import { api, type ApiError } from '../../api/client.js';
import { useEvent } from '../../api/events.js';
import { asApiError, useResource } from '../../api/use-resource.js';
import { Notice } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import { ConfirmDialog } from '../../ui/ConfirmDialog.js';
import { Loaded } from '../../ui/Loading.js';
import { Card, Page } from '../../ui/Page.js';
import { Certificates } from './Certificates.js';
import { RemoteSettingsForm } from './RemoteSettingsForm.js';
import { RemoteStatusFacts } from './RemoteStatusFacts.js';

interface SecondFactorSummary {
  enabled: boolean;
}

export default function Remote() {
  const status = useResource((signal) => api.get<RemoteStatus>('/api/v1/remote/status', { signal }));
  useEvent<RemoteStatus>('remote.status', ({ data }) => status.set(() => data));
  // Only to decide whether to suggest two-factor sign-in; if it cannot be read, suggest it.
  const secondFactor = useResource((signal) => api.get<SecondFactorSummary>('/api/v1/auth/second-factor', { signal }));

  return (
    <Page title="Remote access" intro="Reach this device and its apps from the internet through a relay, over HTTPS with certificates the device obtains itself.">
      {secondFactor.data?.enabled !== true && !secondFactor.loading && (
        <Notice tone="info" title="Turn on two-factor sign-in">
          <p>
            With remote access on, the sign-in page faces the internet. A second step (an authenticator app or a passkey) keeps a guessed or leaked password from being
            enough. <a href="/system/security">Set up two-factor sign-in</a>.
          </p>
        </Notice>
      )}
      <Loaded resource={status} what="remote access">
        {(s) => (
          <>
            <Card title="Status" id="remote-status">
              <RemoteStatusFacts status={s} />
            </Card>
            <Card title="Settings" id="remote-settings">
              <RemoteSettingsForm status={s} onSaved={(next) => status.set(() => next)} />
            </Card>
            <Card title="Certificates" id="remote-certs">
              <Certificates certificates={s.certificates} enabled={s.enabled} onRenewed={(certificates) => status.set((c) => c && { ...c, certificates })} />
            </Card>
            <Card title="Turn off" id="remote-off">
              <DisableRemote enabled={s.enabled} onDisabled={(next) => status.set(() => next)} />
            </Card>
          </>
        )}
      </Loaded>
    </Page>
  );
}

function DisableRemote({ enabled, onDisabled }: { enabled: boolean; onDisabled: (status: RemoteStatus) => void }) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError>();
  const [done, setDone] = useState(false);
  async function disable() {
    setBusy(true);
    setError(undefined);
    try {
      onDisabled(await api.post<RemoteStatus>('/api/v1/remote/disable', { confirm: true }));
      setOpen(false);
      setDone(true);
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <>
      <p>Disabling closes the relay connection: the device and its apps are then reachable on the local network only. The settings are kept; save them again to turn it back on.</p>
      {done && !enabled && <Notice tone="ok">Remote access is off.</Notice>}
      <div class="actions">
        <Button variant="danger" disabled={!enabled} onClick={() => (setError(undefined), setOpen(true))}>
          Disable remote access…
        </Button>
      </div>
      {!enabled && !done && <p class="muted">Remote access is not on.</p>}
      {open && (
        <ConfirmDialog title="Disable remote access?" actionLabel="Yes, disable remote access" busy={busy} error={error} onConfirm={disable} onCancel={() => setOpen(false)}>
          <p>Anyone using the device or its apps from outside is disconnected.</p>
        </ConfirmDialog>
      )}
    </>
  );
}
