// The permissions an install or update must be granted (the preview's permissionsNeeded: host
// network, privileged, devices…), each a checkbox with what it gives away, and the app's name
// typed to confirm. The daemon refuses the install without every one of them (403).
import { useId } from 'preact/hooks';
import { Field } from '../../ui/Field.js';
import type { InstallPreview } from './model.js';

export interface GrantState {
  grants: string[];
  confirm: string;
}

/** What was granted before starts checked: an update only asks again for what is new. */
export function initialGrants(preview: InstallPreview): GrantState {
  return { grants: preview.permissionsNeeded.filter((p) => p.granted).map((p) => p.id), confirm: '' };
}

/** Every needed permission checked, and the name typed when any of them is granted now. */
export function grantsReady(preview: InstallPreview, state: GrantState): boolean {
  const all = preview.permissionsNeeded.every((p) => state.grants.includes(p.id));
  const fresh = preview.permissionsNeeded.some((p) => !p.granted);
  return all && (!fresh || state.confirm === preview.name);
}

/** The request's grant fields, only when something is to be granted. */
export function grantBody(preview: InstallPreview, state: GrantState): { grants?: string[]; confirm?: string } {
  return preview.permissionsNeeded.length ? { grants: state.grants, confirm: state.confirm } : {};
}

export function Grants({ preview, state, onChange, confirmError }: { preview: InstallPreview; state: GrantState; onChange: (state: GrantState) => void; confirmError?: string }) {
  const id = useId();
  if (!preview.permissionsNeeded.length) return null;
  const fresh = preview.permissionsNeeded.some((p) => !p.granted);
  return (
    <fieldset class="grants">
      <legend>Permissions to grant</legend>
      <p class="hint">This app asks for more than an app gets by default. Installing needs each of them; grant them only if you trust it.</p>
      {preview.permissionsNeeded.map((permission) => (
        <div class="check grant" key={permission.id} data-grant={permission.id}>
          <input
            type="checkbox"
            id={`${id}-${permission.id}`}
            checked={state.grants.includes(permission.id)}
            aria-describedby={`${id}-${permission.id}-detail`}
            onChange={(e) =>
              onChange({ ...state, grants: e.currentTarget.checked ? [...state.grants, permission.id] : state.grants.filter((g) => g !== permission.id) })
            }
          />
          <div>
            <label for={`${id}-${permission.id}`}>
              {permission.title}
              {permission.granted ? ' (granted before)' : ''}
            </label>
            <p class="hint" id={`${id}-${permission.id}-detail`}>
              {permission.detail}
              {permission.items.length ? ` (${permission.items.join(', ')})` : ''} <strong>Risk:</strong> {permission.risk}
            </p>
          </div>
        </div>
      ))}
      {fresh && (
        <Field
          label={`Type ${preview.name} to grant these permissions`}
          value={state.confirm}
          autocomplete="off"
          autocapitalize="off"
          spellcheck={false}
          error={confirmError}
          onInput={(e) => onChange({ ...state, confirm: e.currentTarget.value })}
        />
      )}
    </fieldset>
  );
}
