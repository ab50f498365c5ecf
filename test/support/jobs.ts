// Waiting for an app job (install, start, stop, ...) over the API, as the portal's tests do after
// starting one: resolves with the finished job, and fails the test unless it succeeded.
import * as assert from 'uvu/assert';
import type { ApiSession } from './api-session.js';
import { waitFor } from './processes.js';

export async function jobDone(api: ApiSession, job: { id: string }, timeoutMs = 60_000): Promise<Record<string, unknown>> {
  const done = await waitFor(async () => {
    const { body } = await api.call('GET', `/api/v1/jobs/${job.id}`);
    return body.status === 'running' ? undefined : body;
  }, timeoutMs, `job ${job.id}`);
  assert.is(done.status, 'succeeded', JSON.stringify(done));
  return done;
}
