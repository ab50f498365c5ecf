// What an install or an update will do, from POST /api/v1/apps/preview, in words: the addresses it
// opens, the data it keeps, its network access, the permissions it is granted, and for an update
// every field that changes. Shown before anything is installed.
import { Notice } from '../../ui/Alert.js';
import { Facts } from '../../ui/Page.js';
import type { InstallPreview } from './model.js';

const PROTOCOL_WORDS: Record<string, string> = { http: 'Web (HTTP)', websocket: 'WebSocket', raw: 'Raw TCP', udp: 'UDP' };

export function PreviewPanel({ preview }: { preview: InstallPreview }) {
  return (
    <div class="preview" data-testid="preview">
      <Facts
        items={[
          ['App', <span class="mono">{preview.name}</span>],
          [preview.containers.length > 1 ? 'Main image' : 'Image', <span class="mono">{preview.image}</span>],
          ['Internet', preview.internet === 'allow' ? 'Allowed' : 'No internet access'],
          ['Depends on', preview.dependencies.length ? preview.dependencies.join(', ') : 'Nothing'],
        ]}
      />
      {preview.warnings.length > 0 && (
        <Notice tone="warn" title="Check before you go on">
          <ul>
            {preview.warnings.map((warning) => (
              <li key={warning}>{warning}</li>
            ))}
          </ul>
        </Notice>
      )}
      {preview.containers.length > 1 && (
        <>
          <h3>Containers</h3>
          <ul class="preview-list" aria-label="Containers">
            {preview.containers.map((container) => (
              <li key={container.name} data-container={container.name}>
                <strong>{container.name}</strong>: <span class="mono">{container.image}</span>
                {container.startsAfter.length ? `, starts after ${container.startsAfter.map((s) => s.service).join(', ')}` : ''}
                {container.network === 'host' ? ", on the device's own network" : ''}
                {container.listeners.length ? `, serves ${container.listeners.join(', ')}` : ''}
              </li>
            ))}
          </ul>
        </>
      )}
      <h3>Addresses</h3>
      {preview.listeners.length ? (
        <ul class="preview-list">
          {preview.listeners.map((listener) => (
            <li key={listener.name}>
              <strong>{listener.name}</strong>: {PROTOCOL_WORDS[listener.protocol] ?? listener.protocol} on port {listener.port}
              {listener.flow === 'tls' ? ', encrypted by the app' : ''} —{' '}
              {listener.exposed ? <strong>reachable without signing in</strong> : 'behind the device sign-in'}
            </li>
          ))}
        </ul>
      ) : (
        <p>It opens no address.</p>
      )}
      <h3>Data</h3>
      {preview.volumes.length ? (
        <ul class="preview-list">
          {preview.volumes.map((volume) => (
            <li key={volume.name}>
              <strong>{volume.name}</strong> at <span class="mono">{volume.path}</span>:{' '}
              {volume.kind === 'persistent' ? 'kept, encrypted, across restarts and updates' : 'temporary, emptied on every restart'}
              {volume.sizeLimit ? `, up to ${volume.sizeLimit}` : ''}
            </li>
          ))}
        </ul>
      ) : (
        <p>It keeps no data on the device.</p>
      )}
      <h3>Permissions</h3>
      <Permissions permissions={preview.permissions} />
      {preview.action === 'update' && (
        <>
          <h3>Changes</h3>
          {preview.changes.length ? (
            <div class="table-wrap">
              <table class="changes">
                <thead>
                  <tr>
                    <th scope="col">Field</th>
                    <th scope="col">Now</th>
                    <th scope="col">After the update</th>
                  </tr>
                </thead>
                <tbody>
                  {preview.changes.map((change) => (
                    <tr key={change.path}>
                      <td class="mono">{change.path}</td>
                      <td class="mono">{shown(change.from)}</td>
                      <td class="mono">{shown(change.to)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <p>Nothing changes: this is the spec already installed.</p>
          )}
        </>
      )}
    </div>
  );
}

export function Permissions({ permissions }: { permissions: InstallPreview['permissions'] }) {
  if (!permissions.length) return <p>It asks for no permission beyond running on its own.</p>;
  return (
    <ul class="permissions">
      {permissions.map((permission) => (
        <li key={permission.id} data-permission={permission.id}>
          <strong>{permission.title}</strong>
          <br />
          <span class="muted">{permission.detail}</span>
        </li>
      ))}
    </ul>
  );
}

function shown(value: unknown): string {
  if (value === null || value === undefined) return '(none)';
  return typeof value === 'string' ? value : JSON.stringify(value);
}
