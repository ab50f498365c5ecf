// Start, stop and restart: each starts a job (its progress arrives as job.progress events). Only
// the actions that make sense in the app's state are enabled; a refusal shows beside the buttons.
import { api, seg } from '../../api/client.js';
import { Alert } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import type { ComponentChildren } from 'preact';
import { actionsFor, type AppView, type JobRecord } from './model.js';
import { useAction } from './use-action.js';

type Action = 'start' | 'stop' | 'restart';

export function AppActions({ app, busy, onJob, children }: { app: AppView; busy?: boolean; onJob?: (job: JobRecord) => void; children?: ComponentChildren }) {
  const { busy: sending, error, run } = useAction<Action>();
  const allowed = actionsFor(app, busy || sending !== undefined);
  // Not onJob?.(await …): an optional call skips its arguments, and the request with them.
  const send = (action: Action) =>
    run(action, async () => {
      const { job } = await api.post<{ job: JobRecord }>(`/api/v1/apps/${seg(app.name)}/${action}`);
      onJob?.(job);
    });
  const button = (action: Action, label: string) => (
    <Button variant="secondary" disabled={!allowed[action]} busy={sending === action} onClick={() => send(action)}>
      {label}
    </Button>
  );
  return (
    <>
      <div class="actions">
        {button('start', 'Start')}
        {button('stop', 'Stop')}
        {button('restart', 'Restart')}
        {children}
      </div>
      <Alert error={error} />
    </>
  );
}
