// A screen's frame: its title as the page's one h1, focused when the screen opens so that a screen
// reader announces where the person now is, and the document title to match.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

export function Page({ title, intro, actions, children, wide = true }: { title: string; intro?: ComponentChildren; actions?: ComponentChildren; children?: ComponentChildren; wide?: boolean }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · Piccolo OS`;
    heading.current?.focus({ preventScroll: true });
  }, [title]);
  return (
    <section class={wide ? 'page' : 'page narrow'} aria-labelledby="page-title">
      <div class="page-head">
        <h1 id="page-title" tabIndex={-1} ref={heading}>
          {title}
        </h1>
        {actions && <div class="page-actions">{actions}</div>}
      </div>
      {intro && <p class="intro">{intro}</p>}
      {children}
    </section>
  );
}

/** A titled block inside a page. */
export function Card({ title, children, id, actions }: { title?: string; children?: ComponentChildren; id?: string; actions?: ComponentChildren }) {
  const headingId = id && title ? `${id}-title` : undefined;
  return (
    <section class="card" id={id} aria-labelledby={headingId}>
      {(title || actions) && (
        <div class="card-head">
          {title && <h2 id={headingId}>{title}</h2>}
          {actions}
        </div>
      )}
      {children}
    </section>
  );
}

/** Term and value pairs (a <dl>). */
export function Facts({ items }: { items: [string, ComponentChildren][] }) {
  return (
    <dl class="facts">
      {items.map(([term, value]) => (
        <div key={term}>
          <dt>{term}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}
