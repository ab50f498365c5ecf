// The full-disk banner, on every signed-in screen: while the state disk is full it says so, what
// uses the space and what to do. It asks GET /api/v1/system/disk on mount, again whenever the
// events stream says the disk state changed (system.disk), and every 30 s in case an event was
// missed; it disappears by itself once the daemon has room again.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api/client.js';
import { useEvent } from '../api/events.js';
import { formatBytes } from '../format.js';
import type { DiskSpaceView, DiskUsageName } from '../../../system/disk-space.js';

const LABELS: Record<DiskUsageName, string> = {
  store: 'Device settings and keys (the store)',
  apps: 'App data (app volumes)',
  media: 'Shared media folders',
  images: 'App images',
  reserve: 'Kept free for getting out of a full disk',
  other: 'Other files on this disk',
};

const RECHECK_MS = 30_000;

/** What to do, from what takes the most room on this disk. */
function advice(view: DiskSpaceView): string {
  const biggest = view.usage.filter((entry) => entry.onStateDisk && entry.bytes > 0)[0];
  if (biggest?.name === 'other') return 'Most of the space is used by files that are not Piccolo\'s own data (the store and the apps are listed above). Removing an app with its data still frees what it uses.';
  if (biggest?.name === 'images') return 'App images use most of this disk. To free space, remove an app you no longer need, with its data.';
  return 'To free space, remove an app you no longer need, with its data.';
}

export function DiskFullBanner() {
  const [view, setView] = useState<DiskSpaceView>();
  const load = () => void api.get<DiskSpaceView>('/api/v1/system/disk').then(setView, () => {});
  useEffect(() => {
    load();
    const timer = window.setInterval(load, RECHECK_MS);
    return () => window.clearInterval(timer);
  }, []);
  useEvent('system.disk', load);
  if (!view?.full) return null;
  return (
    <section class="alert error disk-full" role="alert" aria-labelledby="disk-full-title">
      <p class="alert-title" id="disk-full-title">
        The device's disk is full
      </p>
      <p>
        {view.freeBytes === null ? 'The state disk is full.' : `Only ${formatBytes(view.freeBytes)} of ${formatBytes(view.totalBytes ?? undefined)} is free.`} Changes (installs,
        settings, passwords) are not saved until there is room again. Nothing needs a restart: they work again as soon as space is freed.
      </p>
      <p>What uses the space:</p>
      <ul class="disk-usage">
        {view.usage.map((entry) => (
          <li key={entry.name}>
            <span>{LABELS[entry.name]}</span> <strong>{formatBytes(entry.bytes)}</strong>
            {!entry.onStateDisk && <span class="muted"> (on another disk)</span>}
          </li>
        ))}
      </ul>
      <p>
        {advice(view)} <a href="/apps">Go to Apps</a>
      </p>
    </section>
  );
}
