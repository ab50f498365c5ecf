// The installed apps with their state, health, Open links and actions, and the jobs working on
// them with their progress. Live: app.state, app.health and job.progress events (live.ts).
import { useState } from 'preact/hooks';
import { LinkButton } from '../../ui/Button.js';
import { Loaded } from '../../ui/Loading.js';
import { Card, Page } from '../../ui/Page.js';
import { AppActions } from './AppActions.js';
import { JobProgress } from './JobProgress.js';
import { useApps, useJobs, useRemote } from './live.js';
import { stateWords, type AppView, type JobRecord } from './model.js';
import { OpenLinks } from './OpenLinks.js';
import { StateBadges } from './StateBadges.js';
import type { RemoteStatus } from '../../../../remote/remote-access.js';

export default function AppsList() {
  const apps = useApps();
  const jobs = useJobs();
  const remote = useRemote();
  // Jobs that were running when the page opened, or started since: finished ones stay until the
  // person leaves, so "Installed" or "failed" is seen rather than a bar that just vanishes.
  const [openedAt] = useState(() => new Date().toISOString());
  const shown = (jobs.data ?? []).filter((job) => job.status === 'running' || job.updatedAt >= openedAt);
  const busy = new Set(shown.filter((job) => job.status === 'running').map((job) => job.app));
  return (
    <Page
      title="Apps"
      actions={
        <>
          <LinkButton href="/apps/catalog">Browse the catalog</LinkButton>
          <LinkButton variant="primary" href="/apps/install">
            Install an app
          </LinkButton>
        </>
      }
    >
      {shown.length > 0 && (
        <Card title="Jobs" id="jobs">
          <ul class="list jobs">
            {shown.map((job: JobRecord) => (
              <li key={job.id}>
                <JobProgress job={job} />
              </li>
            ))}
          </ul>
        </Card>
      )}
      <Loaded resource={apps} what="the apps">
        {(list) =>
          list.length === 0 ? (
            <Card title="No apps installed yet">
              <p>Pick one from the catalog, or install your own from an app.yaml or a compose file.</p>
              <div class="actions">
                <LinkButton variant="primary" href="/apps/catalog">
                  Browse the catalog
                </LinkButton>
                <LinkButton href="/apps/install">Install from a file</LinkButton>
              </div>
            </Card>
          ) : (
            <ul class="list apps" aria-label="Installed apps">
              {list.map((app) => (
                <AppRow key={app.name} app={app} remote={remote} busy={busy.has(app.name)} />
              ))}
            </ul>
          )
        }
      </Loaded>
    </Page>
  );
}

function AppRow({ app, remote, busy }: { app: AppView; remote: RemoteStatus | undefined; busy: boolean }) {
  const words = stateWords(app);
  return (
    <li class="app" data-app={app.name} data-state={app.state}>
      <div class="app-head">
        <h2>
          <a href={`/apps/${encodeURIComponent(app.name)}`}>{app.name}</a>
        </h2>
        <StateBadges app={app} />
      </div>
      <p class="muted mono app-image">{app.spec.services.map((service) => service.image).join(', ')}</p>
      {words && <p class={app.state === 'failed' ? 'app-reason failed' : 'app-reason'}>{words}</p>}
      {app.health === 'degraded' && app.healthReason && <p class="app-reason">Health: {app.healthReason}</p>}
      <OpenLinks app={app} remote={remote} />
      <AppActions app={app} busy={busy}>
        <LinkButton variant="quiet" href={`/apps/${encodeURIComponent(app.name)}`}>
          Details
        </LinkButton>
      </AppActions>
    </li>
  );
}
