// Step 3: the recovery key, shown once. It opens the data and resets the password when the
// password is lost, so Continue waits until the person says they saved it.
import { useState } from 'preact/hooks';
import { Notice } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import { CopyButton, downloadText } from '../../ui/CopyButton.js';
import { Checkbox } from '../../ui/Field.js';
import { Page } from '../../ui/Page.js';

function keyFile(words: string[]): string {
  const numbered = words.map((word, i) => `${String(i + 1).padStart(2, ' ')}. ${word}`).join('\n');
  return `Piccolo OS recovery key (saved ${new Date().toISOString().slice(0, 10)})\n\nIt resets the admin password and opens the encrypted data. Keep it offline and private.\n\n${numbered}\n`;
}

export function RecoveryStep({ recoveryKey, onContinue }: { recoveryKey: string; onContinue: () => void }) {
  const [saved, setSaved] = useState(false);
  const words = recoveryKey.split(/\s+/).filter(Boolean);
  return (
    <Page title="Save your recovery key" wide={false}>
      <Notice tone="warn" title="This is the only time the key is shown">
        <p>
          If you forget the admin password, these {words.length} words reset it and open your data. Anyone who has them can do the same, so keep them offline: on paper, or in a password
          manager.
        </p>
      </Notice>
      <ol class="words" id="recovery-words" aria-label="Recovery key words">
        {words.map((word, i) => (
          <li key={i}>{word}</li>
        ))}
      </ol>
      <div class="actions">
        <CopyButton text={recoveryKey} label="Copy the words" />
        <Button variant="secondary" onClick={() => downloadText('piccolo-recovery-key.txt', keyFile(words))}>
          Download as a file
        </Button>
      </div>
      <Checkbox label="I have saved the recovery key somewhere safe" checked={saved} onChange={(e) => setSaved(e.currentTarget.checked)} />
      <div class="actions">
        <Button onClick={onContinue} disabled={!saved}>
          Continue
        </Button>
        {!saved && <span class="hint">Tick the box above once the key is saved.</span>}
      </div>
    </Page>
  );
}
