// Remote access's state in one word, from the status the daemon answers (and sends as
// `remote.status`): the Remote screen and the dashboard say it the same way.
import type { RemoteStatus } from '../../../../remote/remote-access.js';

export type RemoteState = 'unconfigured' | 'disabled' | 'silent' | 'disabled-tunnel' | 'connecting' | 'connected' | 'backoff';

export const REMOTE_STATE_LABELS: Record<RemoteState, string> = {
  unconfigured: 'Not set up',
  disabled: 'Off',
  silent: 'No word from the tunnel',
  'disabled-tunnel': 'Tunnel stopped',
  connecting: 'Connecting…',
  connected: 'Connected',
  backoff: 'Waiting to reconnect',
};

/** The Badge tone for each state (Badge.tsx maps these words to colours). */
export const REMOTE_STATE_TONES: Record<RemoteState, string> = {
  unconfigured: 'idle',
  disabled: 'disabled',
  silent: 'degraded',
  'disabled-tunnel': 'degraded',
  connecting: 'connecting',
  connected: 'connected',
  backoff: 'backoff',
};

export function remoteState(status: RemoteStatus): RemoteState {
  if (!status.configured) return 'unconfigured';
  if (!status.enabled) return 'disabled';
  const tunnel = status.tunnel;
  if (!tunnel.reporting || !tunnel.status) return 'silent';
  // Enabled here but the tunnel says it holds no relay connection: it has not caught up yet.
  return tunnel.status.state === 'disabled' ? 'disabled-tunnel' : tunnel.status.state;
}
