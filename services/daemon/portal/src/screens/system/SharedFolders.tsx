// The System screen's Shared folders card: the device's shared media folders (Media, Downloads...,
// made on an app's first media grant, stored encrypted like app data) and which apps have each.
// GET /api/v1/storage/shared.
import { api } from '../../api/client.js';
import { useResource } from '../../api/use-resource.js';
import { Card } from '../../ui/Page.js';
import { Loaded } from '../../ui/Loading.js';
import type { SharedFolderView } from '../../../../apps/storage-view.js';

export function SharedFolders() {
  const shared = useResource((signal) => api.get<{ folders: SharedFolderView[] }>('/api/v1/storage/shared', { signal }).then((r) => r.folders));
  return (
    <Card title="Shared folders" id="shared-folders">
      <Loaded resource={shared} what="the shared folders">
        {(folders) =>
          folders.length === 0 ? (
            <p class="muted">No shared folders yet. One is made when you grant an app a media folder (Media, Downloads...) at install.</p>
          ) : (
            <ul class="list shared-folders" aria-label="Shared folders">
              {folders.map((folder) => (
                <li key={folder.name} data-folder={folder.name}>
                  <strong>{folder.name}</strong>:{' '}
                  {folder.apps.length === 0
                    ? 'no app has it now; its files are kept'
                    : [...new Map(folder.apps.map((a) => [a.app, a])).values()].map((a, i) => (
                        <span key={a.app}>
                          {i > 0 && ', '}
                          <a href={`/apps/${encodeURIComponent(a.app)}#storage`}>{a.app}</a> ({folder.apps.filter((m) => m.app === a.app).every((m) => m.readOnly) ? 'read only' : 'read and write'})
                        </span>
                      ))}
                </li>
              ))}
            </ul>
          )
        }
      </Loaded>
    </Card>
  );
}
