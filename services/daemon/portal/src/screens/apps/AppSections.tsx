// The App page's changing parts: the permissions the installed spec holds, update (a new app.yaml,
// previewed as a diff before PUT), history with revert, and uninstall (purge needs the name typed).
// Each change is a job: its progress shows on the page through job.progress events.
import { useState } from 'preact/hooks';
import { api, seg } from '../../api/client.js';
import { useResource } from '../../api/use-resource.js';
import { formatTime, relativeTime } from '../../format.js';
import { Alert } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import { ConfirmDialog } from '../../ui/ConfirmDialog.js';
import { Checkbox, Field } from '../../ui/Field.js';
import { Loaded } from '../../ui/Loading.js';
import type { InstallPreview } from './model.js';
import type { AppView, JobRecord } from './model.js';
import { Permissions, PreviewPanel } from './PreviewPanel.js';
import { grantBody, Grants, grantsReady, initialGrants, type GrantState } from './Grants.js';
import { problemText, sourceProblems } from './source.js';
import { useAction } from './use-action.js';
import type { AppRevision } from '../../../../control-document.js';

/** The permissions a person granted (Grants.tsx), in the words of their checkboxes. */
const GRANT_WORDS: Record<string, string> = {
  host_network: "the device's own network",
  privileged: 'full control of the device (privileged)',
  engine_socket: "the container engine's socket",
  devices: "the device's hardware",
  capabilities: 'extra Linux capabilities',
  media: 'shared media folders',
};

export function AppPermissions({ name, revision, granted }: { name: string; revision: number; granted: readonly string[] }) {
  const permissions = useResource((signal) => api.get<{ permissions: InstallPreview['permissions'] }>(`/api/v1/apps/${seg(name)}/permissions`, { signal }).then((r) => r.permissions), [name, revision]);
  return (
    <>
      {granted.length > 0 && (
        <p class="granted">
          <strong>Granted by you:</strong> {granted.map((id) => GRANT_WORDS[id] ?? id).join(', ')}.
        </p>
      )}
      <Loaded resource={permissions} what="the permissions">{(list) => <Permissions permissions={list} />}</Loaded>
    </>
  );
}

export function UpdateApp({ app, busy }: { app: AppView; busy: boolean }) {
  const [text, setText] = useState('');
  const [preview, setPreview] = useState<InstallPreview>();
  const { busy: sending, error, setError, run } = useAction<'preview' | 'update'>();
  const [grants, setGrants] = useState<GrantState>({ grants: [], confirm: '' });
  const problems = problemText(sourceProblems(error));
  const doPreview = (event: Event) => {
    event.preventDefault();
    void run('preview', async () => {
      const answer = await api.post<InstallPreview>('/api/v1/apps/preview', { spec: text });
      if (answer.name !== app.name) throw new Error(`This app.yaml is for ${answer.name}, not ${app.name}: its name must stay ${app.name}.`);
      setPreview(answer);
      setGrants(initialGrants(answer));
    });
  };
  const doUpdate = () =>
    run('update', async () => {
      await api.put<{ job: JobRecord }>(`/api/v1/apps/${seg(app.name)}`, { spec: text, ...grantBody(preview!, grants) });
      setPreview(undefined);
      setText('');
    });
  return (
    <>
      <form onSubmit={doPreview} noValidate>
        <Field
          label="New app.yaml"
          multiline
          rows={10}
          value={text}
          spellcheck={false}
          autocapitalize="off"
          hint={`Paste the whole new description; its name stays ${app.name}. The current one is kept in the history, to revert to.`}
          error={problems}
          onInput={(e) => {
            setText(e.currentTarget.value);
            setPreview(undefined);
            setError(undefined);
          }}
        />
        {error && !problems && !preview && <Alert error={error} />}
        <div class="actions">
          <Button type="submit" variant="secondary" busy={sending === 'preview'} disabled={!text.trim()}>
            Preview the update
          </Button>
        </div>
      </form>
      {preview && (
        <section class="update-preview" aria-labelledby="update-preview-title">
          <h3 id="update-preview-title">What the update changes</h3>
          <PreviewPanel preview={preview} />
          <Grants preview={preview} state={grants} onChange={setGrants} confirmError={error?.field('confirm')} />
          {error && !problems && !error.field('confirm') && <Alert error={error} />}
          <div class="actions">
            <Button variant="primary" busy={sending === 'update'} disabled={busy || preview.changes.length === 0 || !grantsReady(preview, grants)} onClick={doUpdate}>
              Update to revision {app.revision + 1}
            </Button>
          </div>
        </section>
      )}
    </>
  );
}

