// A destructive change to the second factor, confirmed with the admin password: the daemon asks
// for it again, so that a session left open is not enough to weaken the sign-in.
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { ApiError } from '../../api/client.js';
import { ConfirmDialog } from '../../ui/ConfirmDialog.js';
import { Field } from '../../ui/Field.js';
import { sentence } from './messages.js';

export function PasswordDialog(props: { title: string; actionLabel: string; children: ComponentChildren; busy: boolean; error?: ApiError; onConfirm: (password: string) => void; onCancel: () => void }) {
  const [password, setPassword] = useState('');
  const fieldError = sentence(props.error?.field('password'));
  return (
    <ConfirmDialog title={props.title} actionLabel={props.actionLabel} busy={props.busy} error={fieldError ? undefined : props.error} onConfirm={() => props.onConfirm(password)} onCancel={props.onCancel}>
      {props.children}
      <Field label="Admin password" type="password" autocomplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} error={fieldError} required />
    </ConfirmDialog>
  );
}
