// Copy to the clipboard, and download as a file. The Clipboard API needs a secure context, which
// http://piccolo.local is not: then the text is copied through a selected, off-screen textarea.
import { useState } from 'preact/hooks';
import { Button } from './Button.js';

export async function copyText(text: string): Promise<boolean> {
  try {
    if (window.isSecureContext && navigator.clipboard) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to the selection
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.className = 'offscreen';
  document.body.append(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  return ok;
}

export function CopyButton({ text, label = 'Copy', what }: { text: string; label?: string; what?: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  return (
    <span class="copy">
      <Button variant="secondary" aria-label={what ? `${label} ${what}` : undefined} onClick={async () => setState((await copyText(text)) ? 'copied' : 'failed')}>
        {label}
      </Button>
      <span class="muted" role="status">
        {state === 'copied' ? 'Copied.' : state === 'failed' ? 'Copy failed: select the text and copy it yourself.' : ''}
      </span>
    </span>
  );
}

export function downloadText(filename: string, text: string | Blob, type = 'text/plain'): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
