// The terminal itself (its own chunk): xterm.js on the app's terminal WebSocket. Keystrokes go out
// as binary frames and the shell's bytes come back as binary frames; the size follows the card
// (FitAddon) and is sent as {type:'resize'}. The CSRF token rides as a subprotocol, since a browser
// cannot set headers on a WebSocket. A closed socket says why, in the server's words.
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import xtermCss from '@xterm/xterm/css/xterm.css' with { type: 'text' };
import { useEffect, useRef, useState } from 'preact/hooks';
import { csrfToken, seg } from '../../../api/client.js';
import { Alert, Notice } from '../../../ui/Alert.js';
import { Button } from '../../../ui/Button.js';
import { adoptSheet, dropSheet, withAdoptedStyles } from './csp-styles.js';
import frameCss from './terminal.css' with { type: 'text' };

export interface TerminalViewProps {
  app: string;
  onClose: () => void;
}

type Status = { kind: 'connecting' } | { kind: 'open'; shell: string } | { kind: 'closed'; reason: string; failed: boolean };

/** Escape then Tab (within this long) leaves the terminal, as in CodeMirror: Tab alone goes to the shell. */
const ESCAPE_WINDOW_MS = 1500;

export function TerminalView({ app, onClose }: TerminalViewProps) {
  const screen = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState<Status>({ kind: 'connecting' });
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    const sheets = [adoptSheet(xtermCss as string), adoptSheet(frameCss as string)];
    return () => sheets.forEach(dropSheet);
  }, []);

  useEffect(() => {
    const host = screen.current!;
    const term = new Terminal({ cursorBlink: true, fontSize: 14, fontFamily: 'ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace', theme: themeFromPage(), scrollback: 2000 });
    const fit = new FitAddon();
    term.loadAddon(fit);
    const styles = withAdoptedStyles(() => term.open(host));
    fit.fit();
    setStatus({ kind: 'connecting' });

    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${scheme}://${location.host}/api/v1/apps/${seg(app)}/terminal?cols=${term.cols}&rows=${term.rows}`;
    const ws = new WebSocket(url, ['piccolo-terminal', `piccolo-csrf.${csrfToken.value}`]);
    ws.binaryType = 'arraybuffer';
    const encoder = new TextEncoder();
    const send = (data: string | BufferSource) => ws.readyState === WebSocket.OPEN && ws.send(data);
    ws.onmessage = (event) => {
      if (event.data instanceof ArrayBuffer) return term.write(new Uint8Array(event.data));
      const message = JSON.parse(event.data as string) as { type: string; shell?: string };
      if (message.type === 'ready') {
        setStatus({ kind: 'open', shell: message.shell ?? 'a shell' });
        term.focus();
      }
    };
    ws.onclose = (event) => setStatus({ kind: 'closed', reason: closeWords(event.code, event.reason), failed: event.code !== 1000 });
    const typed = term.onData((data) => send(encoder.encode(data)));
    const binary = term.onBinary((data) => send(Uint8Array.from(data, (c) => c.charCodeAt(0))));
    const resized = term.onResize(({ cols, rows }) => send(JSON.stringify({ type: 'resize', cols, rows })));
    let escapedAt = 0;
    term.attachCustomKeyEventHandler((event) => {
      if (event.type !== 'keydown') return true;
      if (event.key === 'Escape') escapedAt = Date.now();
      // false: xterm leaves the key alone and the browser moves the focus on.
      else if (event.key === 'Tab' && Date.now() - escapedAt < ESCAPE_WINDOW_MS) return false;
      return true;
    });
    const observer = new ResizeObserver(() => fit.fit());
    observer.observe(host);
    const scheme$ = matchMedia('(prefers-color-scheme: dark)');
    const retheme = () => (term.options.theme = themeFromPage());
    scheme$.addEventListener('change', retheme);
    return () => {
      scheme$.removeEventListener('change', retheme);
      observer.disconnect();
      typed.dispose();
      binary.dispose();
      resized.dispose();
      ws.onclose = null;
      ws.close(1000, 'closed in the portal');
      term.dispose();
      styles.dispose();
    };
  }, [app, attempt]);

  return (
    <div class="terminal-frame">
      <div class="terminal-bar">
        {status.kind === 'open' ? (
          <Notice tone="ok">
            <p>
              Connected: {status.shell} in {app}. Press Escape, then Tab, to leave the terminal with the keyboard.
            </p>
          </Notice>
        ) : status.kind === 'connecting' ? (
          <p role="status">Connecting to {app}…</p>
        ) : status.failed ? (
          <Alert error={`The terminal closed: ${status.reason}`} />
        ) : (
          <Notice>
            <p>The terminal closed: {status.reason}</p>
          </Notice>
        )}
        <div class="actions">
          {status.kind === 'closed' && (
            <Button variant="secondary" onClick={() => setAttempt((n) => n + 1)}>
              Reconnect
            </Button>
          )}
          <Button variant="quiet" onClick={onClose}>
            Close terminal
          </Button>
        </div>
      </div>
      <div class="terminal-screen" ref={screen} />
    </div>
  );
}

/** The server's reason when it gave one; words for the codes a browser sees without one. */
function closeWords(code: number, reason: string): string {
  if (reason) return reason.endsWith('.') ? reason : `${reason}.`;
  if (code === 1006) return 'the device refused or dropped the connection. Sign in again or reload the page, then reconnect.';
  return `the connection ended (code ${code}).`;
}

/** The page's own colours (light or dark), so the terminal meets the same contrast as the rest. */
function themeFromPage() {
  const css = getComputedStyle(document.documentElement);
  const value = (name: string) => css.getPropertyValue(name).trim();
  return { background: value('--surface-2'), foreground: value('--text'), cursor: value('--text'), cursorAccent: value('--surface-2'), selectionBackground: value('--busy-bg'), selectionForeground: value('--busy-fg') };
}
