// The dashboard's one line about OS updates, linking to the Updates screen: not available on this
// image, rolled back, waiting for a reboot, running, or the last result.
import { api } from '../../api/client.js';
import { useEvent } from '../../api/events.js';
import { useResource } from '../../api/use-resource.js';
import type { OsUpdateEvent, OsUpdateStatus } from '../../../../updates/types.js';
import { RESULT_WORDS } from './words.js';

export function OsUpdatesGlance() {
  const status = useResource((signal) => api.get<OsUpdateStatus>('/api/v1/updates/os', { signal }));
  useEvent<OsUpdateEvent>('os.update', ({ data }) => data.state === 'finished' && status.reload());
  const s = status.data;
  const text = !s
    ? status.error
      ? `could not be read (${status.error.message})`
      : 'reading…'
    : !s.available
      ? 'not available on this image.'
      : s.rolledBack
        ? 'the last update was rolled back.'
        : s.running
          ? 'an update is being applied.'
          : s.rebootPending
            ? `snapshot ${s.defaultSnapshot} is ready; reboot to start it.`
            : s.lastRun
              ? `last run ${RESULT_WORDS[s.lastRun.result]}.`
              : 'up to date as far as the device knows.';
  return (
    <p class="muted" data-testid="os-updates">
      <a href="/system/updates">OS updates</a>: {text}
    </p>
  );
}
