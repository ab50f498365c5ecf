// A labelled input with its hint and its error, tied together for assistive technology
// (aria-describedby, aria-invalid). The error shows beside the field it concerns.
import type { ComponentChildren, TargetedEvent } from 'preact';
import { useId } from 'preact/hooks';

/** The attributes screens set on inputs (preact's own unions do not survive Omit/spread). */
export interface InputAttributes {
  name?: string;
  type?: string;
  value?: string;
  checked?: boolean;
  placeholder?: string;
  autocomplete?: string;
  autocapitalize?: string;
  spellcheck?: boolean;
  inputMode?: string;
  required?: boolean;
  disabled?: boolean;
  readOnly?: boolean;
  autoFocus?: boolean;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  'data-testid'?: string;
  onInput?: (event: TargetedEvent<HTMLInputElement & HTMLTextAreaElement & HTMLSelectElement>) => void;
  onChange?: (event: TargetedEvent<HTMLInputElement & HTMLSelectElement>) => void;
}

export function Field({ label, hint, error, multiline, rows, ...input }: InputAttributes & { label: string; hint?: ComponentChildren; error?: string; multiline?: boolean; rows?: number }) {
  const id = useId();
  const described = [hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(' ') || undefined;
  const attributes = { ...input, id, 'aria-describedby': described, 'aria-invalid': error ? true : undefined } as {};
  return (
    <div class={error ? 'field invalid' : 'field'}>
      <label for={id}>{label}</label>
      {multiline ? <textarea {...attributes} rows={rows ?? 8} /> : <input {...attributes} />}
      {hint && (
        <p class="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {error && (
        <p class="field-error" id={`${id}-error`}>
          {sentence(error)}
        </p>
      )}
    </div>
  );
}

/** The daemon's messages start in lower case ("wrong or already used code"); a field shows a sentence. */
export function sentence(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function Checkbox({ label, ...input }: Omit<InputAttributes, 'type'> & { label: string }) {
  const id = useId();
  return (
    <div class="check">
      <input type="checkbox" id={id} {...(input as {})} />
      <label for={id}>{label}</label>
    </div>
  );
}

export function Select({ label, options, hint, ...select }: InputAttributes & { label: string; hint?: string; options: { value: string; label: string }[] }) {
  const id = useId();
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <select id={id} aria-describedby={hint ? `${id}-hint` : undefined} {...(select as {})}>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
      {hint && (
        <p class="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
    </div>
  );
}
