// The apps, their jobs and remote access as live data: loaded once from the API, then kept current
// by the events stream (app.state, app.health, job.progress, remote.status). A job is always read
// back from the API too, so a page that is left and opened again finds the work still going.
import { api, seg } from '../../api/client.js';
import { useEvent } from '../../api/events.js';
import { useResource, type Resource } from '../../api/use-resource.js';
import type { RemoteStatus } from '../../../../remote/remote-access.js';
import type { AppView, JobRecord } from './model.js';

type AppEventData =
  | { type: 'app-state'; app: string; state: AppView['state']; reason?: string }
  | { type: 'app-removed'; app: string }
  | { type: 'health'; app: string; health: AppView['health']; reason?: string };

/** Applies an app.state or app.health event to one app's view. */
function applied(app: AppView, event: AppEventData): AppView {
  if (event.type === 'app-state') {
    const { reason: _old, ...rest } = app;
    return { ...rest, state: event.state, ...(event.reason ? { reason: event.reason } : {}) };
  }
  if (event.type === 'health') {
    const { healthReason: _old, ...rest } = app;
    return { ...rest, health: event.health, ...(event.reason ? { healthReason: event.reason } : {}) };
  }
  return app;
}

/** Every installed app, live. A new app or a finished job reloads the list (its spec, revision and ports may have changed). */
export function useApps(): Resource<AppView[]> {
  const apps = useResource((signal) => api.get<{ apps: AppView[] }>('/api/v1/apps', { signal }).then((r) => r.apps));
  const onEvent = ({ data }: { data: AppEventData }) => {
    if (data.type === 'app-removed') return apps.set((list) => list?.filter((app) => app.name !== data.app));
    if (apps.data && !apps.data.some((app) => app.name === data.app)) return apps.reload();
    apps.set((list) => list?.map((app) => (app.name === data.app ? applied(app, data) : app)));
  };
  useEvent<AppEventData>('app.state', onEvent);
  useEvent<AppEventData>('app.health', onEvent);
  useEvent<{ job: JobRecord }>('job.progress', ({ data }) => data.job.status !== 'running' && apps.reload());
  return apps;
}

/** One app, live; `removed` once it was uninstalled while the page showed it. */
export function useApp(name: string): Resource<AppView> & { removed: boolean } {
  const app = useResource((signal) => api.get<AppView>(`/api/v1/apps/${seg(name)}`, { signal }), [name]);
  const onEvent = ({ data }: { data: AppEventData }) => {
    if (data.app !== name) return;
    if (data.type === 'app-removed') return app.set(() => undefined);
    app.set((current) => current && applied(current, data));
  };
  useEvent<AppEventData>('app.state', onEvent);
  useEvent<AppEventData>('app.health', onEvent);
  useEvent<{ job: JobRecord }>('job.progress', ({ data }) => data.job.app === name && data.job.status !== 'running' && data.job.kind !== 'uninstall' && app.reload());
  const removed = !app.loading && app.data === undefined && (app.error === undefined || app.error.status === 404);
  return { ...app, removed };
}

/** The jobs the daemon keeps (running ones and the newest finished), live; `app` narrows to one app. */
export function useJobs(app?: string): Resource<JobRecord[]> {
  const jobs = useResource((signal) => api.get<{ jobs: JobRecord[] }>('/api/v1/jobs', { signal }).then((r) => r.jobs.filter((job) => app === undefined || job.app === app)), [app]);
  useEvent<{ job: JobRecord }>('job.progress', ({ data }) => {
    if (app !== undefined && data.job.app !== app) return;
    jobs.set((list) => {
      const others = (list ?? []).filter((job) => job.id !== data.job.id);
      return [...others, data.job];
    });
  });
  return jobs;
}

/** One job by id, live (the Install screen keeps the id in its URL). */
export function useJob(id: string | undefined): Resource<JobRecord> {
  const job = useResource((signal) => (id ? api.get<JobRecord>(`/api/v1/jobs/${seg(id)}`, { signal }) : Promise.resolve(undefined as unknown as JobRecord)), [id]);
  useEvent<{ job: JobRecord }>('job.progress', ({ data }) => data.job.id === id && job.set(() => data.job));
  return job;
}

/**
 * Remote access, for the remote Open links. Optional: a device without it (or a status that
 * fails to load) simply shows local links, so errors are not shown here.
 */
export function useRemote(): RemoteStatus | undefined {
  const remote = useResource((signal) => api.get<RemoteStatus>('/api/v1/remote/status', { signal }).catch(() => undefined as unknown as RemoteStatus));
  useEvent<RemoteStatus>('remote.status', ({ data }) => remote.set(() => data));
  return remote.data ?? undefined;
}
