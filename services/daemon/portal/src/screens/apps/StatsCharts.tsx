// CPU and memory over the last hour (GET /api/v1/apps/{name}/stats/history), drawn as small
// inline SVG polylines with their axis labels in HTML beside them, and a sentence per chart for
// screen readers. Gaps (the app was stopped) break the line rather than being bridged.
import { useEffect } from 'preact/hooks';
import { api, seg } from '../../api/client.js';
import { useResource } from '../../api/use-resource.js';
import { formatBytes, formatPercent } from '../../format.js';
import { Loaded } from '../../ui/Loading.js';
import type { StatsHistoryView, StatsSample } from '../../../../system/types.js';

const HOUR_MS = 3_600_000;
/** The time axis spans the samples there are, from 5 min up to the hour the history holds. */
const MIN_SPAN_MS = 300_000;
const WIDTH = 600;
const HEIGHT = 120;

export function StatsCharts({ app }: { app: string }) {
  const history = useResource((signal) => api.get<StatsHistoryView>(`/api/v1/apps/${seg(app)}/stats/history`, { signal }), [app]);
  const interval = history.data?.intervalSeconds;
  // Polling on purpose: no event carries stats samples, so the history is fetched again once per
  // sampling interval (intervalSeconds), when a new sample can exist.
  useEffect(() => {
    if (!interval) return;
    const timer = setInterval(history.reload, interval * 1000);
    return () => clearInterval(timer);
  }, [interval]);
  return (
    <Loaded resource={history} what="CPU and memory use">
      {(data) => {
        const now = Date.now();
        const samples = data.samples.filter((s) => now - Date.parse(s.at) <= HOUR_MS);
        if (!samples.length) return <p>No samples yet: they are taken every {data.intervalSeconds} s while the app runs.</p>;
        const memoryLimit = samples.reduce<number | undefined>((limit, s) => s.memoryLimitBytes ?? limit, undefined);
        const span = Math.min(HOUR_MS, Math.max(MIN_SPAN_MS, now - Date.parse(samples[0]!.at)));
        return (
          <div class="charts">
            <Chart
              title="CPU"
              samples={samples}
              value={(s) => s.cpuPercent}
              max={Math.max(1, ...samples.map((s) => s.cpuPercent)) * 1.2}
              format={formatPercent}
              interval={data.intervalSeconds}
              now={now}
              span={span}
            />
            <Chart
              title="Memory"
              samples={samples}
              value={(s) => s.memoryBytes}
              // Scaled to the use, not the limit: a limit is often the whole host's memory, which would flatten the line.
              max={Math.max(1, ...samples.map((s) => s.memoryBytes)) * 1.2}
              format={formatBytes}
              interval={data.intervalSeconds}
              now={now}
              span={span}
              of={memoryLimit ? `of its ${formatBytes(memoryLimit)} limit` : undefined}
            />
          </div>
        );
      }}
    </Loaded>
  );
}

interface ChartProps {
  title: string;
  samples: StatsSample[];
  value: (sample: StatsSample) => number;
  max: number;
  format: (value: number) => string;
  interval: number;
  now: number;
  span: number;
  of?: string;
}

/** One polyline per run of samples no more than two intervals apart. */
export function segments(samples: readonly StatsSample[], interval: number): StatsSample[][] {
  const runs: StatsSample[][] = [];
  let last = -Infinity;
  for (const sample of samples) {
    const at = Date.parse(sample.at);
    if (at - last > interval * 2000 || !runs.length) runs.push([]);
    runs[runs.length - 1]!.push(sample);
    last = at;
  }
  return runs;
}

function Chart({ title, samples, value, max, format, interval, now, span, of }: ChartProps) {
  const x = (s: StatsSample) => ((Date.parse(s.at) - (now - span)) / span) * WIDTH;
  const y = (s: StatsSample) => HEIGHT - (Math.min(value(s), max) / max) * HEIGHT;
  const values = samples.map(value);
  const latest = values[values.length - 1]!;
  const peak = Math.max(...values);
  const average = values.reduce((a, b) => a + b, 0) / values.length;
  const minutes = Math.max(1, Math.round((now - Date.parse(samples[0]!.at)) / 60_000));
  const summary = `${title}: now ${format(latest)}${of ? ` ${of}` : ''}; average ${format(average)} and peak ${format(peak)} over the last ${minutes} min (${samples.length} samples).`;
  return (
    <figure class="chart" data-chart={title.toLowerCase()}>
      <figcaption>
        <strong>{title}</strong> <span class="muted">now {format(latest)}</span>
      </figcaption>
      <div class="chart-body">
        <div class="chart-y muted" aria-hidden="true">
          <span>{format(max)}</span>
          <span>{format(0)}</span>
        </div>
        <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} preserveAspectRatio="none" aria-hidden="true" focusable="false">
          <line class="chart-grid" x1="0" y1={HEIGHT / 2} x2={WIDTH} y2={HEIGHT / 2} />
          {segments(samples, interval).map((run, i) =>
            run.length === 1 ? (
              <circle key={i} class="chart-dot" cx={x(run[0]!)} cy={y(run[0]!)} r="2.5" />
            ) : (
              <polyline key={i} class="chart-line" points={run.map((s) => `${x(s).toFixed(1)},${y(s).toFixed(1)}`).join(' ')} />
            ),
          )}
        </svg>
        <div class="chart-x muted" aria-hidden="true">
          <span>{Math.round(span / 60_000)} min ago</span>
          <span>now</span>
        </div>
      </div>
      <p class="offscreen">{summary}</p>
    </figure>
  );
}
