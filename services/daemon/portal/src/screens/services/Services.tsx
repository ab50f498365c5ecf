// Every listener of every app, grouped by app: how it talks, and where it is reached on the local
// network and (with remote access on) from the internet, each with a Copy button. Reloaded when
// an app changes (`app.state`: installs, removals, port changes) and when remote names change.
import type { ServiceEntry } from '../../../../apps/manager.js';
import type { RemoteStatus } from '../../../../remote/remote-access.js';
import { api, seg } from '../../api/client.js';
import { useEvent } from '../../api/events.js';
import { useResource } from '../../api/use-resource.js';
import { CopyButton } from '../../ui/CopyButton.js';
import { Loaded } from '../../ui/Loading.js';
import { Card, Page } from '../../ui/Page.js';
import { describeListener, serviceUrls } from './urls.js';

export default function Services() {
  const services = useResource((signal) => api.get<{ services: ServiceEntry[] }>('/api/v1/services', { signal }).then((r) => r.services));
  const remote = useResource((signal) => api.get<RemoteStatus>('/api/v1/remote/status', { signal }));
  useEvent('app.state', () => services.reload());
  useEvent<RemoteStatus>('remote.status', ({ data }) => remote.set(() => data));

  return (
    <Page title="Services" intro="Every address your apps listen on. Copy one into another program, or open it in a browser.">
      <Loaded resource={services} what="the services">
        {(list) => {
          if (list.length === 0) {
            return (
              <p>
                No app listens on anything yet. <a href="/apps/catalog">Install an app</a> to see its addresses here.
              </p>
            );
          }
          const apps = [...new Set(list.map((s) => s.app))].sort();
          const remoteOn = remote.data?.enabled === true;
          return (
            <>
              {!remoteOn && remote.data && (
                <p class="muted">
                  Remote access is off, so these apps are reached on your local network only. <a href="/remote">Set up remote access</a>.
                </p>
              )}
              {apps.map((app) => (
                <Card key={app} title={app} id={`app-${app}`} actions={<a href={`/apps/${seg(app)}`}>App page</a>}>
                  <ul class="list services">
                    {list
                      .filter((s) => s.app === app)
                      .map((service) => (
                        <ServiceRow key={service.listener} service={service} remote={remote.data} />
                      ))}
                  </ul>
                </Card>
              ))}
            </>
          );
        }}
      </Loaded>
    </Page>
  );
}

function ServiceRow({ service, remote }: { service: ServiceEntry; remote?: RemoteStatus }) {
  const urls = serviceUrls(service, remote);
  return (
    <li data-listener={service.listener}>
      <h3>
        {service.listener} <span class="muted protocol">{describeListener(service)}</span>
      </h3>
      <dl class="addresses">
        <div>
          <dt>On your network</dt>
          <dd>
            {urls.openable ? (
              <a class="mono" href={urls.local} target="_blank" rel="noopener">
                {urls.local}
              </a>
            ) : (
              <span class="mono">{urls.local}</span>
            )}
            <CopyButton text={urls.local} what={`the local address of ${service.listener}`} />
          </dd>
        </div>
        <div>
          <dt>From the internet</dt>
          <dd>
            {urls.remote ? (
              <>
                {urls.openable ? (
                  <a class="mono" href={urls.remote} target="_blank" rel="noopener">
                    {urls.remote}
                  </a>
                ) : (
                  <span class="mono">{urls.remote}</span>
                )}
                <CopyButton text={urls.remote} what={`the remote address of ${service.listener}`} />
              </>
            ) : (
              <span class="muted">{service.protocol === 'udp' ? 'not through the relay: it carries TCP only' : remote?.enabled ? 'no remote name for this listener' : 'not reachable: remote access is off'}</span>
            )}
          </dd>
        </div>
      </dl>
    </li>
  );
}
