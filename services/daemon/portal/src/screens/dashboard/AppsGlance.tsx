// The apps at a glance: each with its state and, while it runs, an Open link to its first web
// listener on the local network. A failed or stopped app gets no link (its port would refuse).
// Live from `app.state` (an unknown app or a removal reloads the list) and `app.health`.
import type { AppEvent, AppView } from '../../../../apps/manager.js';
import type { RemoteStatus } from '../../../../remote/remote-access.js';
import { api, seg } from '../../api/client.js';
import { useEvent } from '../../api/events.js';
import { useResource } from '../../api/use-resource.js';
import { Badge } from '../../ui/Badge.js';
import { LinkButton } from '../../ui/Button.js';
import { Loaded } from '../../ui/Loading.js';
import { Card } from '../../ui/Page.js';
import { canOpen } from '../apps/model.js';
import { serviceUrls } from '../services/urls.js';

export function AppsGlance({ remote }: { remote?: RemoteStatus }) {
  const apps = useResource((signal) => api.get<{ apps: AppView[] }>('/api/v1/apps', { signal }).then((r) => r.apps));
  useEvent<AppEvent>('app.state', ({ data }) => {
    if (data.type === 'app-removed') return apps.set((list) => list?.filter((a) => a.name !== data.app));
    if (data.type !== 'app-state') return;
    if (!apps.data?.some((a) => a.name === data.app)) return apps.reload();
    apps.set((list) => list?.map((a) => (a.name === data.app ? { ...a, state: data.state, reason: data.reason } : a)));
  });
  useEvent<AppEvent>('app.health', ({ data }) => {
    if (data.type !== 'health') return;
    apps.set((list) => list?.map((a) => (a.name === data.app ? { ...a, health: data.health, healthReason: data.reason } : a)));
  });
  return (
    <Card title="Apps" id="apps" actions={<a href="/apps">All apps</a>}>
      <Loaded resource={apps} what="the apps">
        {(list) =>
          list.length === 0 ? (
            <p>
              No apps installed yet. <a href="/apps/catalog">Browse the catalog</a>.
            </p>
          ) : (
            <ul class="list apps-glance">
              {list.map((app) => {
                const web = app.services.find((s) => s.protocol === 'http');
                const open = canOpen(app) && web ? serviceUrls(web, remote).local : undefined;
                return (
                  <li key={app.name} data-app={app.name}>
                    <a href={`/apps/${seg(app.name)}`} class="app-name">
                      {app.name}
                    </a>{' '}
                    <Badge state={app.state} />
                    {app.state === 'running' && app.health === 'degraded' && <Badge state="degraded" label="unhealthy" />}
                    {app.state === 'failed' && app.reason && <p class="reason">{app.reason}</p>}
                    {open && (
                      <LinkButton href={open} target="_blank" rel="noopener" class="open">
                        Open {app.name}
                      </LinkButton>
                    )}
                  </li>
                );
              })}
            </ul>
          )
        }
      </Loaded>
    </Card>
  );
}
