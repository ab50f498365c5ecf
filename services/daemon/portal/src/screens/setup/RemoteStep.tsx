// Step 5 (optional): remote access through a relay, with the Remote access screen's own settings
// form (check, then save). "Set up later" skips: that screen has it all, any time.
import type { RemoteStatus } from '../../../../remote/remote-access.js';
import { api } from '../../api/client.js';
import { useResource } from '../../api/use-resource.js';
import { Button } from '../../ui/Button.js';
import { Loaded } from '../../ui/Loading.js';
import { Page } from '../../ui/Page.js';
import { RemoteSettingsForm } from '../remote/RemoteSettingsForm.js';

export function RemoteStep({ onDone }: { onDone: () => void }) {
  const status = useResource((signal) => api.get<RemoteStatus>('/api/v1/remote/status', { signal }), []);
  return (
    <Page title="Remote access (optional)" wide={false}>
      <p>
        Remote access lets you reach this portal and your apps from outside your home, through a relay server. The device connects out to the relay over an encrypted link, so no port on
        your router needs opening. You need an account with a relay: it gives you the relay URL and the device secret.
      </p>
      <p>
        This step is optional: you can set it up later, any time, from <strong>Remote access</strong> in the menu.
      </p>
      <Loaded resource={status} what="the remote access settings">
        {(current) => <RemoteSettingsForm status={current} onSaved={onDone} />}
      </Loaded>
      <div class="actions">
        <Button variant="secondary" onClick={onDone}>
          Set up later
        </Button>
      </div>
    </Page>
  );
}
