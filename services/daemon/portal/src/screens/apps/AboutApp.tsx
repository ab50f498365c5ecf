// What an app store says about an imported app (Umbrel's manifest, CasaOS's x-casaos): its title,
// tagline, version and maker, and the first sign-in the app itself asks for, with the password the
// device generated for it.
import type { ComponentChildren } from 'preact';
import type { AppAbout } from '../../../../apps/spec/compose.js';
import { CopyButton } from '../../ui/CopyButton.js';
import { Facts } from '../../ui/Page.js';

const SOURCE_WORDS: Record<AppAbout['source'], string> = { umbrel: 'an Umbrel app', casaos: 'a CasaOS app', compose: 'a compose file' };

export function AboutApp({ about }: { about: AppAbout | undefined }) {
  if (!about || about.source === 'compose') return null;
  const facts: [string, ComponentChildren][] = [['From', SOURCE_WORDS[about.source]]];
  if (about.title) facts.push(['Name', about.title]);
  if (about.tagline) facts.push(['What it is', about.tagline]);
  if (about.version) facts.push(['Version', about.version]);
  if (about.developer) facts.push(['Made by', about.developer]);
  if (about.category) facts.push(['Category', about.category]);
  if (about.website && /^https?:\/\//.test(about.website)) facts.push(['Website', <a href={about.website} rel="noreferrer noopener" target="_blank">{about.website}</a>]);
  if (about.path && about.path !== '/') facts.push(['Opens at', <span class="mono">{about.path}</span>]);
  if (about.defaultUsername) facts.push(["The app's user name", <span class="mono">{about.defaultUsername}</span>]);
  if (about.defaultPassword) {
    facts.push([
      "The app's password",
      <span class="secret-line">
        <span class="mono">{about.defaultPassword}</span> <CopyButton text={about.defaultPassword} what="the app's password" />
      </span>,
    ]);
  }
  return (
    <div class="about-app" data-testid="about-app">
      <Facts items={facts} />
      {about.defaultPassword && <p class="muted">The device made this password for the app and keeps it; the app asks for it the first time you sign in to it.</p>}
    </div>
  );
}
