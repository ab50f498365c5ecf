// CPU, memory, storage and temperature, replaced by each `system.metrics` event.
import type { SystemMetrics } from '../../../../system/types.js';
import { formatBytes, formatPercent, formatTime } from '../../format.js';
import { Card } from '../../ui/Page.js';
import { ProgressBar } from '../../ui/ProgressBar.js';

export function MetricsCard({ metrics, sampledAt }: { metrics: SystemMetrics; sampledAt: string }) {
  const { cpu, memory, storage, temperature } = metrics;
  return (
    <Card title="Resources" id="metrics">
      <div class="meters">
        <ProgressBar label="CPU" value={cpu.percent} max={100} detail={`${formatPercent(cpu.percent)} of ${cpu.cores} ${cpu.cores === 1 ? 'core' : 'cores'} · load ${cpu.load.map((l) => l.toFixed(2)).join(' ')}`} />
        <ProgressBar label="Memory" value={memory.usedBytes} max={memory.totalBytes} detail={`${formatBytes(memory.usedBytes)} of ${formatBytes(memory.totalBytes)}`} />
        {storage.map((s) => (
          <ProgressBar key={s.name} label={`Storage (${s.name})`} value={s.usedBytes} max={s.totalBytes} detail={`${formatBytes(s.usedBytes)} of ${formatBytes(s.totalBytes)}`} />
        ))}
        <p class="temperature">
          <span class="label">Temperature</span>{' '}
          <span data-testid="temperature">{temperature ? `${temperature.celsius.toFixed(1)} °C (${temperature.sensor})` : 'no sensor'}</span>
        </p>
      </div>
      <p class="muted">
        Measured <time dateTime={sampledAt}>{formatTime(sampledAt)}</time>
      </p>
    </Card>
  );
}