export function AppHistory({ app, busy }: { app: AppView; busy: boolean }) {
  const history = useResource((signal) => api.get<{ history: AppRevision[] }>(`/api/v1/apps/${seg(app.name)}/history`, { signal }).then((r) => r.history), [app.name, app.revision]);
  const [target, setTarget] = useState<AppRevision>();
  const { busy: sending, error, setError, run } = useAction();
  const revert = () =>
    run('send', async () => {
      await api.post<{ job: JobRecord }>(`/api/v1/apps/${seg(app.name)}/revert`, { revision: target!.revision });
      setTarget(undefined);
    });
  return (
    <Loaded resource={history} what="the history">
      {(revisions) => (
        <>
          <div class="table-wrap">
            <table class="history stack-table">
              <thead>
                <tr>
                  <th scope="col">Revision</th>
                  <th scope="col">Installed</th>
                  <th scope="col">Image</th>
                  <th scope="col">
                    <span class="offscreen">Action</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {revisions.map((entry) => (
                  <tr key={entry.revision} data-revision={entry.revision}>
                    <td data-label="Revision">{entry.revision === app.revision ? `${entry.revision} (current)` : entry.revision}</td>
                    <td data-label="Installed">
                      <time dateTime={entry.at} title={formatTime(entry.at)}>
                        {relativeTime(entry.at)}
                      </time>
                    </td>
                    <td class="mono" data-label="Image">
                      {entry.spec.services.map((service) => service.image).join(', ')}
                    </td>
                    <td>
                      {entry.revision !== app.revision && (
                        <Button variant="secondary" disabled={busy} onClick={() => (setError(undefined), setTarget(entry))}>
                          Revert to revision {entry.revision}
                        </Button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {revisions.length === 1 && <p class="muted">No earlier revision yet: each update keeps the one before it here.</p>}
          {target && (
            <ConfirmDialog
              title={`Revert ${app.name} to revision ${target.revision}?`}
              actionLabel={`Revert to revision ${target.revision}`}
              danger={false}
              busy={sending !== undefined}
              error={error}
              onConfirm={revert}
              onCancel={() => setTarget(undefined)}
            >
              <p>
                The app is recreated from revision {target.revision} (<span class="mono">{target.spec.services.map((service) => service.image).join(', ')}</span>). Its data stays. Revision {app.revision} goes into the history, so
                you can come back to it.
              </p>
            </ConfirmDialog>
          )}
        </>
      )}
    </Loaded>
  );
}

export function UninstallApp({ app, busy }: { app: AppView; busy: boolean }) {
  const [open, setOpen] = useState(false);
  const [purge, setPurge] = useState(false);
  const { busy: sending, error, setError, run } = useAction();
  // The API always wants the name as confirmation; the dialog asks a person to type it only when
  // the data goes too, the one step that cannot be undone.
  const uninstall = () =>
    run('send', async () => {
      await api.del<{ job: JobRecord }>(`/api/v1/apps/${seg(app.name)}`, { confirm: app.name, purge });
      setOpen(false);
    });
  const volumes = Object.keys(app.spec.storage.persistent);
  return (
    <>
      <p>
        Removes the app and its container.{' '}
        {volumes.length ? `Its data (${volumes.join(', ')}) is kept unless you choose to delete it.` : 'It keeps no data on the device.'}
      </p>
      <Button variant="danger" disabled={busy} onClick={() => (setError(undefined), setPurge(false), setOpen(true))}>
        Uninstall…
      </Button>
      {open && (
        <ConfirmDialog
          title={`Uninstall ${app.name}?`}
          actionLabel={purge ? 'Uninstall and delete data' : `Uninstall ${app.name}`}
          typeToConfirm={purge ? app.name : undefined}
          busy={sending !== undefined}
          error={error}
          onConfirm={uninstall}
          onCancel={() => setOpen(false)}
        >
          <p>The app stops and is removed. You can install it again later.</p>
          <Checkbox label="Also delete its data permanently" checked={purge} onChange={(e) => setPurge(e.currentTarget.checked)} />
          {purge && <p class="field-error">Its data is deleted for good: it cannot be brought back.</p>}
        </ConfirmDialog>
      )}
    </>
  );
}
