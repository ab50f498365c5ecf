// Install an app: choose the source (a catalog app, a pasted app.yaml, a pasted compose file with
// its .env, or an app folder from Umbrel's or CasaOS's store, chosen with the folder picker), see
// the preview (POST /api/v1/apps/preview), and only then install
// (POST /api/v1/apps). The job's id then goes into the URL (?job=), so its progress bar, image
// download included, survives leaving the page and coming back.
import { useEffect, useId, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso/router';
import { api } from '../../api/client.js';
import { useResource } from '../../api/use-resource.js';
import { Alert, Notice } from '../../ui/Alert.js';
import { Button, LinkButton } from '../../ui/Button.js';
import { Field, Select } from '../../ui/Field.js';
import { Loaded, Loading } from '../../ui/Loading.js';
import { Card, Page } from '../../ui/Page.js';
import { JobProgress } from './JobProgress.js';
import { useApp, useJob, useRemote } from './live.js';
import type { CatalogItem, InstallPreview, JobRecord } from './model.js';
import { OpenLinks } from './OpenLinks.js';
import { PreviewPanel } from './PreviewPanel.js';
import { grantBody, Grants, grantsReady, initialGrants, type GrantState } from './Grants.js';
import { problemText, sourceProblems, type AppSource } from './source.js';
import { useAction } from './use-action.js';
import type { AppAbout } from '../../../../apps/spec/compose.js';
import { AboutApp } from './AboutApp.js';
import type { AppFolder } from './app-folder.js';
import { FolderPicker } from './FolderPicker.js';

type Kind = 'catalog' | 'spec' | 'compose' | 'folder';

/** An imported store app's preview also says what the store says about it. */
type ImportPreview = InstallPreview & { about?: AppAbout };

const KINDS: { value: Kind; label: string; hint: string }[] = [
  { value: 'catalog', label: 'The catalog', hint: 'An app that comes with the device.' },
  { value: 'spec', label: 'An app.yaml', hint: "Piccolo's own app description, pasted." },
  { value: 'compose', label: 'A compose file', hint: 'A docker-compose.yml, pasted: its services become one app, a container each.' },
  { value: 'folder', label: 'An app folder', hint: "An Umbrel or CasaOS app's folder from this computer." },
];

export default function Install() {
  const { query } = useLocation();
  return query.job ? <InstallJob id={query.job} /> : <InstallForm initialCatalog={query.catalog} />;
}

function InstallForm({ initialCatalog }: { initialCatalog?: string }) {
  const { route } = useLocation();
  const catalog = useResource((signal) => api.get<{ apps: CatalogItem[] }>('/api/v1/catalog', { signal }).then((r) => r.apps));
  const [kind, setKind] = useState<Kind>(initialCatalog ? 'catalog' : 'spec');
  const [chosen, setChosen] = useState(initialCatalog ?? '');
  const [spec, setSpec] = useState('');
  const [compose, setCompose] = useState('');
  const [service, setService] = useState('');
  const [env, setEnv] = useState('');
  const [folder, setFolder] = useState<AppFolder>();
  const [preview, setPreview] = useState<ImportPreview>();
  const [grants, setGrants] = useState<GrantState>({ grants: [], confirm: '' });
  const previewing = useAction();
  const installing = useAction();
  const error = previewing.error;
  const groupId = useId();

  useEffect(() => {
    if (kind === 'catalog' && !chosen && catalog.data?.length) setChosen(catalog.data[0]!.name);
  }, [kind, catalog.data]);

  const source = (): AppSource =>
    kind === 'catalog'
      ? { catalog: chosen }
      : kind === 'spec'
        ? { spec }
        : kind === 'folder'
          ? folder!.source
          : { compose, ...(service.trim() ? { service: service.trim() } : {}), ...(env.trim() ? { env } : {}) };
  // Any edit makes the preview stale: Install only follows a preview of exactly this source.
  const edited = (apply: () => void) => {
    apply();
    setPreview(undefined);
    previewing.setError(undefined);
    installing.setError(undefined);
  };

  const doPreview = (event: Event) => {
    event.preventDefault();
    installing.setError(undefined);
    void previewing.run('send', async () => {
      const answer = await api.post<ImportPreview>('/api/v1/apps/preview', source());
      setPreview(answer);
      setGrants(initialGrants(answer));
    });
  };
  const doInstall = () =>
    installing.run('send', async () => {
      const { job } = await api.post<{ job: JobRecord; warnings: string[] }>('/api/v1/apps', { ...source(), ...grantBody(preview!, grants) });
      route(`/apps/install?job=${encodeURIComponent(job.id)}`, true);
    });

  const problems = problemText(sourceProblems(error));
  const fieldError = (name: string) => error?.field(name);
  return (
    <Page title="Install an app" intro="First see what the app will do on your device; nothing is installed until you confirm." actions={<LinkButton href="/apps/catalog">Browse the catalog</LinkButton>}>
      <Card>
        <form class="install" onSubmit={doPreview} noValidate>
          <fieldset class="choices">
            <legend>Install from</legend>
            {KINDS.map((option) => (
              <div class="check" key={option.value}>
                <input
                  type="radio"
                  name={`${groupId}-kind`}
                  id={`${groupId}-${option.value}`}
                  value={option.value}
                  checked={kind === option.value}
                  onChange={() =>
                    edited(() => {
                      setKind(option.value);
                      // The folder picker starts empty when it shows again: so does what it read.
                      setFolder(undefined);
                    })
                  }
                  aria-describedby={`${groupId}-${option.value}-hint`}
                />
                <label for={`${groupId}-${option.value}`}>
                  {option.label} <span class="muted" id={`${groupId}-${option.value}-hint`}>— {option.hint}</span>
                </label>
              </div>
            ))}
          </fieldset>
          {kind === 'catalog' && (
            <Loaded resource={catalog} what="the catalog">
              {(items) => (
                <Select
                  label="Catalog app"
                  value={chosen}
                  onChange={(e) => edited(() => setChosen(e.currentTarget.value))}
                  options={items.map((item) => ({ value: item.name, label: `${item.name} — ${item.description}` }))}
                />
              )}
            </Loaded>
          )}
          {kind === 'catalog' && (fieldError('catalog') || problems) && <p class="field-error">{fieldError('catalog') ?? problems}</p>}
          {kind === 'spec' && (
            <Field
              label="app.yaml"
              multiline
              rows={14}
              value={spec}
              spellcheck={false}
              autocapitalize="off"
              hint="Paste the app's description: name, image, listeners, storage…"
              error={problems}
              onInput={(e) => edited(() => setSpec(e.currentTarget.value))}
            />
          )}
          {kind === 'compose' && (
            <>
              <Field
                label="Compose file"
                multiline
                rows={14}
                value={compose}
                spellcheck={false}
                autocapitalize="off"
                hint="Paste a docker-compose.yml. Settings Piccolo cannot honour are listed as warnings in the preview."
                error={problems}
                onInput={(e) => edited(() => setCompose(e.currentTarget.value))}
              />
              <Field
                label="Service"
                value={service}
                autocomplete="off"
                autocapitalize="off"
                spellcheck={false}
                hint="Leave empty to install the whole file as one app; name a service to install only it and what it depends on."
                error={fieldError('service')}
                onInput={(e) => edited(() => setService(e.currentTarget.value))}
              />
              <Field
                label="Variables (.env)"
                multiline
                rows={4}
                value={env}
                spellcheck={false}
                autocapitalize="off"
                hint="Optional: the .env next to the file, NAME=value a line, for the variables it leaves without a value."
                onInput={(e) => edited(() => setEnv(e.currentTarget.value))}
              />
            </>
          )}
          {kind === 'folder' && <FolderPicker onChange={(read) => edited(() => setFolder(read))} error={problems} />}
          {error && !problems && <Alert error={error} />}
          <div class="actions">
            <Button type="submit" variant={preview ? 'secondary' : 'primary'} busy={previewing.busy !== undefined} disabled={installing.busy !== undefined || (kind === 'folder' && !folder)}>
              Preview
            </Button>
          </div>
        </form>
      </Card>
      {preview && (
        <Card title={`What installing ${preview.name} will do`} id="install-preview">
          {preview.action === 'update' && (
            <Notice tone="warn" title={`${preview.name} is already installed`}>
              <p>
                Installing it again is refused. To change it, open <a href={`/apps/${encodeURIComponent(preview.name)}`}>its page</a> and update it there.
              </p>
            </Notice>
          )}
          <AboutApp about={preview.about} />
          <PreviewPanel preview={preview} />
          <Grants preview={preview} state={grants} onChange={setGrants} confirmError={installing.error?.field('confirm')} />
          {installing.error && !installing.error.field('confirm') && <Alert error={installing.error} />}
          <div class="actions">
            <Button variant="primary" busy={installing.busy !== undefined} disabled={preview.action === 'update' || !grantsReady(preview, grants)} onClick={doInstall}>
              Install {preview.name}
            </Button>
          </div>
        </Card>
      )}
    </Page>
  );
}

/** The install job's progress, read back from the API by the id in the URL, then live. */
function InstallJob({ id }: { id: string }) {
  const job = useJob(id);
  return (
    <Page title="Installing" intro="You can leave this page: the installation goes on, and its progress shows again when you come back.">
      <Loaded resource={job} what="the installation's progress">
        {(current) => (
          <Card title={current.app} id="install-job">
            <JobProgress job={current} />
            {current.status === 'succeeded' && <Installed name={current.app} />}
            <div class="actions">
              <LinkButton variant={current.status === 'succeeded' ? 'secondary' : 'primary'} href={`/apps/${encodeURIComponent(current.app)}`}>
                Go to {current.app}
              </LinkButton>
              <LinkButton href="/apps">All apps</LinkButton>
            </div>
          </Card>
        )}
      </Loaded>
    </Page>
  );
}

/** Once installed: the app's state as it settles (starting → running, or failed), and its Open links. */
function Installed({ name }: { name: string }) {
  const app = useApp(name);
  const remote = useRemote();
  if (!app.data) return app.error ? <Alert error={app.error} /> : <Loading what={`the state of ${name}`} />;
  return (
    <div class="installed">
      <p role="status">{app.data.state === 'failed' ? `${name} failed: ${app.data.reason ?? 'no reason given'}` : `${name} is ${app.data.state}.`}</p>
      <OpenLinks app={app.data} remote={remote} />
    </div>
  );
}
