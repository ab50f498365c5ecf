// The app page's terminal card: a button that loads the terminal (xterm.js, about 100 KB gzip, in
// its own chunk: the app page and the main bundle stay small) and opens a shell in the container.
import type { FunctionComponent } from 'preact';
import { useState } from 'preact/hooks';
import { Alert } from '../../../ui/Alert.js';
import { Button } from '../../../ui/Button.js';
import { Loading } from '../../../ui/Loading.js';
import type { TerminalViewProps } from './TerminalView.js';

export function TerminalSlot({ app, running }: { app: string; running: boolean }) {
  const [View, setView] = useState<FunctionComponent<TerminalViewProps>>();
  const [opening, setOpening] = useState(false);
  const [error, setError] = useState<string>();
  const open = async () => {
    setOpening(true);
    setError(undefined);
    try {
      const module = await import('./TerminalView.js');
      setView(() => module.TerminalView);
    } catch {
      setError('The terminal could not be loaded. Check the connection to the device and try again.');
    } finally {
      setOpening(false);
    }
  };
  if (View) return <View app={app} onClose={() => setView(undefined)} />;
  return (
    <>
      <p class="muted">A shell inside the app's container, as the app itself sees it. What you type there runs with the app's rights.</p>
      {!running && <p>Start the app to open a terminal.</p>}
      <Alert error={error} />
      {opening && <Loading what="the terminal" />}
      <div class="actions">
        <Button variant="secondary" onClick={open} disabled={!running} busy={opening}>
          Open terminal
        </Button>
      </div>
    </>
  );
}
