// The app's output as a live tail: GET /api/v1/apps/{name}/logs?follow=true streamed through a
// fetch body reader (lines arrive as the container writes them). A capped buffer keeps a chatty
// app from growing the page without end; search filters and highlights; pause freezes the view
// while lines keep arriving underneath. A stream that ends (the app stopped) reopens when it runs again.
import type { JSX } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, seg } from '../../api/client.js';
import { Alert } from '../../ui/Alert.js';
import { Button } from '../../ui/Button.js';
import { Field } from '../../ui/Field.js';

/** Lines kept in memory; older ones drop off the top. */
export const MAX_LINES = 1000;
const TAIL = 200;

interface Line {
  n: number;
  time?: string;
  text: string;
}

type StreamState = 'connecting' | 'live' | 'ended' | 'failed';

/** The engine prefixes each line with its RFC 3339 time (timestamps: true). */
function parseLine(raw: string, n: number): Line {
  const match = /^(\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d)) (.*)$/s.exec(raw);
  return match ? { n, time: match[1], text: match[2]! } : { n, text: raw };
}

export function LogTail({ app, running, service }: { app: string; running: boolean; service?: string }) {
  const [lines, setLines] = useState<Line[]>([]);
  const [state, setState] = useState<StreamState>('connecting');
  const [error, setError] = useState<string>();
  const [paused, setPaused] = useState<Line[] | undefined>();
  const [query, setQuery] = useState('');
  const [attempt, setAttempt] = useState(0);
  const view = useRef<HTMLDivElement>(null);
  const stick = useRef(true);

  useEffect(() => {
    const abort = new AbortController();
    let counter = 0;
    setLines([]);
    setState('connecting');
    setError(undefined);
    (async () => {
      const res = await fetch(`/api/v1/apps/${seg(app)}/logs?follow=true&tail=${TAIL}${service ? `&service=${encodeURIComponent(service)}` : ''}`, { signal: abort.signal, credentials: 'same-origin' });
      if (!res.ok || !res.body) {
        const body = await res.json().catch(() => undefined);
        throw new ApiError(res.status, body?.error?.code ?? 'http', body?.error?.message ?? `The device answered ${res.status}.`);
      }
      setState('live');
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let partial = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const parts = (partial + value).split('\n');
        partial = parts.pop() ?? '';
        if (!parts.length) continue;
        const fresh = parts.map((raw) => parseLine(raw.replace(/\r$/, ''), ++counter));
        setLines((current) => {
          const next = current.concat(fresh);
          return next.length > MAX_LINES ? next.slice(next.length - MAX_LINES) : next;
        });
      }
      setState('ended');
    })().catch((err: Error) => {
      if (abort.signal.aborted) return;
      setState('failed');
      setError(err instanceof ApiError ? err.message : `The log stream broke off: ${err.message}`);
    });
    return () => abort.abort();
  }, [app, service, attempt, running]);

  const shown = paused ?? lines;
  const needle = query.trim().toLowerCase();
  const matching = useMemo(() => (needle ? shown.filter((line) => line.text.toLowerCase().includes(needle)) : shown), [shown, needle]);

  // Follow the newest line, unless the person scrolled up to read.
  useEffect(() => {
    if (stick.current && view.current) view.current.scrollTop = view.current.scrollHeight;
  }, [matching]);

  const status =
    state === 'connecting'
      ? 'Connecting to the log…'
      : state === 'failed'
        ? 'The log is not available.'
        : paused
          ? `Paused: ${count(Math.max(0, lines.length ? lines[lines.length - 1]!.n - (paused[paused.length - 1]?.n ?? 0) : 0), 'new line')} since.`
          : state === 'ended'
            ? running
              ? 'The log stream ended.'
              : 'The app is not running: these are its last lines.'
            : 'Following live.';

  return (
    <div class="logs">
      <div class="log-tools">
        <Field label="Search the log" type="search" value={query} onInput={(e) => setQuery(e.currentTarget.value)} autocomplete="off" spellcheck={false} />
        <div class="actions">
          <Button variant="secondary" onClick={() => setPaused(paused ? undefined : lines)} disabled={state === 'failed'}>
            {paused ? 'Resume' : 'Pause'}
          </Button>
          {(state === 'ended' || state === 'failed') && (
            <Button variant="secondary" onClick={() => setAttempt((a) => a + 1)}>
              Reconnect
            </Button>
          )}
        </div>
      </div>
      <p class="muted log-status" role="status">
        {status} {needle ? `${matching.length} of ${count(shown.length, 'line')} match.` : `${count(shown.length, 'line')}${shown.length >= MAX_LINES ? ` (the newest ${MAX_LINES})` : ''}.`}
      </p>
      {error && <Alert error={error} />}
      <div
        class="log-view mono"
        ref={view}
        tabIndex={0}
        role="log"
        aria-live="off"
        aria-label={`Log of ${service ? `${app}/${service}` : app}`}
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
        }}
      >
        {matching.length === 0 ? (
          <p class="muted">{needle ? 'No line matches the search.' : state === 'live' ? 'No output yet.' : ''}</p>
        ) : (
          matching.map((line) => (
            <div class="log-line" key={line.n}>
              {line.time && (
                <time class="log-time" dateTime={line.time}>
                  {line.time.slice(11, 19)}
                </time>
              )}
              <span class="log-text">{needle ? highlight(line.text, needle) : line.text}</span>
            </div>
          ))
        )}
      </div>
    </div>
  );
}

function count(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

function highlight(text: string, needle: string) {
  const parts: (string | JSX.Element)[] = [];
  const lower = text.toLowerCase();
  let at = 0;
  for (let i = lower.indexOf(needle); i !== -1; i = lower.indexOf(needle, at)) {
    parts.push(text.slice(at, i), <mark key={i}>{text.slice(i, i + needle.length)}</mark>);
    at = i + needle.length;
  }
  parts.push(text.slice(at));
  return parts;
}
