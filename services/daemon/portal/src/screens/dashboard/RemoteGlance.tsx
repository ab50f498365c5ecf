// Remote access on the dashboard: its state and where the portal is reached from outside.
import type { RemoteStatus } from '../../../../remote/remote-access.js';
import type { Resource } from '../../api/use-resource.js';
import { Badge } from '../../ui/Badge.js';
import { Loaded } from '../../ui/Loading.js';
import { Card, Facts } from '../../ui/Page.js';
import { REMOTE_STATE_LABELS, REMOTE_STATE_TONES, remoteState } from '../remote/state.js';

export function RemoteGlance({ remote }: { remote: Resource<RemoteStatus> }) {
  return (
    <Card title="Remote access" id="remote">
      <Loaded resource={remote} what="remote access">
        {(status) => {
          const state = remoteState(status);
          const lastError = status.enabled ? status.tunnel.status?.lastError : undefined;
          return (
            <>
              <Facts
                items={[
                  ['State', <Badge state={REMOTE_STATE_TONES[state]} label={REMOTE_STATE_LABELS[state]} />],
                  ...(status.enabled && status.portalHostname ? ([['Portal', <span class="mono">https://{status.portalHostname}/</span>]] as [string, preact.ComponentChildren][]) : []),
                  ...(lastError && state !== 'connected' ? ([['Last error', lastError]] as [string, string][]) : []),
                ]}
              />
              <p>
                <a href="/remote">{status.configured ? 'Remote access settings' : 'Set up remote access'}</a>
              </p>
            </>
          );
        }}
      </Loaded>
    </Card>
  );
}
