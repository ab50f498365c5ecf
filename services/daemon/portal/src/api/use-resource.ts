// Loads what a screen shows, with the three states a person must always see: loading (with words),
// loaded, or failed (with the reason and a way to retry). Reloads when the events stream reconnects.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError } from './client.js';
import { connected } from './events.js';

export interface Resource<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  reload: () => void;
  /** Replaces the data locally, e.g. from an event. */
  set: (update: (current: T | undefined) => T | undefined) => void;
}

export function useResource<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[] = []): Resource<T> {
  const [state, setState] = useState<{ data?: T; error?: ApiError; loading: boolean }>({ loading: true });
  const [generation, setGeneration] = useState(0);
  const online = connected.value;
  useEffect(() => {
    const abort = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    load(abort.signal).then(
      (data) => !abort.signal.aborted && setState({ data, loading: false }),
      (err) => !abort.signal.aborted && setState((s) => ({ data: s.data, error: asApiError(err), loading: false })),
    );
    return () => abort.abort();
  }, [...deps, generation, online]);
  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  const set = useCallback((update: (current: T | undefined) => T | undefined) => setState((s) => ({ ...s, data: update(s.data) })), []);
  return { ...state, reload, set } as Resource<T>;
}

export function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError(0, 'client', err instanceof Error ? err.message : String(err));
}
