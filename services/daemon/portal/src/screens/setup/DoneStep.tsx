// The last step: what is set up, with remote access as it is now, and the way to the dashboard.
import { api } from '../../api/client.js';
import { useResource } from '../../api/use-resource.js';
import { Button } from '../../ui/Button.js';
import { Loaded } from '../../ui/Loading.js';
import { Page } from '../../ui/Page.js';
import type { RemoteStatus } from '../../../../remote/remote-access.js';

/** restoredApps: set after a restore from a backup (the apps it held, starting now). */
export function DoneStep({ onFinish, restoredApps }: { onFinish: () => void; restoredApps?: string[] }) {
  const remote = useResource((signal) => api.get<RemoteStatus>('/api/v1/remote/status', { signal }), []);
  return (
    <Page title="Your device is ready" wide={false}>
      <ul>
        {restoredApps && (
          <li>
            Restored from the backup:{' '}
            {restoredApps.length ? `${restoredApps.join(', ')}, with ${restoredApps.length === 1 ? 'its' : 'their'} data. They start in a moment; the Apps screen shows them.` : 'the settings (the backup held no apps).'}
          </li>
        )}
        <li>The admin password is set, and your data is encrypted.</li>
        <li>Keep the recovery key safe: it is the only way back if the password is lost.</li>
        <li>
          <Loaded resource={remote} what="the remote access status">
            {(status) =>
              status.enabled ? (
                <>
                  Remote access is on: the portal answers at <strong>{status.portalHostname}</strong>. As it faces the internet now, add a second sign-in step in System, Security.
                </>
              ) : (
                <>Remote access is off. You can turn it on any time from Remote access in the menu.</>
              )
            }
          </Loaded>
        </li>
      </ul>
      {!restoredApps?.length && <p>Next, install your first app from the catalog, on the Apps screen.</p>}
      <div class="actions">
        <Button onClick={onFinish}>Go to the dashboard</Button>
      </div>
    </Page>
  );
}
