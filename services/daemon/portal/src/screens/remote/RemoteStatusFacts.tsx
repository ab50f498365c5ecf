// The tunnel's live status as facts: state, relay, since when, the next try while backing off,
// the last error, streams and traffic, and the public names.
import type { RemoteStatus } from '../../../../remote/remote-access.js';
import { formatTime } from '../../format.js';
import { Badge } from '../../ui/Badge.js';
import { Facts } from '../../ui/Page.js';
import { REMOTE_STATE_LABELS, REMOTE_STATE_TONES, remoteState } from './state.js';
import type { ComponentChildren } from 'preact';

/** Traffic counts in decimal units, as network counters are read. */
export function traffic(count: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let unit = 0;
  for (; count >= 1000 && unit < units.length - 1; unit++) count /= 1000;
  return `${unit ? count.toFixed(1) : count} ${units[unit]}`;
}

export function RemoteStatusFacts({ status }: { status: RemoteStatus }) {
  const state = remoteState(status);
  const tunnel = status.enabled ? status.tunnel.status : undefined;
  const items: [string, ComponentChildren][] = [['State', <Badge state={REMOTE_STATE_TONES[state]} label={REMOTE_STATE_LABELS[state]} />]];
  if (status.configured) items.push(['Relay', <span class="mono">{tunnel?.relay ?? status.relayUrl}</span>]);
  if (state === 'silent' && tunnel && status.tunnel.receivedAt) {
    items.push(['Last report', `${formatTime(status.tunnel.receivedAt)}: ${REMOTE_STATE_LABELS[tunnel.state === 'disabled' ? 'disabled-tunnel' : tunnel.state]}`]);
  } else if (tunnel) {
    items.push(['Since', formatTime(tunnel.since)]);
    if (tunnel.state === 'backoff' && tunnel.backoffMs !== undefined) items.push(['Next try', `${Math.ceil(tunnel.backoffMs / 1000)} s after that`]);
    if (tunnel.lastError) items.push(['Last error', tunnel.lastError]);
    items.push(['Streams', String(tunnel.streams)], ['Traffic', `${traffic(tunnel.bytesIn)} in, ${traffic(tunnel.bytesOut)} out`]);
  }
  if (status.hostnames.length) {
    items.push([
      'Names',
      <ul class="names">
        {status.hostnames.map((name) => (
          <li key={name.hostname}>
            <span class="mono">{name.hostname}</span>
            {name.tls === 'passthrough' && <span class="muted"> (the app does TLS)</span>}
            {name.mode === 'tunnel' && <span class="muted"> (served by another node)</span>}
          </li>
        ))}
      </ul>,
    ]);
  }
  return (
    <div aria-live="polite" data-testid="remote-status">
      <Facts items={items} />
    </div>
  );
}
