// The App page's Storage card: each volume with where it is mounted, its size limit (enforced:
// a write past it fails in the app) and what it stores now; the shared media folders the app
// mounts, read only or not. GET /api/v1/apps/{name}/storage.
import { api, seg } from '../../api/client.js';
import { useResource } from '../../api/use-resource.js';
import { formatBytes } from '../../format.js';
import { Loaded } from '../../ui/Loading.js';
import { ProgressBar } from '../../ui/ProgressBar.js';
import type { AppStorageView, VolumeUse } from '../../../../apps/storage-view.js';

const where = (mounts: { service: string; path: string }[], multi: boolean) => mounts.map((m) => (multi ? `${m.service}: ${m.path}` : m.path)).join(', ');

export function AppStorage({ name, revision, multi }: { name: string; revision: number; multi: boolean }) {
  const storage = useResource((signal) => api.get<AppStorageView>(`/api/v1/apps/${seg(name)}/storage`, { signal }), [name, revision]);
  return (
    <Loaded resource={storage} what="the storage">
      {({ volumes, media }) => (
        <>
          {volumes.length === 0 && media.length === 0 && <p class="muted">This app keeps no data: nothing it writes outlives its container.</p>}
          {volumes.length > 0 && (
            <ul class="list volumes" aria-label="Volumes">
              {volumes.map((volume) => (
                <li key={volume.name} data-volume={volume.name}>
                  <VolumeLine volume={volume} multi={multi} />
                </li>
              ))}
            </ul>
          )}
          {media.length > 0 && (
            <>
              <h3>Shared folders</h3>
              <ul class="list media" aria-label="Shared folders">
                {media.map((m) => (
                  <li key={`${m.service}:${m.path}`} data-media={m.folder}>
                    <strong>{m.subpath ? `${m.folder}/${m.subpath}` : m.folder}</strong> at <span class="mono">{where([m], multi)}</span>, {m.readOnly ? 'read only' : 'read and write'}
                  </li>
                ))}
              </ul>
              <p class="muted">Other apps granted the same folder see the same files.</p>
            </>
          )}
        </>
      )}
    </Loaded>
  );
}

function VolumeLine({ volume, multi }: { volume: VolumeUse; multi: boolean }) {
  const at = where(volume.mounts, multi);
  const label = `${volume.name}${at ? ` (${at})` : ''}`;
  if (volume.kind === 'temporary') {
    return (
      <p>
        <strong>{label}</strong>: temporary, in memory, emptied when the app restarts{volume.limitBytes !== undefined ? `; up to ${formatBytes(volume.limitBytes)}` : ''}.
      </p>
    );
  }
  const used = volume.usedBytes === undefined ? undefined : `${volume.partial ? 'more than ' : ''}${formatBytes(volume.usedBytes)}`;
  if (volume.limitBytes !== undefined) {
    return <ProgressBar label={label} value={volume.usedBytes} max={volume.limitBytes} detail={`${used ?? 'not measured'} of ${formatBytes(volume.limitBytes)}`} />;
  }
  return (
    <p>
      <strong>{label}</strong>: {used ? `${used} stored` : 'not measured now'}, no size limit (it can use the device's free space).
    </p>
  );
}
