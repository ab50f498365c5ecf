// Home: the device at a glance, all of it live. Health and metrics come from the system status
// (metrics then from `system.metrics` every few seconds; health, which has no event, is read again
// every 30 s), remote access from `remote.status`, the apps from `app.state` / `app.health`, OS
// updates in one line linking to their screen (screens/updates).
import { useEffect } from 'preact/hooks';
import { api } from '../../api/client.js';
import { useEvent } from '../../api/events.js';
import { useResource } from '../../api/use-resource.js';
import type { RemoteStatus } from '../../../../remote/remote-access.js';
import type { SystemMetrics, SystemStatus } from '../../../../system/types.js';
import { formatDuration } from '../../format.js';
import { Loaded } from '../../ui/Loading.js';
import { Card, Facts, Page } from '../../ui/Page.js';
import { AppsGlance } from './AppsGlance.js';
import { HealthCard } from './HealthCard.js';
import { MetricsCard } from './MetricsCard.js';
import { RemoteGlance } from './RemoteGlance.js';
import { OsUpdatesGlance } from '../updates/Glance.js';

const HEALTH_REFRESH_MS = 30_000;

export default function Dashboard() {
  const status = useResource((signal) => api.get<SystemStatus>('/api/v1/system/status', { signal }));
  useEvent<SystemMetrics>('system.metrics', ({ data, at }) => status.set((s) => s && { ...s, metrics: data, sampledAt: at }));
  // Polling, because nothing announces a change of health.
  useEffect(() => {
    const timer = setInterval(status.reload, HEALTH_REFRESH_MS);
    return () => clearInterval(timer);
  }, [status.reload]);
  const remote = useResource((signal) => api.get<RemoteStatus>('/api/v1/remote/status', { signal }));
  useEvent<RemoteStatus>('remote.status', ({ data }) => remote.set(() => data));

  return (
    <Page title="Dashboard" intro="This device, its apps and how they are doing. Everything here updates by itself.">
      <Loaded resource={status} what="the device's status">
        {(s) => (
          <div class="grid dashboard">
            <HealthCard health={s.health} />
            <MetricsCard metrics={s.metrics} sampledAt={s.sampledAt} />
            <Card title="Device" id="device">
              <Facts
                items={[
                  ['Name', s.device.hostname],
                  ['Version', s.device.version],
                  ['Up for', formatDuration(s.device.uptimeSeconds)],
                ]}
              />
              <OsUpdatesGlance />
            </Card>
          </div>
        )}
      </Loaded>
      <div class="grid dashboard">
        <RemoteGlance remote={remote} />
        <AppsGlance remote={remote.data} />
      </div>
    </Page>
  );
}
