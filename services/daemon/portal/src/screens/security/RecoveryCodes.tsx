// New recovery codes, shown once: after "I saved them" (or leaving the page) they cannot be shown
// again, only replaced. Copy and download, as for the recovery key in the wizard.
import { Notice } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import { CopyButton, downloadText } from '../../ui/CopyButton.js';

export function NewRecoveryCodes({ codes, deviceName, onSaved }: { codes: string[]; deviceName: string; onSaved: () => void }) {
  const text = `Piccolo OS recovery codes for ${deviceName}\nEach code signs in once instead of the authenticator app or a passkey.\n\n${codes.join('\n')}\n`;
  return (
    <Notice tone="warn" title="Save your recovery codes now">
      <p>If the phone or the passkey is lost, each of these codes signs in once in place of the second step. They are shown only this once.</p>
      <ol class="recovery-codes" aria-label="Recovery codes">
        {codes.map((code) => (
          <li key={code}>{code}</li>
        ))}
      </ol>
      <div class="actions">
        <CopyButton text={codes.join('\n')} what="recovery codes" />
        <Button variant="secondary" onClick={() => downloadText(`piccolo-${deviceName}-recovery-codes.txt`, text)}>
          Download
        </Button>
        <Button onClick={onSaved}>I saved them</Button>
      </div>
    </Notice>
  );
}
