// The admin password asked again before a sensitive action (a new recovery key, a backup): a wrong
// one is said beside the field, any other refusal below it.
import type { ApiError } from '../../api/client.js';
import { Alert } from '../../ui/Alert.js';
import { Field } from '../../ui/Field.js';

export function ConfirmPassword({ password, onPassword, error }: { password: string; onPassword: (value: string) => void; error?: ApiError }) {
  return (
    <>
      <Field
        label="Password"
        type="password"
        name="password"
        autocomplete="current-password"
        value={password}
        onInput={(e) => onPassword(e.currentTarget.value)}
        error={error?.status === 401 ? 'This is not the password.' : error?.field('password')}
      />
      {error && error.status !== 401 && !error.field('password') && <Alert error={error} />}
    </>
  );
}
