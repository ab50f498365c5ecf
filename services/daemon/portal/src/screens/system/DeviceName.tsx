// The device's name: its address on the local network is <name>.local, and app addresses hang
// below it. A rename applies at once, so the old address stops leading here: say so and offer
// the new one. Follows `system.device` (a rename from another browser).
import { useState } from 'preact/hooks';
import type { DeviceInfo } from '../../../../system/types.js';
import { api, type ApiError } from '../../api/client.js';
import { useEvent } from '../../api/events.js';
import { asApiError, useResource } from '../../api/use-resource.js';
import { Alert, Notice } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import { Field } from '../../ui/Field.js';
import { Loaded } from '../../ui/Loading.js';
import { Card } from '../../ui/Page.js';

/** The same page at the device's new host name, keeping the scheme and the port. */
export function addressAt(hostname: string, here: Location = location): string {
  return `${here.protocol}//${hostname}${here.port ? `:${here.port}` : ''}/system`;
}

export function DeviceName() {
  const device = useResource((signal) => api.get<DeviceInfo>('/api/v1/system/device', { signal }));
  useEvent<DeviceInfo>('system.device', ({ data }) => device.set(() => data));
  return (
    <Card title="Device name" id="device-name">
      <Loaded resource={device} what="the device name">
        {(info) => <RenameForm info={info} onRenamed={(next) => device.set(() => next)} />}
      </Loaded>
    </Card>
  );
}

/** The name the network knows the device by: the responder's (another device may hold <name>.local), else the chosen one. */
export function lanHostname(info: DeviceInfo): string {
  return info.mdns && info.mdns.state !== 'off' ? info.mdns.hostname : info.hostname;
}

/** Says when the network does not know the device by the name chosen here, and why. */
function LanNameNotice({ info }: { info: DeviceInfo }) {
  if (info.mdns?.state === 'renamed') {
    return (
      <Notice tone="warn" title={`${info.hostname} is taken on your network`}>
        <p>
          Another device on your network already answers as <span class="mono">{info.hostname}</span>, so this one answers as <strong class="mono">{info.mdns.hostname}</strong>. Rename one of
          them to get a name of its own.
        </p>
      </Notice>
    );
  }
  if (info.mdns?.state === 'off') {
    return (
      <Notice tone="warn" title="Not announced on your network">
        <p>
          Other devices cannot find <span class="mono">{info.hostname}</span> by name right now: {info.mdns.reason ?? 'the name service (avahi-daemon) does not answer'}. Its IP address still works.
        </p>
      </Notice>
    );
  }
  return null;
}

function RenameForm({ info, onRenamed }: { info: DeviceInfo; onRenamed: (info: DeviceInfo) => void }) {
  const [name, setName] = useState(info.name);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError>();
  const [renamed, setRenamed] = useState<{ from: string; to: DeviceInfo }>();
  async function save() {
    setBusy(true);
    setError(undefined);
    try {
      const next = await api.put<DeviceInfo>('/api/v1/system/device', { name: name.trim() });
      setRenamed({ from: info.hostname, to: next });
      onRenamed(next);
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      <p>
        On your network this device is <strong class="mono">{lanHostname(info)}</strong>, and each app is below it (for example <span class="mono">web-blog.{lanHostname(info)}</span>).
      </p>
      <LanNameNotice info={info} />
      <Field
        label="Name"
        name="name"
        autocomplete="off"
        autocapitalize="none"
        spellcheck={false}
        value={name}
        onInput={(e) => setName(e.currentTarget.value)}
        error={error?.field('name')}
        hint="2 to 32 characters: lower-case letters, digits and dashes, starting with a letter."
      />
      {error && !error.field('name') && <Alert error={error} />}
      {renamed && (
        <Notice tone="ok" title={`Renamed to ${renamed.to.name}`}>
          <p>
            The device now answers at <strong class="mono">{renamed.to.hostname}</strong>; {renamed.from} no longer leads here, and app addresses moved below the new name. Bookmarks to the old name
            need updating.
          </p>
          <p>
            <a href={addressAt(renamed.to.hostname)}>Open the portal at {renamed.to.hostname}</a>
          </p>
        </Notice>
      )}
      <div class="actions">
        <Button type="submit" busy={busy} disabled={name.trim() === info.name}>
          Rename
        </Button>
      </div>
    </form>
  );
}
