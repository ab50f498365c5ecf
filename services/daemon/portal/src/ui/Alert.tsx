// Messages a person can act on. An error names what went wrong; a 429 counts down until the next
// attempt is allowed. role=alert is announced at once, role=status politely.
import type { ComponentChildren } from 'preact';
import type { ApiError } from '../api/client.js';
import { Countdown } from './Countdown.js';

export function Alert({ error, children, onRetryAllowed }: { error?: ApiError | string; children?: ComponentChildren; onRetryAllowed?: () => void }) {
  if (!error && !children) return null;
  const apiError = typeof error === 'object' ? error : undefined;
  return (
    <div class="alert error" role="alert">
      {apiError?.retryAfterSeconds ? (
        <p>
          Too many failed attempts. <Countdown seconds={apiError.retryAfterSeconds} onDone={onRetryAllowed} />
        </p>
      ) : (
        error && <p class="pre">{typeof error === 'string' ? error : error.message}</p>
      )}
      {children}
    </div>
  );
}

export function Notice({ tone = 'info', children, title }: { tone?: 'info' | 'ok' | 'warn'; children: ComponentChildren; title?: string }) {
  return (
    <div class={`alert ${tone}`} role="status">
      {title && <p class="alert-title">{title}</p>}
      {children}
    </div>
  );
}
