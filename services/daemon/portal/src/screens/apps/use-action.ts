// The one shape of every button that calls the daemon here: which action is being sent (so its
// button shows busy and the others wait), and the error of the last attempt (shown beside it).
import { useState } from 'preact/hooks';
import type { ApiError } from '../../api/client.js';
import { asApiError } from '../../api/use-resource.js';

export function useAction<Kind extends string = 'send'>() {
  const [busy, setBusy] = useState<Kind>();
  const [error, setError] = useState<ApiError>();
  /** Runs `work` as `kind`; resolves true when it succeeded. */
  const run = async (kind: Kind, work: () => Promise<unknown>): Promise<boolean> => {
    setBusy(kind);
    setError(undefined);
    try {
      await work();
      return true;
    } catch (err) {
      setError(asApiError(err));
      return false;
    } finally {
      setBusy(undefined);
    }
  };
  return { busy, error, setError, run };
}
