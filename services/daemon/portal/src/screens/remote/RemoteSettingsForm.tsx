// The relay settings: Check runs the preflight on what is typed (the saved settings fill in the
// blanks), Save configures and turns remote access on. A 400 shows beside the field it names and
// moves the focus there; anything else shows below the form. The saved values fill the form once
// (never over typing); the secret is never shown, only whether one is saved.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { PreflightResult } from '../../../../remote/preflight.js';
import type { RemoteStatus } from '../../../../remote/remote-access.js';
import { api, type ApiError } from '../../api/client.js';
import { asApiError } from '../../api/use-resource.js';
import { Alert, Notice } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import { Field } from '../../ui/Field.js';

const FIELDS = ['relayUrl', 'deviceSecret', 'portalHostname', 'appDomain'] as const;
type Name = (typeof FIELDS)[number];
type Values = Record<Name, string>;

export function RemoteSettingsForm({ status, onSaved }: { status: RemoteStatus; onSaved: (status: RemoteStatus) => void }) {
  const [values, setValues] = useState<Values>(() => savedValues(status));
  const [busy, setBusy] = useState<'save' | 'check'>();
  const [error, setError] = useState<ApiError>();
  const [result, setResult] = useState<{ saved?: boolean; checks?: PreflightResult }>({});
  const form = useRef<HTMLFormElement>(null);

  // A failed request naming fields: the first of them gets the focus.
  useEffect(() => {
    const first = FIELDS.find((name) => error?.field(name));
    if (first) form.current?.querySelector<HTMLInputElement>(`[name="${first}"]`)?.focus();
  }, [error]);

  async function run(kind: 'save' | 'check') {
    setBusy(kind);
    setError(undefined);
    setResult({});
    try {
      if (kind === 'save') {
        const next = await api.post<RemoteStatus>('/api/v1/remote/configure', trimmed(values));
        setValues({ ...savedValues(next), deviceSecret: '' });
        setResult({ saved: true });
        onSaved(next);
      } else {
        // Only what is filled in, never the secret: the checks do not sign in to the relay.
        const body = Object.fromEntries(Object.entries(trimmed(values)).filter(([name, value]) => value && name !== 'deviceSecret'));
        setResult({ checks: await api.post<PreflightResult>('/api/v1/remote/preflight', body) });
      }
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(undefined);
    }
  }

  const fieldError = (name: Name) => error?.field(name);
  const named = error && FIELDS.some((name) => error.field(name));
  const set = (name: Name) => (e: { currentTarget: { value: string } }) => setValues((v) => ({ ...v, [name]: e.currentTarget.value }));
  const failed = result.checks?.checks.filter((c) => !c.ok).length ?? 0;
  return (
    <form
      ref={form}
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        void run('save');
      }}
    >
      <Field label="Relay URL" name="relayUrl" type="url" inputMode="url" autocomplete="off" spellcheck={false} placeholder="wss://relay.example.net/connect" value={values.relayUrl} onInput={set('relayUrl')} error={fieldError('relayUrl')} />
      <Field
        label="Device secret"
        name="deviceSecret"
        type="password"
        autocomplete="new-password"
        placeholder={status.deviceSecretSet ? 'Saved; type it again to save changes' : undefined}
        value={values.deviceSecret}
        onInput={set('deviceSecret')}
        error={fieldError('deviceSecret')}
        hint="The key the relay knows this device by, needed each time you save. It is stored encrypted and never shown again."
      />
      <Field label="Portal hostname" name="portalHostname" autocomplete="off" autocapitalize="none" spellcheck={false} placeholder="home.example.net" value={values.portalHostname} onInput={set('portalHostname')} error={fieldError('portalHostname')} />
      <Field
        label="App domain"
        name="appDomain"
        autocomplete="off"
        autocapitalize="none"
        spellcheck={false}
        placeholder="apps.example.net"
        value={values.appDomain}
        onInput={set('appDomain')}
        error={fieldError('appDomain')}
        hint="Each app listener gets <listener>-<app> under this domain."
      />
      <div class="actions">
        <Button type="submit" busy={busy === 'save'} disabled={busy === 'check'}>
          Save
        </Button>
        <Button variant="secondary" busy={busy === 'check'} disabled={busy === 'save'} onClick={() => void run('check')}>
          Check
        </Button>
      </div>
      {busy === 'check' && <p class="muted" role="status">Checking the relay and the names; this takes a few seconds…</p>}
      {error && !named && <Alert error={error} />}
      {error && named && <p class="field-error" role="alert">Fix the fields marked above.</p>}
      {result.saved && <Notice tone="ok">Saved. The device connects to the relay now.</Notice>}
      {result.checks && (
        <div class="checks-result" data-testid="checks">
          <p role="status" class={failed ? 'field-error' : undefined}>
            {failed ? `${failed} of ${result.checks.checks.length} checks failed.` : 'All checks passed.'}
          </p>
          <ul class="checks" aria-label="Check results">
            {result.checks.checks.map((check) => (
              <li key={check.id} data-check={check.id} class={check.ok ? 'ok' : 'failed'}>
                <strong>{check.ok ? 'Passed:' : 'Failed:'}</strong> {check.message}
              </li>
            ))}
          </ul>
        </div>
      )}
    </form>
  );
}

function savedValues(status: RemoteStatus): Values {
  return { relayUrl: status.relayUrl ?? '', deviceSecret: '', portalHostname: status.portalHostname ?? '', appDomain: status.appDomain ?? '' };
}

function trimmed(values: Values): Values {
  return Object.fromEntries(FIELDS.map((name) => [name, values[name].trim()])) as Values;
}
