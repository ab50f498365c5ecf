// xterm.js under the portal's CSP (default-src 'self', so no inline <style>): xterm ships a static
// style sheet and, at run time, writes its theme and cell sizes into <style> elements that it
// creates itself, which the CSP blocks (Chromium: "Refused to apply inline style"). No option of
// xterm 6 turns that off or takes a nonce. Constructable style sheets are CSSOM, which the CSP
// does not govern: the static sheet is adopted as one, and while the terminal opens (the only
// moment xterm creates its <style> elements) they are made as inert <template>s instead, whose
// text every later change is mirrored from into a sheet of its own. The CSP stays as it is.

export interface AdoptedStyles {
  dispose(): void;
}

export function adoptSheet(cssText: string): CSSStyleSheet {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(cssText);
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  return sheet;
}

export function dropSheet(sheet: CSSStyleSheet): void {
  document.adoptedStyleSheets = document.adoptedStyleSheets.filter((adopted) => adopted !== sheet);
}

/** Runs `open` (xterm's Terminal.open) with its <style> elements turned into mirrored sheets. */
export function withAdoptedStyles(open: () => void): AdoptedStyles {
  const mirrors: { sheet: CSSStyleSheet; observer: MutationObserver }[] = [];
  const create = document.createElement;
  const ownBefore = Object.prototype.hasOwnProperty.call(document, 'createElement');
  document.createElement = function (this: Document, tag: string, options?: ElementCreationOptions) {
    if (tag.toLowerCase() !== 'style') return create.call(this, tag, options);
    // A <template> is never rendered and its text is not CSS: nothing for the CSP to refuse.
    const stand = create.call(this, 'template');
    const sheet = adoptSheet('');
    const observer = new MutationObserver(() => sheet.replaceSync(stand.textContent ?? ''));
    observer.observe(stand, { childList: true, characterData: true, subtree: true });
    mirrors.push({ sheet, observer });
    return stand;
  } as typeof document.createElement;
  try {
    open();
  } finally {
    if (ownBefore) document.createElement = create;
    else delete (document as { createElement?: unknown }).createElement;
  }
  return {
    dispose() {
      for (const { sheet, observer } of mirrors) {
        observer.disconnect();
        dropSheet(sheet);
      }
    },
  };
}
