// What a screen shows while its data loads or after it failed: never a silent spinner.
import type { ComponentChildren } from 'preact';
import type { Resource } from '../api/use-resource.js';
import { Alert } from './Alert.js';
import { Button } from './Button.js';

export function Loading({ what }: { what: string }) {
  return (
    <p class="loading" role="status">
      <span class="spinner" aria-hidden="true" /> Loading {what}…
    </p>
  );
}

/** Renders children with the data once loaded; the reason and a Retry button if loading failed. */
export function Loaded<T>({ resource, what, children }: { resource: Resource<T>; what: string; children: (data: T) => ComponentChildren }) {
  if (resource.data !== undefined) {
    return (
      <>
        {resource.error && (
          <Alert error={`Could not refresh ${what}: ${resource.error.message}`}>
            <Button variant="secondary" onClick={resource.reload}>
              Retry
            </Button>
          </Alert>
        )}
        {children(resource.data)}
      </>
    );
  }
  if (resource.error) {
    return (
      <Alert error={`Could not load ${what}: ${resource.error.message}`}>
        <Button variant="secondary" onClick={resource.reload}>
          Retry
        </Button>
      </Alert>
    );
  }
  return <Loading what={what} />;
}
