// One attempt at a secret (claim code, password, recovery key), as every such form needs it: busy
// while it runs, the error afterwards, and after a 429 the wait: `waiting` stays true (the submit
// disabled) until the Alert's countdown ends. `attempt` numbers the tries, so that each error's
// Alert (and its countdown) starts afresh even when two waits have the same length.
import { useEffect, useState } from 'preact/hooks';
import type { ApiError } from '../../api/client.js';
import { asApiError } from '../../api/use-resource.js';

export interface Attempt {
  busy: boolean;
  error: ApiError | undefined;
  waiting: boolean;
  attempt: number;
  /** The work's value, or the error it failed with (also kept in `error`). */
  run: <T>(work: () => Promise<T>) => Promise<{ value?: T; error?: ApiError }>;
  /** For the Alert's onRetryAllowed: the wait is over. */
  retryAllowed: () => void;
  clearError: () => void;
  setError: (error: ApiError | undefined) => void;
}

export function useAttempt(): Attempt {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError>();
  const [waiting, setWaiting] = useState(false);
  const [attempt, setAttempt] = useState(0);
  return {
    busy,
    error,
    waiting,
    attempt,
    async run(work) {
      setBusy(true);
      setError(undefined);
      try {
        return { value: await work() };
      } catch (err) {
        const failure = asApiError(err);
        setAttempt((n) => n + 1);
        setError(failure);
        setWaiting(failure.status === 429 && failure.retryAfterSeconds !== undefined);
        return { error: failure };
      } finally {
        setBusy(false);
      }
    },
    retryAllowed: () => setWaiting(false),
    clearError: () => setError((current) => (current?.status === 429 ? current : undefined)),
    setError,
  };
}

/** After a failed attempt, the field the error concerns gets the focus, so the person can retype. */
export function useFocusOnError(error: ApiError | undefined, attempt: number, form: { current: HTMLFormElement | null }): void {
  useEffect(() => {
    if (!error || error.status === 429) return;
    const invalid = form.current?.querySelector<HTMLInputElement>('[aria-invalid="true"]');
    invalid?.focus();
    invalid?.select?.();
  }, [error, attempt]);
}
