// Confirmation for destructive actions, in a native modal <dialog> (focus kept inside, Escape
// cancels). With `typeToConfirm`, the action stays disabled until the person types that word.
import type { ComponentChildren } from 'preact';
import { useEffect, useId, useRef, useState } from 'preact/hooks';
import type { ApiError } from '../api/client.js';
import { Alert } from './Alert.js';
import { Button } from './Button.js';

export interface ConfirmDialogProps {
  title: string;
  children?: ComponentChildren;
  actionLabel: string;
  typeToConfirm?: string;
  danger?: boolean;
  busy?: boolean;
  error?: ApiError;
  onConfirm: () => void;
  onCancel: () => void;
}

export function ConfirmDialog({ title, children, actionLabel, typeToConfirm, danger = true, busy, error, onConfirm, onCancel }: ConfirmDialogProps) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [typed, setTyped] = useState('');
  const id = useId();
  useEffect(() => {
    dialog.current?.showModal();
    return () => dialog.current?.close();
  }, []);
  const confirmed = !typeToConfirm || typed === typeToConfirm;
  return (
    <dialog ref={dialog} class="dialog" aria-labelledby={`${id}-title`} onCancel={(e) => (e.preventDefault(), onCancel())}>
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          if (confirmed) onConfirm();
        }}
      >
        <h2 id={`${id}-title`}>{title}</h2>
        {children}
        {typeToConfirm && (
          <div class="field">
            <label for={`${id}-confirm`}>
              Type <strong class="mono">{typeToConfirm}</strong> to confirm
            </label>
            <input id={`${id}-confirm`} value={typed} onInput={(e) => setTyped(e.currentTarget.value)} autocomplete="off" autocapitalize="off" spellcheck={false} />
          </div>
        )}
        <Alert error={error} />
        <div class="actions">
          <Button type="submit" variant={danger ? 'danger' : 'primary'} disabled={!confirmed} busy={busy}>
            {actionLabel}
          </Button>
          <Button variant="secondary" onClick={onCancel}>
            Cancel
          </Button>
        </div>
      </form>
    </dialog>
  );
}
