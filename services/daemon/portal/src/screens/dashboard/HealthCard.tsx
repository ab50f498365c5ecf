// The device's health as the health service sees it: ready or not, why not, and each component
// with its reason when it is not ok. An unreachable health service is a state of its own.
import type { HealthView } from '../../../../system/types.js';
import { Notice } from '../../ui/Alert.js';
import { Badge } from '../../ui/Badge.js';
import { Card } from '../../ui/Page.js';

export function HealthCard({ health }: { health: HealthView }) {
  const overall = !health.reachable ? <Badge state="unknown" label="unknown" /> : health.ready ? <Badge state="ready" label="ready" /> : <Badge state="down" label="not ready" />;
  return (
    <Card title="Health" id="health" actions={overall}>
      {!health.reachable ? (
        <Notice tone="warn" title="The health service is unreachable">
          {health.reasons.map((reason) => (
            <p key={reason}>{reason}</p>
          ))}
        </Notice>
      ) : (
        <>
          {health.reasons.length > 0 && (
            <Notice tone="warn" title="Not ready because">
              <ul>
                {health.reasons.map((reason) => (
                  <li key={reason}>{reason}</li>
                ))}
              </ul>
            </Notice>
          )}
          <ul class="components" aria-label="Components">
            {health.components.map((c) => (
              <li key={c.name} data-component={c.name}>
                <span class="mono">{c.name}</span> <Badge state={c.status} />
                {c.reason && <span class="reason">{c.reason}</span>}
              </li>
            ))}
          </ul>
          {health.components.length === 0 && <p class="muted">No component has reported yet.</p>}
          {health.notes.map((note) => (
            <p class="muted" key={note}>
              {note}
            </p>
          ))}
        </>
      )}
    </Card>
  );
}
