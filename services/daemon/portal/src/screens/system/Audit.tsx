// The audit log, newest first: when, what, how it ended, from where, and the detail. The filter
// matches any of those words. No event announces new entries, so Refresh reads the log again.
import { useState } from 'preact/hooks';
import type { AuditEntryView } from '../../../../system/types.js';
import { api } from '../../api/client.js';
import { useResource } from '../../api/use-resource.js';
import { formatTime, relativeTime } from '../../format.js';
import { Badge } from '../../ui/Badge.js';
import { Button } from '../../ui/Button.js';
import { Field } from '../../ui/Field.js';
import { Loaded } from '../../ui/Loading.js';
import { Page } from '../../ui/Page.js';

const LIMIT = 500;

export function matches(entry: AuditEntryView, filter: string): boolean {
  const words = filter.toLowerCase().split(/\s+/).filter(Boolean);
  const text = [entry.event, entry.outcome, entry.client ?? '', entry.detail ?? '', formatTime(entry.ts)].join(' ').toLowerCase();
  return words.every((word) => text.includes(word));
}

export default function Audit() {
  const audit = useResource((signal) => api.get<{ entries: AuditEntryView[] }>(`/api/v1/system/audit?limit=${LIMIT}`, { signal }).then((r) => r.entries));
  const [filter, setFilter] = useState('');
  return (
    <Page
      title="Audit log"
      intro="Every sign-in, change and refusal on this device, newest first."
      actions={
        <Button variant="secondary" busy={audit.loading && audit.data !== undefined} onClick={audit.reload}>
          Refresh
        </Button>
      }
    >
      <p>
        <a href="/system">Back to System</a>
      </p>
      <Loaded resource={audit} what="the audit log">
        {(entries) => {
          const shown = entries.filter((entry) => matches(entry, filter));
          return (
            <>
              <Field label="Filter" type="search" name="filter" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} hint="Words to look for in the event, outcome, address or detail." />
              <p class="muted" role="status" data-testid="audit-count">
                {filter ? `${shown.length} of ${entries.length} entries match.` : `${entries.length} ${entries.length === 1 ? 'entry' : 'entries'}${entries.length === LIMIT ? ` (the newest ${LIMIT})` : ''}.`}
              </p>
              {shown.length > 0 && (
                <table class="stack-table audit">
                  <caption class="offscreen">Audit log entries</caption>
                  <thead>
                    <tr>
                      <th scope="col">Time</th>
                      <th scope="col">Event</th>
                      <th scope="col">Outcome</th>
                      <th scope="col">Client</th>
                      <th scope="col">Detail</th>
                    </tr>
                  </thead>
                  <tbody>
                    {shown.map((entry, i) => (
                      <tr key={`${entry.ts}-${i}`} data-event={entry.event}>
                        <td data-label="Time">
                          <time dateTime={entry.ts} title={relativeTime(entry.ts)}>
                            {formatTime(entry.ts)}
                          </time>
                        </td>
                        <td data-label="Event" class="mono">
                          {entry.event}
                        </td>
                        <td data-label="Outcome">
                          <Badge state={entry.outcome} />
                        </td>
                        <td data-label="Client" class="mono">
                          {entry.client ?? '—'}
                        </td>
                        <td data-label="Detail">{entry.detail}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </>
          );
        }}
      </Loaded>
    </Page>
  );
}
