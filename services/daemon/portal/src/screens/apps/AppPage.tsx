// One app: its state and health, Open links, start/stop/restart (each a job with its progress),
// CPU and memory over the last hour, the live log, the terminal, its storage (volumes with their
// limits and use, shared media folders), the permissions it holds, update
// (paste a new app.yaml, see the diff, then apply), history with revert, and uninstall.
import { useState } from 'preact/hooks';
import { useRoute } from 'preact-iso/router';
import { Badge } from '../../ui/Badge.js';
import { LinkButton } from '../../ui/Button.js';
import { Select } from '../../ui/Field.js';
import { Loading } from '../../ui/Loading.js';
import { Alert } from '../../ui/Alert.js';
import { Card, Facts, Page } from '../../ui/Page.js';
import { relativeTime, formatTime } from '../../format.js';
import { AppActions } from './AppActions.js';
import { AppHistory, AppPermissions, UninstallApp, UpdateApp } from './AppSections.js';
import { AppStorage } from './AppStorage.js';
import { JobProgress } from './JobProgress.js';
import { LogTail } from './LogTail.js';
import { useApp, useJobs, useRemote } from './live.js';
import { stateWords, type AppView } from './model.js';
import { OpenLinks } from './OpenLinks.js';
import { StateBadges } from './StateBadges.js';
import { StatsCharts } from './StatsCharts.js';
import { TerminalSlot } from './terminal/TerminalSlot.js';

export default function AppPage() {
  const { params } = useRoute();
  const name = params.name!;
  const app = useApp(name);
  const jobs = useJobs(name);
  const remote = useRemote();
  const [openedAt] = useState(() => new Date().toISOString());
  const [logService, setLogService] = useState<string>();
  // The jobs running now (found again after leaving and coming back) and those of this visit: the newest three.
  const shown = (jobs.data ?? []).filter((job) => job.status === 'running' || job.updatedAt >= openedAt).slice(-3);
  const busy = shown.some((job) => job.status === 'running');
  const jobList = shown.length > 0 && (
    <ul class="list jobs" aria-label="Jobs">
      {shown.map((job) => (
        <li key={job.id}>
          <JobProgress job={job} />
        </li>
      ))}
    </ul>
  );

  if (app.removed) {
    return (
      <Page title={name}>
        {jobList}
        <p role="status">{app.error ? `There is no app named ${name}.` : `${name} was uninstalled.`}</p>
        <LinkButton variant="primary" href="/apps">
          All apps
        </LinkButton>
      </Page>
    );
  }
  if (!app.data) {
    return <Page title={name}>{app.error ? <Alert error={`Could not load ${name}: ${app.error.message}`} /> : <Loading what={name} />}</Page>;
  }
  const view = app.data;
  const words = stateWords(view);
  return (
    <Page title={name} actions={<LinkButton href="/apps">All apps</LinkButton>}>
      {app.error && <Alert error={`Could not refresh ${name}: ${app.error.message}`} />}
      <Card title="Status" id="status">
        <div class="app-head">
          <StateBadges app={view} />
        </div>
        {words && <p class={view.state === 'failed' ? 'app-reason failed' : 'app-reason'}>{words}</p>}
        {view.health === 'degraded' && view.healthReason && <p class="app-reason">Health: {view.healthReason}</p>}
        <Facts
          items={[
            ['Image', <span class="mono">{view.spec.services.map((service) => service.image).join(', ')}</span>],
            ['Revision', String(view.revision)],
            ['Installed', <time dateTime={view.installedAt} title={formatTime(view.installedAt)}>{relativeTime(view.installedAt)}</time>],
            ...(view.container?.startedAt && view.state === 'running'
              ? ([['Running since', <time dateTime={view.container.startedAt} title={formatTime(view.container.startedAt)}>{relativeTime(view.container.startedAt)}</time>]] as [string, preact.ComponentChildren][])
              : []),
          ]}
        />
        {view.containers.length > 1 && <Containers containers={view.containers} />}
        <OpenLinks app={view} remote={remote} />
        <AppActions app={view} busy={busy} />
        {jobList}
      </Card>
      <Card title="CPU and memory" id="usage">
        <StatsCharts app={name} />
      </Card>
      <Card title="Logs" id="logs">
        {view.containers.length > 1 && (
          <Select
            label="Container"
            value={logService ?? view.containers[0]!.service}
            onChange={(e) => setLogService(e.currentTarget.value)}
            options={view.containers.map((c) => ({ value: c.service, label: c.service }))}
          />
        )}
        <LogTail app={name} running={view.state === 'running'} service={view.containers.length > 1 ? (logService ?? view.containers[0]!.service) : undefined} />
      </Card>
      <Card title="Terminal" id="terminal">
        <TerminalSlot app={name} running={view.state === 'running'} />
      </Card>
      <Card title="Storage" id="storage">
        <AppStorage name={name} revision={view.revision} multi={view.containers.length > 1} />
      </Card>
      <Card title="Permissions" id="permissions">
        <AppPermissions name={name} revision={view.revision} granted={view.granted ?? []} />
      </Card>
      <Card title="Update" id="update">
        <UpdateApp app={view} busy={busy} />
      </Card>
      <Card title="History" id="history">
        <AppHistory app={view} busy={busy} />
      </Card>
      <Card title="Uninstall" id="uninstall">
        <UninstallApp app={view} busy={busy} />
      </Card>
    </Page>
  );
}

/** A multi-container app's containers, in start order, each with the engine's word for its state. */
function Containers({ containers }: { containers: AppView['containers'] }) {
  return (
    <ul class="list containers" aria-label="Containers">
      {containers.map((c) => (
        <li key={c.service} data-container={c.service}>
          <strong>{c.service}</strong> <Badge state={c.state === 'exited' ? 'stopped' : c.state} label={c.state === 'exited' && c.exitCode !== undefined ? `exited (code ${c.exitCode})` : c.state} />
          {c.health && <Badge state={c.health === 'healthy' ? 'healthy' : c.health === 'unhealthy' ? 'unhealthy' : 'unknown'} label={c.health} />}
          <span class="muted mono app-image"> {c.image}</span>
        </li>
      ))}
    </ul>
  );
}
