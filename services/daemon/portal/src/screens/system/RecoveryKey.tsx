// Rotate the recovery key: with the password, the device makes a new one and the old one stops
// working at once. The new words are shown once, with Copy and Download, until the person says
// they saved them.
import { useState } from 'preact/hooks';
import { api, type ApiError } from '../../api/client.js';
import { asApiError } from '../../api/use-resource.js';
import { Notice } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import { CopyButton, downloadText } from '../../ui/CopyButton.js';
import { Checkbox } from '../../ui/Field.js';
import { Card } from '../../ui/Page.js';
import { ConfirmPassword } from './ConfirmPassword.js';

export function RecoveryKey() {
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError>();
  const [key, setKey] = useState<string>();
  const [saved, setSaved] = useState(false);
  const [done, setDone] = useState(false);
  async function rotate() {
    setBusy(true);
    setError(undefined);
    setDone(false);
    try {
      const reply = await api.post<{ recoveryKey: string }>('/api/v1/crypto/recovery-key/rotate', { password });
      setPassword('');
      setSaved(false);
      setKey(reply.recoveryKey);
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  }
  if (key) {
    const words = key.split(/\s+/);
    return (
      <Card title="Recovery key" id="recovery">
        <Notice tone="warn" title="Your new recovery key, shown only now">
          <p>The old key no longer works. Write these {words.length} words down, or save them, and keep them somewhere safe: they reset the password if you forget it.</p>
        </Notice>
        <ol class="words" data-testid="recovery-words">
          {words.map((word, i) => (
            <li key={i}>{word}</li>
          ))}
        </ol>
        <div class="actions">
          <CopyButton text={key} what="the recovery key" />
          <Button variant="secondary" onClick={() => downloadText('piccolo-recovery-key.txt', `Piccolo recovery key (${new Date().toISOString().slice(0, 10)})\n${key}\n`)}>
            Download
          </Button>
        </div>
        <Checkbox label="I saved the new recovery key" checked={saved} onChange={(e) => setSaved(e.currentTarget.checked)} />
        <div class="actions">
          <Button disabled={!saved} onClick={() => (setKey(undefined), setDone(true))}>
            Done
          </Button>
        </div>
      </Card>
    );
  }
  return (
    <Card title="Recovery key" id="recovery">
      <p>The recovery key resets the password when it is forgotten. Make a new one if the old one may have been seen, or is lost: the old one then stops working.</p>
      {done && <Notice tone="ok">The new recovery key is in use.</Notice>}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (password) void rotate();
        }}
      >
        <ConfirmPassword password={password} onPassword={setPassword} error={error} />
        <div class="actions">
          <Button type="submit" busy={busy} disabled={!password}>
            Make a new recovery key
          </Button>
        </div>
      </form>
    </Card>
  );
}
