// The locked device: its encrypted storage opens with the admin password (then the second factor,
// if enrolled). The screen says why it is locked, since "locked" alone worries people.
import { useLocation } from 'preact-iso/router';
import { device } from '../../api/session.js';
import { Page } from '../../ui/Page.js';
import { PasswordSignIn } from './PasswordSignIn.js';

/** The vault's reason when it is only the generic one: then the TPM answer says more. */
const GENERIC_REASON = 'locked, waiting for unlock';

export function lockedBecause(tpm: boolean, reason: string | undefined): string {
  if (reason && reason !== GENERIC_REASON) return `The device says: ${reason}.`;
  return tpm
    ? 'It normally unlocks itself with its security chip (TPM) when it starts. It is locked now because someone locked it from this portal, or because the chip refused to unlock it after a change to the firmware or the boot settings.'
    : 'This device has no security chip (TPM), so it cannot unlock itself: it starts locked after every restart or power cut. Someone may also have locked it from this portal.';
}

export default function Unlock() {
  const { route } = useLocation();
  const status = device.value;
  return (
    <Page title="This device is locked" wide={false}>
      <p>Your apps and their data are encrypted and stay closed until the device is unlocked.</p>
      <p data-testid="locked-reason">{lockedBecause(status?.tpm ?? false, status?.reason)}</p>
      <PasswordSignIn endpoint="/api/v1/crypto/unlock" submitLabel="Unlock" busyText="Opening the encrypted storage…" route={(path) => route(path, true)} />
      <p>
        <a href="/reset">Forgot the password? Use the recovery key</a>
      </p>
    </Page>
  );
}
