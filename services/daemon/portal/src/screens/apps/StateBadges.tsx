// An app's state and health as words with colour (Badge); health only once it is known.
import { Badge } from '../../ui/Badge.js';
import type { AppView } from './model.js';

const HEALTH_WORDS: Record<AppView['health'], string> = { ok: 'healthy', degraded: 'unhealthy', unknown: 'health unknown' };

export function StateBadges({ app }: { app: Pick<AppView, 'state' | 'health' | 'spec'> }) {
  return (
    <span class="badges">
      <Badge state={app.state} />
      {app.state === 'running' && app.spec.healthcheck && <Badge state={app.health === 'ok' ? 'healthy' : app.health === 'degraded' ? 'unhealthy' : 'unknown'} label={HEALTH_WORDS[app.health]} />}
    </span>
  );
}
