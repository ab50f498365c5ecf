// An app's Open links: one per listener, local and (with remote access on) remote. An app that is
// not running gets no link at all, only the reason, since its ports refuse connections.
import { LinkButton } from '../../ui/Button.js';
import { appLinks, canOpen, type AppView } from './model.js';
import type { RemoteStatus } from '../../../../remote/remote-access.js';

export function OpenLinks({ app, remote }: { app: AppView; remote: RemoteStatus | undefined }) {
  if (!app.services.length) return <p class="muted">This app has no web page or port to open.</p>;
  if (!canOpen(app)) return <p class="muted no-link">No Open link while the app is {app.state}: its address does not answer.</p>;
  const links = appLinks(app.services, remote);
  const several = links.length > 1;
  // Each listener's own name on the network (mDNS), below the name the device answers at there.
  const hostnames = new Map(app.services.map((service) => [service.listener, service.hostname]));
  return (
    <ul class="open-links">
      {links.map((link) => (
        <li key={link.listener}>
          {link.address ? (
            <span>
              {link.listener}: <span class="mono">{link.address}</span>
            </span>
          ) : (
            <>
              <LinkButton variant="primary" href={link.localUrl} target="_blank" rel="noopener">
                {several ? `Open ${link.listener}` : 'Open'}
              </LinkButton>
              {link.remoteUrl && (
                <LinkButton href={link.remoteUrl} target="_blank" rel="noopener">
                  {several ? `Open ${link.listener} remotely` : 'Open remotely'}
                </LinkButton>
              )}
              <span class="muted mono link-address">{link.localUrl}</span>
            </>
          )}
          {hostnames.get(link.listener) && (
            <span class="muted link-address">
              On your network: <span class="mono">{hostnames.get(link.listener)}</span>
            </span>
          )}
        </li>
      ))}
    </ul>
  );
}
