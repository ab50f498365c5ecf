// What the health service knows: the last report of each component, and what follows from it.
// Pure: time comes in as an argument, so staleness is tested without waiting.
import { COMPONENT_STATES, type ComponentReport, type ComponentState } from '../common/health-report.js';
import { BadRequestError } from '../common/errors.js';

export interface ComponentStatus {
  component: string;
  state: ComponentState;
  reason?: string;
  required: boolean;
  /** ISO time of the last report; absent for a required component that never reported. */
  lastReport?: string;
}

export interface Readiness {
  ready: boolean;
  /** One line per required component that is not serving; empty when ready. */
  reasons: string[];
  /** Non-blocking remarks: degraded or failed optional components, annotations such as "locked". */
  notes: string[];
  components: ComponentStatus[];
}

interface Entry {
  report: ComponentReport;
  receivedAt: number;
}

const COMPONENT_NAME = /^[a-z][a-z0-9-]{0,31}(\.[a-z][a-z0-9-]{0,31})?$/;

export class ComponentRegistry {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly required: readonly string[]) {}

  apply(report: ComponentReport, now: number): void {
    this.entries.set(report.component, { report, receivedAt: now });
  }

  readiness(now: number): Readiness {
    const names = new Set([...this.required, ...this.entries.keys()]);
    const components = [...names].sort().map((name) => this.status(name, now));
    const reasons: string[] = [];
    const notes: string[] = [];
    for (const c of components) {
      const line = c.reason ? `${c.component}: ${c.state} (${c.reason})` : `${c.component}: ${c.state}`;
      if (c.required && (c.state === 'down' || c.state === 'fatal')) reasons.push(line);
      else if (c.state !== 'ok' || c.reason) notes.push(line);
    }
    return { ready: reasons.length === 0, reasons, notes, components };
  }

  private status(name: string, now: number): ComponentStatus {
    const required = this.isRequired(name);
    const entry = this.entries.get(name);
    if (!entry) return { component: name, state: 'down', reason: 'has not reported yet', required };
    const { report, receivedAt } = entry;
    const lastReport = new Date(receivedAt).toISOString();
    if (now - receivedAt > report.ttlMs) {
      return { component: name, state: 'down', reason: `stopped reporting ${Math.round((now - receivedAt) / 1000)} s ago`, required, lastReport };
    }
    return { component: name, state: report.state, reason: report.reason, required, lastReport };
  }

  /** "daemon" being required makes its sub-components ("daemon.store") required too. */
  private isRequired(name: string): boolean {
    return this.required.includes(name.split('.')[0]!);
  }
}

/** Checks a report that arrived over the socket; a malformed one is a 400, never stored. */
export function parseReport(body: unknown): ComponentReport {
  const problems: string[] = [];
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequestError('report must be a JSON object');
  const { component, state, reason, ttlMs, ...rest } = body as Record<string, unknown>;
  if (typeof component !== 'string' || !COMPONENT_NAME.test(component)) problems.push('component: must match ' + COMPONENT_NAME.source);
  if (!COMPONENT_STATES.includes(state as ComponentState)) problems.push(`state: must be one of ${COMPONENT_STATES.join(', ')}`);
  if (reason !== undefined && (typeof reason !== 'string' || reason.length > 500)) problems.push('reason: must be a string of at most 500 characters');
  if (typeof ttlMs !== 'number' || !Number.isInteger(ttlMs) || ttlMs < 100 || ttlMs > 600_000) problems.push('ttlMs: must be an integer from 100 to 600000');
  for (const key of Object.keys(rest)) problems.push(`${key}: unknown field`);
  if (problems.length) throw new BadRequestError('invalid report', problems);
  return { component, state, reason, ttlMs } as ComponentReport;
}
