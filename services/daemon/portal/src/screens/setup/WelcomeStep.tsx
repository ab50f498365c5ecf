// Step 1: what setup does, and where the claim code is: only someone at the device can read it.
import { Button } from '../../ui/Button.js';
import { Page } from '../../ui/Page.js';

export function WelcomeStep({ onStart, onRestore }: { onStart: () => void; onRestore: () => void }) {
  return (
    <Page title="Welcome to Piccolo OS" wide={false}>
      <p>Setting up takes a few minutes. You will:</p>
      <ol>
        <li>prove you are at the device, with its claim code;</li>
        <li>save a recovery key;</li>
        <li>choose the admin password, which also encrypts your data;</li>
        <li>optionally, turn on remote access.</li>
      </ol>
      <h2>Where to find the claim code</h2>
      <p>
        When the device starts, it shows a line like <code>Piccolo OS setup claim code: ABCDE-23456</code>. Look for it:
      </p>
      <ul>
        <li>on a screen plugged into the device;</li>
        <li>on its serial console, if you connected a serial cable;</li>
        <li>in a QEMU virtual machine, in the serial log (the file <code>make qemu</code> names when it starts);</li>
        <li>in development (<code>make run</code>), in the daemon's log.</li>
      </ul>
      <p>The code stays the same across restarts until setup is done, and then stops working.</p>
      <div class="actions">
        <Button onClick={onStart}>Start setup</Button>
        <Button variant="secondary" onClick={onRestore}>
          Restore from backup
        </Button>
      </div>
      <p class="hint">Moving from another Piccolo OS device? Restore from backup brings its apps and their data here, with its backup file and recovery key.</p>
    </Page>
  );
}
