// System settings: the device name, the password and the recovery key, the device certificate,
// two-factor sign-in and the audit log, and locking; a link to OS updates (screens/updates).
// Backup: one encrypted file of the whole device (Backup.tsx).
import { Card, Page } from '../../ui/Page.js';
import { Backup } from './Backup.js';
import { ChangePassword } from './ChangePassword.js';
import { DeviceCa } from './DeviceCa.js';
import { DeviceName } from './DeviceName.js';
import { LockDevice } from './LockDevice.js';
import { RecoveryKey } from './RecoveryKey.js';
import { SharedFolders } from './SharedFolders.js';

export default function System() {
  return (
    <Page title="System" intro="This device's name, how you sign in, its certificate and its records.">
      <div class="grid system">
        <DeviceName />
        <Card title="Security and records" id="more">
          <ul class="link-list">
            <li>
              <a href="/system/security">Two-factor sign-in</a>: an authenticator app or passkeys as a second step.
            </li>
            <li>
              <a href="/system/audit">Audit log</a>: every sign-in, change and refusal, with the address it came from.
            </li>
          </ul>
        </Card>
        <ChangePassword />
        <RecoveryKey />
      </div>
      <DeviceCa />
      <SharedFolders />
      <div class="grid system">
        <Backup />
        <Card title="OS updates" id="updates">
          <p>
            <a href="/system/updates">OS updates</a>: the system's snapshots, updates into a new one, reboot and rollback.
          </p>
        </Card>
        <LockDevice />
      </div>
    </Page>
  );
}
