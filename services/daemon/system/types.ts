// The system API's answers, shared with the portal by type-only imports (the portal's screens
// read these shapes; /work/brief/system-api.md and openapi.yaml describe them in words).
import type { AuditOutcome } from '../auth/audit.js';
import type { MdnsStatus } from '../mdns/publisher.js';

export interface CpuMetrics {
  /** Busy share of all cores over the last sampling window, 0-100. */
  percent: number;
  cores: number;
  /** Load averages over 1, 5 and 15 minutes. */
  load: [number, number, number];
}

export interface MemoryMetrics {
  totalBytes: number;
  /** What programs could still get without swapping (MemAvailable), not merely free pages. */
  availableBytes: number;
  usedBytes: number;
}

export interface StorageMetrics {
  name: 'data';
  path: string;
  totalBytes: number;
  usedBytes: number;
}

export interface Temperature {
  celsius: number;
  /** The thermal zone's type, e.g. "x86_pkg_temp" or "cpu-thermal". */
  sensor: string;
}

export interface SystemMetrics {
  cpu: CpuMetrics;
  memory: MemoryMetrics;
  storage: StorageMetrics[];
  /** null when the hardware has no sensor (many VMs). */
  temperature: Temperature | null;
}

export interface HealthComponentView {
  name: string;
  status: 'ok' | 'degraded' | 'down' | 'fatal';
  reason?: string;
}

export interface HealthView {
  /** false: the health service did not answer; reasons then says what to do. */
  reachable: boolean;
  ready: boolean;
  components: HealthComponentView[];
  reasons: string[];
  notes: string[];
}

export interface DeviceInfo {
  name: string;
  /** <name>.local */
  hostname: string;
  /** The name the LAN actually reaches the device at (mdns/publisher.ts): another host may hold <name>.local. */
  mdns?: MdnsStatus;
}

export interface SystemStatus {
  device: DeviceInfo & { version: string; uptimeSeconds: number };
  health: HealthView;
  metrics: SystemMetrics;
  sampledAt: string;
}

export interface CaInfo {
  subject: string;
  /** Colon-separated upper-case hex, as browsers show it. */
  sha256Fingerprint: string;
  notAfter: string;
}

export interface AuditEntryView {
  ts: string;
  event: string;
  outcome: AuditOutcome;
  client?: string;
  detail?: string;
}

export interface StatsSample {
  at: string;
  cpuPercent: number;
  memoryBytes: number;
  memoryLimitBytes?: number;
}

export interface StatsHistoryView {
  intervalSeconds: number;
  /** Oldest first. */
  samples: StatsSample[];
}
