// The frame around signed-in screens: a skip link, the header, the navigation (a sidebar on wide
// screens, a menu button on phones) and the main region. Screens before sign-in get a plain frame.
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso/router';
import { connected } from '../api/events.js';
import { signOut } from '../api/session.js';
import { Button } from './Button.js';
import { DiskFullBanner } from './DiskFullBanner.js';

export const NAV = [
  { href: '/', label: 'Dashboard' },
  { href: '/apps', label: 'Apps' },
  { href: '/services', label: 'Services' },
  { href: '/remote', label: 'Remote access' },
  { href: '/system', label: 'System' },
] as const;

function current(path: string, href: string): boolean {
  return href === '/' ? path === '/' : path === href || path.startsWith(`${href}/`);
}

export function SignedInLayout({ children, deviceName }: { children: ComponentChildren; deviceName?: string }) {
  const { path, route } = useLocation();
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => setMenuOpen(false), [path]);
  return (
    <div class="frame signed-in">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href="/">
          Piccolo OS
        </a>
        {deviceName && <span class="device-name">{deviceName}.local</span>}
        <span class={connected.value ? 'live on' : 'live'} role="status">
          {connected.value ? 'Live' : 'Reconnecting…'}
        </span>
        <Button variant="quiet" class="menu-button" aria-expanded={menuOpen} aria-controls="nav" onClick={() => setMenuOpen(!menuOpen)}>
          Menu
        </Button>
      </header>
      <nav id="nav" class={menuOpen ? 'nav open' : 'nav'} aria-label="Main">
        <ul>
          {NAV.map((item) => (
            <li key={item.href}>
              <a href={item.href} aria-current={current(path, item.href) ? 'page' : undefined}>
                {item.label}
              </a>
            </li>
          ))}
        </ul>
        <Button
          variant="secondary"
          onClick={async () => {
            await signOut();
            route('/login', true);
          }}
        >
          Sign out
        </Button>
      </nav>
      <main id="main" tabIndex={-1}>
        <DiskFullBanner />
        {children}
      </main>
    </div>
  );
}

export function PlainLayout({ children, step }: { children: ComponentChildren; step?: string }) {
  return (
    <div class="frame plain">
      <header class="topbar">
        <span class="brand">Piccolo OS</span>
        {step && <span class="muted">{step}</span>}
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}
