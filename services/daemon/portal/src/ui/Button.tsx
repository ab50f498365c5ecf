// Buttons and links styled alike. A busy button keeps its label (so its accessible name never
// changes under a screen reader) and says it is busy with aria-busy and a spinner.
import type { AnchorHTMLAttributes, ButtonHTMLAttributes } from 'preact';

type Variant = 'primary' | 'secondary' | 'danger' | 'quiet';

export function Button({ variant = 'primary', busy, children, disabled, type = 'button', class: extra, ...rest }: ButtonHTMLAttributes<HTMLButtonElement> & { variant?: Variant; busy?: boolean }) {
  return (
    <button {...rest} type={type} class={['btn', variant, extra].filter(Boolean).join(' ')} disabled={disabled || busy} aria-busy={busy || undefined}>
      {busy && <span class="spinner" aria-hidden="true" />}
      {children}
    </button>
  );
}

/** An <a> that looks like a button: for navigation (Open, Download), never for actions. */
export function LinkButton({ variant = 'secondary', children, class: extra, ...rest }: AnchorHTMLAttributes<HTMLAnchorElement> & { variant?: Variant }) {
  return (
    <a {...rest} class={['btn', variant, extra].filter(Boolean).join(' ')}>
      {children}
    </a>
  );
}
